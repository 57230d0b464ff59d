//! One end user's data (Colloquy extensions; app keys relay the user's own request, operator
//! keys act for the app): erase it, follow the erasure, export it. Every request is recorded in
//! the app's audit log by the erasure's id or the action alone, never by what was erased.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::mpsc;

use super::operator::end_users_named;
use super::views::{self, AppMessage, ExportedFile};
use super::{ApiResponse, Ctx, JobRunner, ResponseBody};
use crate::api::error::ApiError;
use crate::domain::{
    AuditAction, ConversationList, ConversationSort, Cursor, EndUserId, ErasureId, ErasureJob, FeedbackSource,
    MessageId, Owner, SortField, Timestamp, UserRef,
};
use crate::erasure::{hide, run_erasure};
use crate::ports::{Store, StoreError, StoreResult};

const NOT_FOUND: &str = "Erasure Not Exists.";

fn path_user(ctx: &Ctx<'_>) -> Result<UserRef, ApiError> {
    ctx.ids.user.clone().ok_or(ApiError::RouteNotFound)
}

/// `DELETE /v1/end-users/:user` → 202 with the erasure: the user's conversations are deleted
/// before the answer (nothing of theirs reads any more), the rest is removed in the background.
/// Sent again, it continues an erasure that stopped.
pub(crate) async fn erase(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let user = path_user(ctx)?;
    let end_users = end_users_named(ctx, &user).await?;
    let mut job =
        ErasureJob::new(ErasureId::from_uuid(ctx.services.ids.new_id()), ctx.app.id, user, end_users, ctx.now());
    ctx.audit(AuditAction::EraseEndUser, Some(job.id.to_string()), None).await?;
    let store = ctx.services.store.clone();
    let owners = Owner::of_each(job.app_id, &job.end_users);
    // Hidden first, then the job stored (on AWS its insert starts it): a request cut short in
    // between has hidden what it could and left the rest to the same request sent again.
    job.counts = hide(store.as_ref(), &owners).await?;
    job.updated_at = ctx.now();
    store.save_erasure(&job).await?;
    if ctx.services.jobs == JobRunner::InProcess {
        let (blobs, clock, job) = (ctx.services.blobs.clone(), ctx.services.clock.clone(), job.clone());
        tokio::spawn(async move { run_erasure(store, blobs.as_ref(), clock.as_ref(), job).await });
    }
    Ok(ApiResponse::json(StatusCode::ACCEPTED, &views::Erasure::from(&job)))
}

/// `GET /v1/end-users/:user/erasures/:id`: where the erasure stands and what it removed.
pub(crate) async fn erasure(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let user = path_user(ctx)?;
    let id = ctx.ids.erasure.ok_or(ApiError::RouteNotFound)?;
    let job = ctx
        .store()
        .erasure(ctx.app.id, id)
        .await?
        .filter(|job| job.is_of(&user) && job.is_kept(ctx.now()))
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    ctx.audit(AuditAction::ReadErasure, Some(id.to_string()), None).await?;
    Ok(ApiResponse::ok(&views::Erasure::from(&job.as_of(ctx.now()))))
}

/// `GET /v1/end-users/:user/export`: one JSON document with everything stored of the user —
/// each conversation with its messages (as `/messages` shows them, with every feedback on
/// each) and variables, and their files' metadata — written as it is read, a page at a time.
pub(crate) async fn export(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let user = path_user(ctx)?;
    let end_users = end_users_named(ctx, &user).await?;
    ctx.audit(AuditAction::ExportEndUser, None, None).await?;
    let owners = Owner::of_each(ctx.app.id, &end_users);
    // The first reads happen before the answer starts, so that a store that is down answers
    // 503 rather than a document cut short.
    let files = {
        let mut files = Vec::new();
        for &owner in &owners {
            files.extend(ctx.store().files_of(owner).await?.into_iter().filter(|f| !f.is_expired(ctx.now())));
        }
        files
    };
    let head = serde_json::json!({
        "user": user.as_str(),
        "end_user_ids": end_users,
        "exported_at": ctx.now().unix_seconds(),
    });
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let store = ctx.services.store.clone();
    let now = ctx.now();
    tokio::spawn(async move {
        let mut out = Writer { sender, buffer: Vec::with_capacity(CHUNK) };
        let written = write_document(store, &mut out, head, &owners, files, now).await;
        match written {
            Ok(()) => out.flush().await,
            // The document stays incomplete (not valid JSON), so it never reads as whole.
            Err(error) => tracing::warn!(%error, "an end user's export broke off"),
        }
    });
    let mut headers = http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    let disposition = "attachment; filename=\"colloquy-end-user-export.json\"";
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Stream(Box::pin(stream)) })
}

