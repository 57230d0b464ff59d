//! Every response body the server builds agrees with `openapi.yaml`: for each operation of
//! the document, representative instances of the view its handler answers with are checked
//! against the operation's success schema, and Dify's error body against each documented
//! error status. The views are built with the constructors the handlers use.

mod schema;

use std::time::Duration;

use colloquy_core::api::error::ApiError;
use colloquy_core::api::views::{
    self, AnnotationPage, AppInfo, AppMeta, AppParameters, AppSite, AudioText, ChatAnswer, ErrorBody, FeedbackList,
    MessageFile, MessageMetadata, Page, ReplyJob, ReplyJobStatus, StreamEvent, StreamEventBody, Success,
    SuggestedQuestions, UploadHeaders, UploadUrl, UploadedFile,
};
use colloquy_core::api::{Endpoint, ROUTES, SPECS};
use colloquy_core::domain::{
    Annotation, AnnotationId, AnnotationJob, App, AppConfig, AppId, AppMode, AuditAction, AuditEntry, AuditId,
    Conversation, ConversationId, ConversationStatus, ConversationSummary, ConversationVariable, EndUserId,
    ErasureCounts, ErasureId, ErasureJob, ErasureStatus, ExportFormat, ExportId, ExportJob, ExportStatus, Feedback,
    FeedbackId, FeedbackSource, FileId, Granularity, JobId, JobStatus, ListedFeedback, Message, MessageId,
    MessageStatus, Owner, Rating, ReplyAction, StatsRange, Tally, TaskId, TimeRange, Timestamp, UploadFile, ValueType,
    VariableId, stats_buckets,
};
use colloquy_core::ports::{self, ProviderError};
use schema::Checker;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The views as JSON.
macro_rules! json_of {
    ($($view:expr),+ $(,)?) => {
        vec![$(serde_json::to_value(&$view).expect("a view serialises")),+]
    };
}

/// What an operation answers when it succeeds.
enum Answer {
    /// JSON views, sent with this status.
    Json(&'static str, Vec<Value>),
    /// `POST /chat-messages`: the blocking answer, or the `data` of streamed events.
    JsonOrEvents(Vec<Value>, Vec<Value>),
    /// 204 without a body.
    Empty,
    /// Bytes that are not JSON (files, audio), sent with these statuses.
    Bytes(&'static [&'static str]),
}

/// The keys of a path item that are operations.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    serde_yaml::from_str(colloquy::server::OPENAPI).expect("openapi.yaml is YAML")
}

#[test]
fn every_response_view_matches_its_openapi_schema() {
    let document = document();
    let checker = Checker::new(&document);
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        let operations = item.as_object().expect("a path item").iter();
        for (method, operation) in operations.filter(|(key, _)| METHODS.contains(&key.as_str())) {
            let name = format!("{} {path}", method.to_uppercase());
            let endpoint = ROUTES
                .iter()
                .find(|(pattern, _)| pattern == path)
                .and_then(|(_, methods)| methods.iter().find(|(m, _)| m.as_str().eq_ignore_ascii_case(method)))
                .map(|(_, endpoint)| *endpoint)
                .unwrap_or_else(|| panic!("{name}: not in the route table"));
            failures.extend(check_operation(&checker, operation, endpoint).into_iter().map(|e| format!("{name}: {e}")));
            checked.push((name, endpoint));
        }
    }
    assert!(failures.is_empty(), "openapi.yaml and the views disagree:\n{}", failures.join("\n"));

    // Every operation was checked, and through it every endpoint.
    let operations: usize = ROUTES.iter().map(|(_, methods)| methods.len()).sum();
    assert_eq!(checked.len(), operations, "{checked:?}");
    for spec in SPECS {
        assert!(checked.iter().any(|(_, e)| *e == spec.endpoint), "{:?} was not checked", spec.endpoint);
    }
}

