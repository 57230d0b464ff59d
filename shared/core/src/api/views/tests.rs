//! The views' JSON, key for key, as Dify sends it.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::domain::{
    self, AnnotationId, AppId, AppMode, ConversationId, EndUserId, FileId, MessageId, Owner, TaskId, Timestamp,
};
use crate::ports;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn json_of(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap()
}

fn metadata() -> MessageMetadata {
    let usage = ports::Usage { prompt_tokens: 3, completion_tokens: 4 };
    MessageMetadata::new(Usage::new(usage, Duration::from_millis(1500)))
}

fn metadata_json() -> Value {
    json!({
        "usage": {
            "prompt_tokens": 3, "prompt_unit_price": "0", "prompt_price_unit": "0", "prompt_price": "0",
            "completion_tokens": 4, "completion_unit_price": "0", "completion_price_unit": "0",
            "completion_price": "0", "total_tokens": 7, "total_price": "0", "currency": "USD", "latency": 1.5,
        },
        "retriever_resources": [],
    })
}

#[test]
fn errors_and_results() {
    let error = ErrorBody::new(&ApiError::NotFound("Conversation Not Exists."));
    assert_eq!(json_of(&error), json!({"code": "not_found", "message": "Conversation Not Exists.", "status": 404}));
    assert_eq!(json_of(&Success::new()), json!({"result": "success"}));
    let questions = SuggestedQuestions::new(vec!["Why?".into()]);
    assert_eq!(json_of(&questions), json!({"result": "success", "data": ["Why?"]}));
}

#[test]
fn metadata_names_the_annotation_only_when_one_answered() {
    assert_eq!(json_of(&metadata()), metadata_json());
    let stored = MessageMetadata {
        annotation_reply: Some(AnnotationReply { id: AnnotationId::from_uuid(id(9)), account: None }),
        ..metadata()
    };
    let mut expected = metadata_json();
    expected["annotation_reply"] = json!({"id": id(9), "account": null});
    assert_eq!(json_of(&stored), expected);
}

#[test]
fn chat_answers_and_streamed_events() {
    let (task, message, conversation) =
        (TaskId::from_uuid(id(1)), MessageId::from_uuid(id(2)), ConversationId::from_uuid(id(3)));
    let answer = ChatAnswer {
        task_id: task,
        id: message,
        message_id: message,
        conversation_id: conversation,
        mode: AppMode::AdvancedChat,
        answer: "Hi".into(),
        metadata: metadata(),
        created_at: 5,
    };
    assert_eq!(
        json_of(&answer),
        json!({
            "event": "message", "task_id": task, "id": message, "message_id": message,
            "conversation_id": conversation, "mode": "advanced-chat", "answer": "Hi",
            "metadata": metadata_json(), "created_at": 5,
        })
    );

    let event = |body| StreamEvent { conversation_id: conversation, message_id: message, created_at: 5, body };
    let base = json!({"conversation_id": conversation, "message_id": message, "created_at": 5});
    let with = |extra: Value| {
        let mut all = base.clone();
        all.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        all
    };
    let delta =
        StreamEventBody::Message { task_id: task, id: message, answer: "Hel".into(), from_variable_selector: None };
    assert_eq!(
        json_of(&event(delta)),
        with(
            json!({"event": "message", "task_id": task, "id": message, "answer": "Hel", "from_variable_selector": null})
        )
    );
    let end = StreamEventBody::MessageEnd { task_id: task, id: message, metadata: metadata(), files: None };
    assert_eq!(
        json_of(&event(end)),
        with(
            json!({"event": "message_end", "task_id": task, "id": message, "metadata": metadata_json(), "files": null})
        )
    );
    let failed = StreamEventBody::Error { error: ErrorBody::new(&ApiError::Internal("disk".into())) };
    assert_eq!(
        json_of(&event(failed)),
        with(json!({"event": "error", "code": "unknown", "status": 500, "message": "Internal Server Error"}))
    );
}

fn upload() -> domain::UploadFile {
    domain::UploadFile {
        id: FileId::from_uuid(id(4)),
        owner: Owner { app_id: AppId::from_uuid(id(5)), end_user_id: EndUserId::from_uuid(id(6)) },
        name: "a.png".into(),
        size: 10,
        extension: "png".into(),
        mime_type: "image/png".into(),
        created_at: Timestamp::from_micros(7_000_001),
        expires_at: None,
    }
}

#[test]
fn files() {
    let file_json = json!({
        "id": id(4), "name": "a.png", "size": 10, "extension": "png", "mime_type": "image/png",
        "created_by": id(6), "created_at": 7, "preview_url": null, "source_url": "http://x/a",
        "original_url": null, "user_id": null, "tenant_id": null, "conversation_id": null, "file_key": null,
    });
    assert_eq!(json_of(&UploadedFile::new(upload(), "http://x/a".into())), file_json);
    let with_url = UploadUrl {
        file: UploadedFile::new(upload(), "http://x/a".into()),
        upload_url: "http://s3/put".into(),
        upload_method: "PUT",
        upload_headers: UploadHeaders { content_type: "image/png".into() },
        upload_expires_at: 907,
    };
    let mut expected = file_json;
    let extra = json!({
        "upload_url": "http://s3/put", "upload_method": "PUT",
        "upload_headers": {"Content-Type": "image/png"}, "upload_expires_at": 907,
    });
    expected.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    assert_eq!(json_of(&with_url), expected);
    assert_eq!(json_of(&AudioText { text: "hello".into() }), json!({"text": "hello"}));
}

#[test]
fn message_files() {
    let remote = MessageFile::remote(id(1), "document", "https://example.com/docs/a.pdf?sig=1");
    assert_eq!(
        json_of(&remote),
        json!({
            "id": id(1), "filename": "a.pdf", "type": "document", "url": "https://example.com/docs/a.pdf?sig=1",
            "mime_type": null, "size": -1, "transfer_method": "remote_url",
            "belongs_to": "user", "upload_file_id": null,
        })
    );
    let local = MessageFile::local(id(2), upload(), "http://x/a".into());
    assert_eq!(
        json_of(&local),
        json!({
            "id": id(2), "filename": "a.png", "type": "image", "url": "http://x/a", "mime_type": "image/png",
            "size": 10, "transfer_method": "local_file", "belongs_to": "user", "upload_file_id": id(4),
        })
    );
}