/// Rows read per request.
const PAGE: usize = 100;
/// Bytes gathered before a chunk is handed on.
const CHUNK: usize = 64 * 1024;

struct Writer {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl Writer {
    async fn raw(&mut self, text: &str) -> StoreResult<()> {
        self.buffer.extend_from_slice(text.as_bytes());
        if self.buffer.len() >= CHUNK { self.send().await } else { Ok(()) }
    }

    async fn value(&mut self, value: &impl serde::Serialize) -> StoreResult<()> {
        serde_json::to_writer(&mut self.buffer, value).map_err(|e| StoreError::Failed(format!("json: {e}")))?;
        if self.buffer.len() >= CHUNK { self.send().await } else { Ok(()) }
    }

    async fn send(&mut self) -> StoreResult<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.sender.send(chunk).await.map_err(|_| StoreError::Failed("the client went away".into()))
    }

    async fn flush(&mut self) {
        if !self.buffer.is_empty() {
            // Nothing to do when the client went away.
            let _ = self.send().await;
        }
    }
}

/// `{"user", "end_user_ids", "exported_at", "conversations": [...], "files": [...]}`.
async fn write_document(
    store: Arc<dyn Store>,
    out: &mut Writer,
    head: serde_json::Value,
    owners: &[Owner],
    files: Vec<crate::domain::UploadFile>,
    now: Timestamp,
) -> StoreResult<()> {
    let head = serde_json::to_string(&head).map_err(|e| StoreError::Failed(format!("json: {e}")))?;
    // The head's fields, then the lists, in one object.
    out.raw(&head[..head.len() - 1]).await?;
    out.raw(",\"conversations\":[").await?;
    let mut first = true;
    // Oldest first, so the order does not move while the user goes on chatting.
    let sort = ConversationSort { field: SortField::CreatedAt, descending: false };
    let lists = [ConversationList::Active, ConversationList::Archived];
    let mut sources = Vec::with_capacity(owners.len() * lists.len());
    for &owner in owners {
        for list in &lists {
            sources.push((owner, list));
        }
    }
    for (owner, list) in sources {
        let mut after = None;
        loop {
            let page = store.conversations(owner, sort, list, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor { at: last.created_at, id: last.id });
            for conversation in page.into_iter().filter(|c| !c.is_expired(now)) {
                if !std::mem::take(&mut first) {
                    out.raw(",").await?;
                }
                write_conversation(store.as_ref(), out, conversation, owner.end_user_id, now).await?;
            }
        }
    }
    out.raw("],\"files\":").await?;
    let files: Vec<ExportedFile> = files.into_iter().map(Into::into).collect();
    out.value(&files).await?;
    out.raw("}").await
}

/// A conversation as `/conversations` lists it, with its `messages` and `variables`.
async fn write_conversation(
    store: &dyn Store,
    out: &mut Writer,
    conversation: crate::domain::Conversation,
    end_user: EndUserId,
    now: Timestamp,
) -> StoreResult<()> {
    let id = conversation.id;
    let view = serde_json::to_string(&views::Conversation::from(conversation.clone()))
        .map_err(|e| StoreError::Failed(format!("json: {e}")))?;
    out.raw(&view[..view.len() - 1]).await?;
    out.raw(",\"messages\":[").await?;
    let mut after: Option<Cursor<MessageId>> = None;
    let mut first = true;
    loop {
        let page = store.messages_after(id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor { at: last.created_at, id: last.id });
        let ids: Vec<MessageId> = page.iter().map(|m| m.id).collect();
        let mut feedbacks = store.feedbacks_on(&conversation, &ids).await?;
        feedbacks.sort_by_key(|f| (f.created_at, f.id));
        for mut message in page {
            if message.is_abandoned(now) {
                message.mark_abandoned();
            }
            let on: Vec<&crate::domain::Feedback> = feedbacks.iter().filter(|f| f.message_id == message.id).collect();
            let rating = on
                .iter()
                .find(|f| f.source == FeedbackSource::User && f.from_end_user_id == Some(end_user))
                .map(|f| f.rating);
            let feedbacks = on.into_iter().cloned().map(views::Feedback::from).collect();
            if !std::mem::take(&mut first) {
                out.raw(",").await?;
            }
            out.value(&AppMessage { message: views::Message::new(message, rating), feedbacks }).await?;
        }
    }
    out.raw("],\"variables\":[").await?;
    let mut after = None;
    let mut first = true;
    loop {
        let page = store.variables(id, None, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor { at: last.created_at, id: last.id });
        for variable in page {
            if !std::mem::take(&mut first) {
                out.raw(",").await?;
            }
            out.value(&views::Variable::from(variable)).await?;
        }
    }
    out.raw("]}").await
}