/// The operation's success responses against the endpoint's views, and its error responses
/// against the error body.
fn check_operation(checker: &Checker, operation: &Value, endpoint: Endpoint) -> Vec<String> {
    let responses = operation["responses"].as_object().expect("responses");
    let mut failures = Vec::new();
    let content = |status: &str| {
        let response = responses.get(status).map(|r| checker.resolve(r));
        response.and_then(|r| r.get("content")).and_then(Value::as_object)
    };
    let media_types =
        |status: &str| -> Vec<String> { content(status).map(|c| c.keys().cloned().collect()).unwrap_or_default() };
    let expected: Vec<&str> = match success(endpoint) {
        Answer::Json(status, examples) => {
            if media_types(status) == ["application/json"] {
                let schema = &content(status).unwrap()["application/json"]["schema"];
                check_examples(checker, &examples, schema, "body", &mut failures);
            } else {
                failures.push(format!("{status}: documents {:?}, the code answers JSON", media_types(status)));
            }
            vec![status]
        }
        Answer::JsonOrEvents(answers, events) => {
            if media_types("200") == ["application/json", "text/event-stream"] {
                let content = content("200").unwrap();
                check_examples(checker, &answers, &content["application/json"]["schema"], "answer", &mut failures);
                let frame = checker.resolve(&content["text/event-stream"]["schema"]);
                let data = &frame["properties"]["data"]["contentSchema"];
                check_examples(checker, &events, data, "event", &mut failures);
                // Data frames have no `event:` line, so their SSE event type is `message`;
                // pings are `event: ping` frames without data.
                let types = [json!("message"), json!("ping")];
                check_examples(checker, &types, &frame["properties"]["event"], "frame type", &mut failures);
            } else {
                failures.push(format!("200: documents {:?}, the code answers JSON or events", media_types("200")));
            }
            vec!["200"]
        }
        Answer::Empty => {
            if content("204").is_some() {
                failures.push("204: documents a body, the code sends none".into());
            }
            vec!["204"]
        }
        Answer::Bytes(statuses) => {
            for status in statuses {
                for (media, body) in content(status).into_iter().flatten() {
                    if checker.resolve(&body["schema"]) != &json!({"type": "string", "format": "binary"}) {
                        failures.push(format!("{status} {media}: not documented as bytes"));
                    }
                }
            }
            statuses.to_vec()
        }
    };
    let documented: Vec<&str> = responses.keys().map(String::as_str).filter(|s| s.starts_with('2')).collect();
    if documented != expected {
        failures.push(format!("documents the success statuses {documented:?}, the code answers {expected:?}"));
    }

    let errors = sample_errors();
    // Redirects carry no body (the download's link to the file).
    for (status, response) in
        responses.iter().filter(|(status, _)| !status.starts_with('2') && !status.starts_with('3'))
    {
        let schema = &checker.resolve(response)["content"]["application/json"]["schema"];
        let bodies: Vec<Value> = errors.iter().filter(|e| e.status.to_string() == *status).map(to_json).collect();
        if bodies.is_empty() {
            failures.push(format!("documents a {status} that no error of the API answers with"));
            continue;
        }
        check_examples(checker, &bodies, schema, &format!("{status} body"), &mut failures);
    }
    failures
}

fn check_examples(checker: &Checker, examples: &[Value], schema: &Value, what: &str, failures: &mut Vec<String>) {
    if examples.is_empty() {
        failures.push(format!("no example of the {what}"));
    }
    for (index, example) in examples.iter().enumerate() {
        failures.extend(checker.check(example, schema, &format!("{what} #{index}")));
    }
}

fn to_json(error: &ErrorBody) -> Value {
    serde_json::to_value(error).expect("an error body serialises")
}

/// One error of each status the API answers with.
fn sample_errors() -> Vec<ErrorBody> {
    [
        ApiError::InvalidParam("query is required".into()),
        ApiError::NotChatApp,
        ApiError::Unauthorized("Access token is invalid"),
        ApiError::Forbidden("The app is not available"),
        ApiError::NotFound("Conversation Not Exists."),
        ApiError::Conflict("export_not_ready", "The export is not finished: see its status."),
        ApiError::ResponseTooLarge,
        ApiError::MethodNotAllowed("GET, HEAD".into()),
        ApiError::RequestTimeout,
        ApiError::PayloadTooLarge(1024),
        ApiError::AudioTooLarge,
        ApiError::UnsupportedMediaType,
        ApiError::RangeNotSatisfiable(10),
        ApiError::TooManyRequests { retry_after: 3 },
        ApiError::Provider(ProviderError::RateLimited("slow down".into())),
        ApiError::Internal("disk".into()),
        ApiError::Unavailable("table".into()),
    ]
    .iter()
    .map(ErrorBody::new)
    .collect()
}

