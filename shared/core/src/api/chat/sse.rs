//! Streaming mode: the generation's events framed as Dify's server-sent events, one
//! `data: <json>` frame per event, and `event: ping` when nothing was sent for a while.

use std::time::Duration;

use bytes::Bytes;
use sse_stream::Sse;
use tokio::sync::mpsc;

use super::generation::{ChatEvent, StreamHeader};
use crate::api::views::{ErrorBody, StreamEvent, StreamEventBody};

/// Dify sends `event: ping` when nothing else was sent for this long.
const PING_AFTER: Duration = Duration::from_secs(10);

/// The frames of one answer; the stream ends after the last event (`message_end` or `error`).
pub(super) fn sse_frames(
    header: StreamHeader,
    receiver: mpsc::Receiver<ChatEvent>,
) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(Some(receiver), move |receiver| async move {
        let mut receiver = receiver?;
        let event = match tokio::time::timeout(PING_AFTER, receiver.recv()).await {
            Err(_) => return Some((Bytes::from(Sse::default().event("ping")), Some(receiver))),
            Ok(None) => return None,
            Ok(Some(event)) => event,
        };
        let more = matches!(event, ChatEvent::Delta(_));
        let frame = match serde_json::to_string(&stream_event(header, event)) {
            Ok(json) => Bytes::from(Sse::default().data(json)),
            Err(error) => {
                tracing::error!(%error, "a streamed event could not be serialised");
                return None;
            }
        };
        Some((frame, more.then_some(receiver)))
    })
}

/// The view of one event of the answer `header` names.
fn stream_event(header: StreamHeader, event: ChatEvent) -> StreamEvent {
    let body = match event {
        ChatEvent::Delta(answer) => StreamEventBody::Message {
            task_id: header.task,
            id: header.message_id,
            answer,
            from_variable_selector: None,
        },
        ChatEvent::End { metadata } => {
            StreamEventBody::MessageEnd { task_id: header.task, id: header.message_id, metadata, files: None }
        }
        ChatEvent::Failed(error) => StreamEventBody::Error { error: ErrorBody::new(&error) },
    };
    StreamEvent {
        conversation_id: header.conversation_id,
        message_id: header.message_id,
        created_at: header.created_at,
        body,
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use serde_json::Value;

    use super::*;
    use crate::api::error::ApiError;
    use crate::domain::{ConversationId, MessageId, TaskId};

    fn header() -> StreamHeader {
        StreamHeader {
            conversation_id: ConversationId::from_uuid(uuid::Uuid::nil()),
            message_id: MessageId::from_uuid(uuid::Uuid::nil()),
            task: TaskId::from_uuid(uuid::Uuid::nil()),
            created_at: 1,
        }
    }

    fn data(frame: &Bytes) -> Value {
        let text = std::str::from_utf8(frame).unwrap();
        let json = text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\n\n")).expect("one data line");
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn idle_streams_get_pings_and_events_are_framed_like_difys() {
        let (sender, receiver) = mpsc::channel(4);
        let mut frames = Box::pin(sse_frames(header(), receiver));
        let ping = frames.next().await.unwrap();
        assert_eq!(&ping[..], b"event: ping\n\n");

        sender.send(ChatEvent::Delta("Hel".into())).await.unwrap();
        let message = data(&frames.next().await.unwrap());
        assert_eq!(message["event"], "message");
        assert_eq!(message["answer"], "Hel");
        assert_eq!(message["id"], message["message_id"]);
        assert_eq!(message["created_at"], 1);

        sender
            .send(ChatEvent::Failed(ApiError::Provider(crate::ports::ProviderError::RateLimited("slow down".into()))))
            .await
            .unwrap();
        let error = data(&frames.next().await.unwrap());
        assert_eq!(error["event"], "error");
        assert_eq!((error["code"].as_str(), error["status"].as_u64()), (Some("rate_limit_error"), Some(429)));
        assert!(error.get("task_id").is_none());
        assert!(frames.next().await.is_none(), "the stream ends after an error");
    }
}
