//! The operator routes (Colloquy extensions, operator keys only): every conversation of the
//! app, and any conversation's messages with every feedback on them.

use std::collections::HashMap;

use super::conversations::{NOT_FOUND, read_past};
use super::files;
use super::messages::settled_one;
use super::views::{self, Page, split_probe};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::domain::{
    AuditAction, AuditId, ConversationFilter, ConversationId, ConversationSummary, Cursor, EndUserId, Granularity,
    Limit, MessageId, NameFilter, RatedMessage, Rating, StatsRange, TimeRange, UserRef, parse_time, stats_buckets,
};

/// A `[*_after, *_before)` pair of query parameters.
fn time_range(ctx: &Ctx<'_>, what: &str) -> Result<TimeRange, ApiError> {
    let bound = |name: String| ctx.query.get(&name).map(|raw| parse_time(&name, raw)).transpose();
    let from = bound(format!("{what}_after"))?;
    let until = bound(format!("{what}_before"))?;
    Ok(TimeRange::new(from, until))
}

/// The end users a `user` string names in this app: its derived id and, for an end user first
/// seen before ids were derived, its stored one.
pub(crate) async fn end_users_named(ctx: &Ctx<'_>, user: &UserRef) -> Result<Vec<EndUserId>, ApiError> {
    let mut ids = vec![EndUserId::derived(ctx.app.id, user)];
    if let Some(stored) = ctx.store().find_end_user(ctx.app.id, user).await?
        && !ids.contains(&stored.id)
    {
        ids.push(stored.id);
    }
    Ok(ids)
}

fn filter_of(ctx: &Ctx<'_>) -> Result<ConversationFilter, ApiError> {
    let rating = ctx.query.get("rating").map(Rating::from_query).transpose()?;
    Ok(ConversationFilter {
        end_users: None,
        created: time_range(ctx, "created")?,
        updated: time_range(ctx, "updated")?,
        rating,
        name: ctx.query.get("name").map(NameFilter::parse).transpose()?,
    })
}