/// What the handler of `endpoint` answers with, as representative views. The match has no
/// catch-all, so a new endpoint cannot be added without saying what it answers.
fn success(endpoint: Endpoint) -> Answer {
    use Answer::{Bytes, Empty, Json};
    match endpoint {
        Endpoint::ListConversations => Json(
            "200",
            json_of![
                Page::new(20, true, vec![views::Conversation::from(conversation())]),
                Page::<views::Conversation>::new(20, false, Vec::new()),
            ],
        ),
        Endpoint::DeleteConversation
        | Endpoint::DeleteAnnotation
        | Endpoint::AppDeleteConversation
        | Endpoint::DeleteMessage => Empty,
        Endpoint::RenameConversation => Json("200", json_of![views::Conversation::from(conversation())]),
        Endpoint::GetConversation | Endpoint::UpdateConversation => {
            Json("200", json_of![views::ConversationDetail::from(conversation())])
        }
        Endpoint::CreateConversation | Endpoint::ForkConversation => {
            Json("201", json_of![views::ConversationDetail::from(conversation())])
        }
        Endpoint::AddMessages => Json(
            "201",
            json_of![views::AddedMessages {
                conversation_id: conversation().id,
                message_ids: vec![MessageId::from_uuid(id(20)), MessageId::from_uuid(id(21))],
            }],
        ),
        Endpoint::ListConversationVariables => {
            Json("200", json_of![Page::new(20, false, variables().into_iter().map(views::Variable::from).collect())])
        }
        Endpoint::UpdateConversationVariable => Json("200", json_of![views::Variable::from(variables().remove(0))]),
        Endpoint::ListMessages => {
            let [answered, failed] = messages();
            let (a, f) = (answered.id, failed.id);
            let data = vec![
                views::ThreadMessage::new(views::Message::new(answered, Some(Rating::Like)), vec![a]),
                views::ThreadMessage::new(views::Message::new(failed, None), vec![a, f]),
            ];
            Json("200", json_of![Page::new(20, true, data), Page::<views::ThreadMessage>::new(20, false, Vec::new())])
        }
        Endpoint::MessageFeedback | Endpoint::StopChatMessage | Endpoint::AppMessageFeedback => {
            Json("200", json_of![Success::new()])
        }
        Endpoint::AppFeedbacks => {
            let listed = |(i, feedback)| {
                let text = |t: &str| (i == 0).then(|| t.to_owned());
                views::ListedFeedback::from(ListedFeedback { feedback, query: text("Why?"), answer: text("Because.") })
            };
            Json("200", json_of![FeedbackList { data: feedbacks().into_iter().enumerate().map(listed).collect() }])
        }
        Endpoint::AppInfo => Json("200", per_app(|app| serde_json::to_value(AppInfo::new(app)))),
        Endpoint::AppParameters => Json("200", per_app(|app| serde_json::to_value(AppParameters::new(app)))),
        Endpoint::AppMeta => Json("200", per_app(|app| serde_json::to_value(AppMeta::new(app)))),
        Endpoint::AppSite => Json("200", per_app(|app| serde_json::to_value(AppSite::new(app)))),
        Endpoint::ChatMessages | Endpoint::RegenerateMessage => chat(),
        Endpoint::SuggestedQuestions => Json(
            "200",
            json_of![
                SuggestedQuestions::new(vec!["What else?".into(), "Why?".into()]),
                SuggestedQuestions::new(Vec::new()),
            ],
        ),
        Endpoint::ListAnnotations => Json(
            "200",
            json_of![AnnotationPage {
                data: vec![views::Annotation::from(annotation())],
                has_more: true,
                limit: 1,
                total: 2,
                page: 1,
            }],
        ),
        Endpoint::CreateAnnotation | Endpoint::UpdateAnnotation => {
            Json("200", json_of![views::Annotation::from(annotation())])
        }
        Endpoint::AnnotationReply => Json("200", json_of![ReplyJob::from(&job(JobStatus::Completed, ""))]),
        Endpoint::AnnotationReplyStatus => Json(
            "200",
            json_of![
                ReplyJobStatus::from(job(JobStatus::Completed, "")),
                ReplyJobStatus::from(job(JobStatus::Error, "the embedder failed")),
            ],
        ),
        Endpoint::FileUpload => Json("201", json_of![UploadedFile::new(upload(), preview_url())]),
        Endpoint::FileUploadUrl => Json(
            "201",
            json_of![UploadUrl {
                file: UploadedFile::new(upload(), "https://bucket.s3.amazonaws.com/files/a?X-Amz-Signature=1".into()),
                upload_url: "https://bucket.s3.amazonaws.com/files/a?X-Amz-Signature=2".into(),
                upload_method: "PUT",
                upload_headers: UploadHeaders { content_type: "audio/wav".into() },
                upload_expires_at: 1_737_022_500,
            }],
        ),
        Endpoint::FilePreview | Endpoint::AppFilePreview => Bytes(&["200", "206"]),
        Endpoint::AudioToText => Json("200", json_of![AudioText { text: "Hello there".into() }]),
        Endpoint::TextToAudio | Endpoint::AppMessageAudio => Bytes(&["200"]),
        Endpoint::AppConversations => {
            let summary = |user: Option<&str>, counted: bool| ConversationSummary {
                conversation: conversation(),
                user: user.map(str::to_owned),
                message_count: u64::from(counted) * 3,
                last_message_at: counted.then(|| at(1_737_021_700)),
                like_count: u64::from(counted) * 2,
                dislike_count: u64::from(counted),
            };
            let data = vec![
                views::AppConversation::from(summary(Some("alice"), true)),
                views::AppConversation::from(summary(None, false)),
            ];
            Json("200", json_of![Page::new(20, true, data), Page::<views::AppConversation>::new(20, false, Vec::new())])
        }
        Endpoint::AppAuditLog => {
            let entry = |target: Option<&str>, detail: Option<&str>| AuditEntry {
                id: AuditId::from_uuid(id(40)),
                app_id: owner().app_id,
                at: at(1_737_021_600),
                actor: "op-AbCd…".into(),
                action: AuditAction::ReadConversation,
                target: target.map(str::to_owned),
                detail: detail.map(str::to_owned),
            };
            let data = vec![
                views::AuditEntry::from(entry(Some("01946a5e-0000-7000-8000-00000000000a"), Some("limit=20"))),
                views::AuditEntry::from(entry(None, None)),
            ];
            Json("200", json_of![Page::new(20, true, data)])
        }
        Endpoint::CreateExport => Json("202", json_of![views::Export::new(&export_job(ExportStatus::Pending), None)]),
        Endpoint::AppExport => Json(
            "200",
            json_of![
                views::Export::new(&export_job(ExportStatus::Running), None),
                views::Export::new(
                    &ExportJob { size: Some(12_345), ..export_job(ExportStatus::Done) },
                    Some("https://bucket.s3.amazonaws.com/exports/a/b.csv?X-Amz-Signature=0".into()),
                ),
                views::Export::new(&export_job(ExportStatus::Running).as_of(at(1_737_100_000)), None),
            ],
        ),
        Endpoint::DownloadExport => Bytes(&["200"]),
        Endpoint::AppStats => {
            let range =
                StatsRange::new(Granularity::Day, Some(at(1_737_000_000)), Some(at(1_737_200_000)), at(0)).unwrap();
            let busy = Tally {
                messages: 9,
                conversations: 2,
                end_users: 3,
                likes: 2,
                dislikes: 1,
                answers: 9,
                latency_ms: 4_500,
                tokens: 700,
            };
            let hours = [(range.from, busy)];
            Json("200", json_of![views::Stats::new(&range, stats_buckets(&range, &hours, &[]))])
        }
        Endpoint::AppConversationMessages => {
            let [answered, failed] = messages();
            let data = vec![
                views::AppMessage {
                    message: views::Message::new(answered, Some(Rating::Like)),
                    feedbacks: feedbacks().into_iter().map(views::Feedback::from).collect(),
                },
                views::AppMessage { message: views::Message::new(failed, None), feedbacks: Vec::new() },
            ];
            Json("200", json_of![Page::new(20, false, data)])
        }
        Endpoint::EraseEndUser => Json("202", json_of![views::Erasure::from(&erasure(ErasureStatus::Pending))]),
        Endpoint::EndUserErasure => {
            let mut done = erasure(ErasureStatus::Done);
            done.finish(at(1_737_021_700));
            Json(
                "200",
                json_of![
                    views::Erasure::from(&done),
                    views::Erasure::from(&erasure(ErasureStatus::Running).as_of(at(1_737_100_000))),
                ],
            )
        }
        Endpoint::ExportEndUser => {
            // The document as `end_users::export` writes it: the list views with their parts.
            let [answered, failed] = messages();
            let mut conversation = serde_json::to_value(views::Conversation::from(conversation())).unwrap();
            conversation["messages"] = json!([
                views::AppMessage {
                    message: views::Message::new(answered, Some(Rating::Like)),
                    feedbacks: feedbacks().into_iter().map(views::Feedback::from).collect(),
                },
                views::AppMessage { message: views::Message::new(failed, None), feedbacks: Vec::new() },
            ]);
            conversation["variables"] = json!(variables().into_iter().map(views::Variable::from).collect::<Vec<_>>());
            let document = json!({
                "user": "alice",
                "end_user_ids": [owner().end_user_id],
                "exported_at": 1_737_021_600,
                "conversations": [conversation],
                "files": [views::ExportedFile::from(upload())],
            });
            let empty = json!({"user": "bob", "end_user_ids": [owner().end_user_id], "exported_at": 1_737_021_600,
                "conversations": [], "files": []});
            Json("200", vec![document, empty])
        }
    }
}

