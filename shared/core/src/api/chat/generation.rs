//! The generation task behind a chat answer: it reads the model's stream (or an annotation's
//! answer) within the deadline, watches for a stop request, stores the message with its
//! outcome and the generated title, and reports what happens over a channel. It runs on its
//! own, so a client that goes away does not lose the answer.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::api::Services;
use crate::api::conversations::{NOT_FOUND, generate_title};
use crate::api::error::ApiError;
use crate::api::views::{AnnotationReply, MessageMetadata, Usage};
use crate::domain::{
    Annotation, App, Conversation, ConversationId, ConversationTitle, Message, MessageId, MessageStatus, OpaqueJson,
    Owner, TaskId,
};
use crate::ports::{self, LlmEvent, LlmStream, ProviderError};

/// How often a running generation checks whether its owner asked it to stop.
const STOP_POLL: Duration = Duration::from_millis(100);

/// What the generation task reports.
pub(crate) enum ChatEvent {
    Delta(String),
    End { metadata: MessageMetadata },
    Failed(ApiError),
}

/// What identifies an answer in every event sent about it.
#[derive(Clone, Copy)]
pub(crate) struct StreamHeader {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub task: TaskId,
    pub created_at: i64,
}

/// One answer being generated, with what it needs to store its outcome.
pub(super) struct Generation {
    pub services: Services,
    pub app: App,
    pub owner: Owner,
    pub conversation: Conversation,
    /// Whether to give the (new) conversation a generated title.
    pub name_it: bool,
    /// The message, stored already with its task; its answer is filled in here.
    pub message: Message,
    pub task: TaskId,
    /// The annotation that answers instead of the model, if one matched.
    pub annotation: Option<Annotation>,
    pub started: Instant,
}

impl Generation {
    /// Runs the generation to its end, reporting over `events`: deltas, then one `End` or
    /// `Failed`. A receiver that went away does not stop it.
    pub async fn run(mut self, mut source: LlmStream, events: mpsc::Sender<ChatEvent>) {
        let title = self.name_it.then(|| {
            let (services, app, query) = (self.services.clone(), self.app.clone(), self.message.query.clone());
            tokio::spawn(async move { generate_title(&services, &app, &query).await })
        });
        let store = &self.services.store;
        let mut usage = ports::Usage::default();
        let mut failure = None;
        let mut poll = tokio::time::interval(STOP_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                next = source.next() => match next {
                    Some(Ok(LlmEvent::Delta(text))) => {
                        self.message.answer.push_str(&text);
                        // A client that went away does not stop the answer from being stored.
                        let _ = events.send(ChatEvent::Delta(text)).await;
                    }
                    Some(Ok(LlmEvent::Done(reported))) => {
                        usage = reported;
                        break;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "model provider failed mid-stream");
                        failure = Some(ApiError::Provider(error));
                        break;
                    }
                    None => break,
                },
                _ = poll.tick() => {
                    if store.stop_requested(self.task).await.unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        drop(source);

        let metadata = MessageMetadata::new(Usage::new(usage, self.started.elapsed()));
        let stored = MessageMetadata {
            annotation_reply: self.annotation.as_ref().map(|a| AnnotationReply { id: a.id, account: None }),
            ..metadata.clone()
        };
        if let Some(error) = &failure {
            self.message.status = MessageStatus::Error;
            self.message.error = Some(error.parts().2);
        }
        self.message.metadata = OpaqueJson::of(&stored);
        self.message.task_id = None;
        let outcome = self.finish(title).await;
        let last = match (failure, outcome) {
            (Some(error), _) | (None, Err(error)) => ChatEvent::Failed(error),
            (None, Ok(())) => ChatEvent::End { metadata },
        };
        let _ = events.send(last).await;
    }

    /// Stores the answer (which ends the message's generating state), the annotation hit and
    /// the title, and releases the task.
    async fn finish(
        &mut self,
        title: Option<tokio::task::JoinHandle<Option<ConversationTitle>>>,
    ) -> Result<(), ApiError> {
        let store = &self.services.store;
        let saved = store.update_message(&self.message).await;
        if let Some(annotation) = &self.annotation
            && let Err(error) = store.record_annotation_hit(self.app.id, annotation.id).await
        {
            tracing::warn!(%error, "could not count an annotation hit");
        }
        if let Some(Ok(Some(title))) = match title {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            self.conversation.name = title.into_string();
            if let Err(error) = store.update_conversation(&self.conversation).await {
                tracing::warn!(%error, "could not store a generated title");
            }
        }
        if let Err(error) = store.finish_task(self.task).await {
            tracing::warn!(%error, "could not release a finished task");
        }
        tracing::debug!(owner = ?self.owner, task = %self.task, "generation finished");
        match saved {
            Ok(true) => Ok(()),
            // The conversation was deleted while the answer was generated: nothing was stored.
            Ok(false) => Err(ApiError::NotFound(NOT_FOUND)),
            Err(error) => Err(error.into()),
        }
    }
}

/// The model's stream, ended by a failure if it is still running after `deadline`: a
/// generation must end (and store its outcome) before its process may be stopped.
pub(super) fn within_deadline(source: LlmStream, deadline: Duration) -> LlmStream {
    let expiry = Box::pin(tokio::time::sleep(deadline));
    Box::pin(futures_util::stream::unfold(Some((source, expiry)), move |state| async move {
        let (mut source, mut expiry) = state?;
        tokio::select! {
            next = source.next() => next.map(|item| (item, Some((source, expiry)))),
            () = &mut expiry => {
                let late = format!("The model did not finish its answer within {} seconds.", deadline.as_secs());
                Some((Err(ProviderError::Failed(late)), None))
            }
        }
    }))
}

/// An annotation's answer, as a stream like a model's.
pub(super) fn annotation_stream(annotation: &Annotation) -> LlmStream {
    let events = [Ok(LlmEvent::Delta(annotation.answer.clone())), Ok(LlmEvent::Done(ports::Usage::default()))];
    Box::pin(futures_util::stream::iter(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GENERATION_DEADLINE;

    #[tokio::test(start_paused = true)]
    async fn a_model_that_does_not_finish_by_the_deadline_fails() {
        let started = tokio::time::Instant::now();
        let hanging =
            futures_util::stream::iter([Ok(LlmEvent::Delta("Half an ".into()))]).chain(futures_util::stream::pending());
        let mut stream = within_deadline(Box::pin(hanging), GENERATION_DEADLINE);
        assert_eq!(stream.next().await, Some(Ok(LlmEvent::Delta("Half an ".into()))));
        match stream.next().await {
            Some(Err(ProviderError::Failed(message))) => assert!(message.contains("100 seconds"), "{message}"),
            other => panic!("expected the deadline's failure, got {other:?}"),
        }
        assert!(started.elapsed() >= GENERATION_DEADLINE);
        assert_eq!(stream.next().await, None, "and nothing after it");

        let finished =
            futures_util::stream::iter([Ok(LlmEvent::Delta("ok".into())), Ok(LlmEvent::Done(ports::Usage::default()))]);
        let events: Vec<_> = within_deadline(Box::pin(finished), GENERATION_DEADLINE).collect().await;
        assert_eq!(events.len(), 2, "a timely answer passes unchanged");
        assert_eq!(started.elapsed(), GENERATION_DEADLINE, "without waiting for the deadline");
    }
}