/// `GET /v1/app/conversations`: every live conversation of the app, newest activity first.
pub(crate) async fn conversations(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let last_id = ctx.query.id::<ConversationId>("last_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    let mut filter = filter_of(ctx)?;
    ctx.require_chat_app()?;
    if let Some(user) = ctx.query.get("user") {
        filter.end_users = Some(end_users_named(ctx, &UserRef::parse(user)?).await?);
    }
    ctx.audit(AuditAction::ListConversations, None, Some(&ctx.request.query)).await?;
    let after = match last_id {
        Some(id) => {
            let last =
                ctx.unexpired_app_conversation(id).await?.ok_or(ApiError::NotFound("Last Conversation Not Exists."))?;
            Some(Cursor { at: last.conversation.updated_at, id })
        }
        None => None,
    };
    let now = ctx.now();
    let rows = read_past(
        limit.probe(),
        after,
        |s: &ConversationSummary| Cursor { at: s.conversation.updated_at, id: s.conversation.id },
        |s| !s.conversation.is_expired(now),
        |after| ctx.store().app_conversations(ctx.app.id, &filter, after, limit.probe()),
    )
    .await?;
    let (rows, has_more) = split_probe(rows, limit.get());
    let data: Vec<views::AppConversation> = rows.into_iter().map(Into::into).collect();
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

/// `GET /v1/app/conversations/:id/messages`: `/messages` of any conversation of the app
/// (same `first_id` paging, same message shape) with every feedback on each message.
pub(crate) async fn conversation_messages(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let first_id = ctx.query.id::<MessageId>("first_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    ctx.require_chat_app()?;
    let summary = ctx.unexpired_app_conversation(id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    ctx.audit(AuditAction::ReadConversation, Some(id.to_string()), Some(&ctx.request.query)).await?;
    let before = match first_id {
        Some(first) => {
            let at =
                ctx.store().message_time(id, first).await?.ok_or(ApiError::NotFound("First Message Not Exists."))?;
            Some(Cursor { at, id: first })
        }
        None => None,
    };
    let rows = ctx.store().rated_messages_before(id, before, limit.probe()).await?;
    let (mut rows, has_more) = split_probe(rows, limit.get());
    rows.reverse();
    let ids: Vec<MessageId> = rows.iter().map(|row| row.message.id).collect();
    let mut feedbacks: HashMap<MessageId, Vec<views::Feedback>> = HashMap::new();
    let mut stored = ctx.store().feedbacks_on(&summary.conversation, &ids).await?;
    stored.sort_by_key(|f| (f.created_at, f.id));
    for feedback in stored {
        feedbacks.entry(feedback.message_id).or_default().push(feedback.into());
    }
    let mut data = Vec::with_capacity(rows.len());
    for RatedMessage { message, rating, .. } in rows {
        let feedbacks = feedbacks.remove(&message.id).unwrap_or_default();
        data.push(views::AppMessage {
            message: views::Message::new(settled_one(ctx, message).await, rating),
            feedbacks,
        });
    }
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

/// `DELETE /v1/app/conversations/:id`: deletes any conversation of the app (the same hard
/// delete as the end user's `DELETE /v1/conversations/:id`), recorded in the audit log.
pub(crate) async fn delete_conversation(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    ctx.require_chat_app()?;
    let summary = ctx.unexpired_app_conversation(id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    ctx.audit(AuditAction::DeleteConversation, Some(id.to_string()), None).await?;
    if ctx.store().delete_conversation(summary.conversation.owner, id).await? {
        Ok(ApiResponse::no_content())
    } else {
        Err(ApiError::NotFound(NOT_FOUND))
    }
}

/// `GET /v1/app/conversations/:id/files/:file_id/preview`: a file of the conversation's end
/// user (what the thread's `message_files` name by `upload_file_id`), served as `/files/:id/preview`
/// serves it to its owner, recorded in the audit log.
pub(crate) async fn file_preview(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let file_id = ctx.ids.file.ok_or(ApiError::RouteNotFound)?;
    let attachment = files::as_attachment(ctx);
    ctx.require_chat_app()?;
    let summary = ctx.unexpired_app_conversation(id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    ctx.audit(AuditAction::PreviewFile, Some(file_id.to_string()), None).await?;
    let file = files::live_file(ctx, summary.conversation.owner, file_id).await?.ok_or(ApiError::FileNotFound)?;
    files::serve(ctx, &file, attachment).await
}

/// `GET /v1/app/audit-log`: what the app's operators (and the CLI, for keys) did, newest
/// first, `last_id` paging; reading it is recorded too.
pub(crate) async fn audit_log(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let last_id = ctx.query.id::<AuditId>("last_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    ctx.audit(AuditAction::ReadAuditLog, None, Some(&ctx.request.query)).await?;
    let rows = ctx.store().audit_entries(ctx.app.id, last_id, limit.probe(), ctx.now()).await?;
    let (rows, has_more) = split_probe(rows, limit.get());
    let data: Vec<views::AuditEntry> = rows.into_iter().map(Into::into).collect();
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

/// `GET /v1/app/stats`: the app's usage per hour or day from the counters its writes keep.
pub(crate) async fn stats(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let granularity = Granularity::parse(ctx.query.get("granularity").unwrap_or("day"))?;
    let bound = |name: &str| ctx.query.get(name).map(|raw| parse_time(name, raw)).transpose();
    let range = StatsRange::new(granularity, bound("start")?, bound("end")?, ctx.now())?;
    ctx.audit(AuditAction::ReadStats, None, Some(&ctx.request.query)).await?;
    let store = ctx.store();
    let hours = store.tallies(ctx.app.id, Granularity::Hour, range.from, range.until).await?;
    let days = match granularity {
        Granularity::Day => store.tallies(ctx.app.id, Granularity::Day, range.from, range.until).await?,
        Granularity::Hour => Vec::new(),
    };
    Ok(ApiResponse::ok(&views::Stats::new(&range, stats_buckets(&range, &hours, &days))))
}