fn erasure(status: ErasureStatus) -> ErasureJob {
    let mut job = ErasureJob::new(
        ErasureId::from_uuid(id(60)),
        owner().app_id,
        colloquy_core::domain::UserRef::parse("alice").unwrap(),
        vec![owner().end_user_id],
        at(1_737_021_600),
    );
    job.status = status;
    job.counts = ErasureCounts { conversations: 50, messages: 5_000, files: 3, other: 4 };
    job
}

fn export_job(status: ExportStatus) -> ExportJob {
    ExportJob {
        id: ExportId::from_uuid(id(50)),
        app_id: owner().app_id,
        format: ExportFormat::Csv,
        range: TimeRange::new(Some(at(1_737_000_000)), Some(at(1_737_021_600))),
        status,
        expected: 1_000,
        exported: 250,
        size: None,
        error: None,
        created_at: at(1_737_021_600),
        updated_at: at(1_737_021_610),
    }
}

fn chat() -> Answer {
    let (task, message, conversation) = (TaskId::from_uuid(id(1)), MessageId::from_uuid(id(2)), conversation().id);
    let metadata = || {
        let usage = ports::Usage { prompt_tokens: 12, completion_tokens: 30 };
        MessageMetadata::new(views::Usage::new(usage, Duration::from_millis(1234)))
    };
    let answer = ChatAnswer {
        task_id: task,
        id: message,
        message_id: message,
        conversation_id: conversation,
        mode: AppMode::AdvancedChat,
        answer: "Hello! How can I help?".into(),
        metadata: metadata(),
        created_at: 1_737_021_600,
    };
    let event =
        |body| StreamEvent { conversation_id: conversation, message_id: message, created_at: 1_737_021_600, body };
    let events = json_of![
        event(StreamEventBody::Message {
            task_id: task,
            id: message,
            answer: "Hel".into(),
            from_variable_selector: None
        }),
        event(StreamEventBody::MessageEnd { task_id: task, id: message, metadata: metadata(), files: None }),
        event(StreamEventBody::Error {
            error: ErrorBody::new(&ApiError::Provider(ProviderError::Failed("upstream".into())))
        }),
    ];
    Answer::JsonOrEvents(json_of![answer], events)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0194_6a5e_0000_7000_8000_0000_0000_0000 + n)
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000 + 123_456)
}

fn owner() -> Owner {
    Owner { app_id: AppId::from_uuid(id(100)), end_user_id: EndUserId::from_uuid(id(101)) }
}

fn conversation() -> Conversation {
    let inputs = json!({"name": "Ada", "days": 3});
    Conversation {
        id: ConversationId::from_uuid(id(10)),
        owner: owner(),
        name: "Trip to Rome".into(),
        inputs: inputs.as_object().cloned().unwrap_or_default(),
        status: ConversationStatus::Normal,
        introduction: "Hello Ada!".into(),
        created_at: at(1_737_021_600),
        updated_at: at(1_737_021_700),
        expires_at: None,
        state: colloquy_core::domain::ConversationState {
            metadata: colloquy_core::domain::Metadata::from_json(&json!({"project": "apollo"})).unwrap(),
            pinned: true,
            archived: false,
        },
    }
}

fn variables() -> Vec<ConversationVariable> {
    [(ValueType::Object, json!({"likes": ["tea"]})), (ValueType::Number, json!(3)), (ValueType::String, json!(""))]
        .into_iter()
        .enumerate()
        .map(|(n, (value_type, value))| ConversationVariable {
            id: VariableId::from_uuid(id(20 + n as u128)),
            app_id: owner().app_id,
            conversation_id: conversation().id,
            name: format!("memory_{n}"),
            value_type,
            value,
            description: "what the bot remembers".into(),
            created_at: at(1_737_021_600),
            updated_at: at(1_737_021_800),
        })
        .collect()
}

fn upload() -> UploadFile {
    UploadFile {
        id: FileId::from_uuid(id(30)),
        owner: owner(),
        name: "photo.png".into(),
        size: 2048,
        extension: "png".into(),
        mime_type: "image/png".into(),
        created_at: at(1_737_021_600),
        expires_at: None,
    }
}

fn preview_url() -> String {
    format!("http://127.0.0.1:5001/v1/files/{}/preview?user=abc", id(30))
}

/// An answered message with files from both sources, and one whose answer failed.
fn messages() -> [Message; 2] {
    let files = vec![
        serde_json::to_value(MessageFile::remote(id(40), "image", "https://example.com/cat.png?size=2")).unwrap(),
        serde_json::to_value(MessageFile::local(id(41), upload(), preview_url())).unwrap(),
    ];
    let answered = Message {
        id: MessageId::from_uuid(id(50)),
        conversation_id: conversation().id,
        owner: owner(),
        parent_message_id: Some(MessageId::from_uuid(id(49))),
        inputs: conversation().inputs,
        query: "What is in the picture?".into(),
        answer: "A cat.".into(),
        message_files: files,
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: MessageStatus::Normal,
        error: None,
        metadata: colloquy_core::domain::OpaqueJson::empty_object(),
        created_at: at(1_737_021_650),
        task_id: None,
    };
    let failed = Message {
        id: MessageId::from_uuid(id(51)),
        parent_message_id: None,
        inputs: Map::new(),
        answer: "Half an".into(),
        message_files: Vec::new(),
        status: MessageStatus::Error,
        error: Some("Completion request failed.".into()),
        ..answered.clone()
    };
    [answered, failed]
}

fn feedbacks() -> Vec<Feedback> {
    let by_user = Feedback {
        id: FeedbackId::from_uuid(id(60)),
        app_id: owner().app_id,
        conversation_id: conversation().id,
        message_id: MessageId::from_uuid(id(50)),
        rating: Rating::Like,
        content: Some("Spot on".into()),
        source: FeedbackSource::User,
        from_end_user_id: Some(owner().end_user_id),
        created_at: at(1_737_021_600),
        updated_at: Timestamp::from_micros(1_737_021_900_000_000),
    };
    let by_admin = Feedback {
        id: FeedbackId::from_uuid(id(61)),
        rating: Rating::Dislike,
        content: None,
        source: FeedbackSource::Admin,
        from_end_user_id: None,
        ..by_user.clone()
    };
    vec![by_user, by_admin]
}

/// An app with the default configuration, and one with every optional part filled in.
fn apps() -> Vec<App> {
    let full = AppConfig::from_json(
        &json!({
            "description": "Plans trips",
            "tags": ["travel"],
            "opening_statement": "Hello {{name}}!",
            "suggested_questions": ["Where to?"],
            "suggested_questions_after_answer": {"enabled": true},
            "text_to_speech": {"enabled": true, "voice": "en-us", "language": "en-US"},
            "user_input_form": [{"text-input": {"variable": "name", "label": "Name", "required": true}}],
            "tool_icons": {"search": "https://example.com/search.png", "maps": {"background": "#fff", "content": "🗺"}},
            "site": {
                "title": "Trips", "chat_color_theme": "#123456", "icon_type": "image",
                "icon_url": "https://example.com/icon.png", "description": "Plans trips", "copyright": "Us",
                "privacy_policy": "https://example.com/privacy", "custom_disclaimer": "Check the dates."
            },
        })
        .to_string(),
    )
    .expect("a valid configuration");
    [(AppMode::AdvancedChat, AppConfig::default()), (AppMode::Chat, full)]
        .into_iter()
        .map(|(mode, config)| App::new(owner().app_id, "Travel", mode, config, at(1_737_000_000)).unwrap())
        .collect()
}

/// A view of each of [`apps`].
fn per_app(view: impl Fn(&App) -> serde_json::Result<Value>) -> Vec<Value> {
    apps().iter().map(|app| view(app).expect("a view serialises")).collect()
}

fn annotation() -> Annotation {
    Annotation {
        id: AnnotationId::from_uuid(id(70)),
        app_id: owner().app_id,
        question: "Opening hours?".into(),
        answer: "9 to 5.".into(),
        hit_count: 4,
        embedding: Some(vec![0.1, 0.2]),
        created_at: at(1_737_021_600),
    }
}

fn job(status: JobStatus, error: &str) -> AnnotationJob {
    AnnotationJob {
        id: JobId::from_uuid(id(80)),
        app_id: owner().app_id,
        action: ReplyAction::Enable,
        status,
        error: error.into(),
        created_at: at(1_737_021_600),
    }
}
