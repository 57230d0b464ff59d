//! `POST /messages/:id/feedbacks` and `GET /app/feedbacks`.

use std::collections::HashMap;

use futures_util::future::try_join_all;

use super::input::Body;
use super::views::{self, FeedbackList, Success};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::domain::{
    AuditAction, ConversationId, EndUserId, Feedback, FeedbackFilter, FeedbackId, FeedbackSource, Invalid, Limit,
    Message, PageNumber, Rating, TimeRange, parse_time,
};
use crate::ports::StoreResult;

const MESSAGE_NOT_FOUND: &str = "Message Not Exists.";

/// What a feedback request does.
enum Change {
    Revoke(Feedback),
    /// The feedback to store, and the rating of the one it replaces (as read).
    Save(Feedback, Option<Rating>),
}

impl Change {
    /// What a request rating `message` (or revoking, `rating: None`) does, given the
    /// feedback of the same giver already stored (`existing`). A new feedback is made for
    /// `source` and `from_end_user_id`; a concurrent first feedback of the same giver may win,
    /// and the store then updates that one.
    fn of(
        ctx: &Ctx<'_>,
        message: &Message,
        (rating, content): (Option<Rating>, Option<String>),
        existing: Option<Feedback>,
        (source, from_end_user_id): (FeedbackSource, Option<EndUserId>),
    ) -> Result<Self, ApiError> {
        let now = ctx.now();
        let previous = existing.as_ref().map(|f| f.rating);
        Ok(match (rating, existing) {
            (None, None) => {
                return Err(ApiError::InvalidParam("rating cannot be None when feedback not exists".into()));
            }
            (None, Some(existing)) => Self::Revoke(existing),
            (Some(rating), Some(existing)) => {
                Self::Save(Feedback { rating, content, updated_at: now, ..existing }, previous)
            }
            (Some(rating), None) => Self::Save(
                Feedback {
                    id: FeedbackId::from_uuid(ctx.services.ids.new_id()),
                    app_id: ctx.app.id,
                    conversation_id: message.conversation_id,
                    message_id: message.id,
                    rating,
                    content,
                    source,
                    from_end_user_id,
                    created_at: now,
                    updated_at: now,
                },
                None,
            ),
        })
    }

    /// Writes the change; false when the message or its conversation is gone.
    async fn write(self, ctx: &Ctx<'_>, message: &Message) -> StoreResult<bool> {
        match self {
            Self::Revoke(existing) => ctx.store().delete_feedback(&existing, message).await,
            Self::Save(feedback, previous) => ctx.store().save_feedback(&feedback, previous, message).await,
        }
    }
}

pub(crate) async fn submit(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let rating = Rating::parse(body.raw("rating"))?;
    let content = body.string("content")?.map(str::to_owned);
    let owner = ctx.end_user(body.user(true)?).await?.owner();
    let message = ctx.store().message(owner, message_id).await?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    if !ctx.message_unexpired(&message).await? {
        return Err(ApiError::NotFound(MESSAGE_NOT_FOUND));
    }
    let existing = ctx.store().user_feedback(owner, message_id).await?;
    let giver = (FeedbackSource::User, Some(owner.end_user_id));
    let change = Change::of(ctx, &message, (rating, content), existing, giver)?;
    let hit = ctx.check_rate(&owner.feedback_rate_key()).await?;
    match change.write(ctx, &message).await {
        Ok(true) => Ok(ApiResponse::ok(&Success::new())),
        // The conversation or the message was deleted since the message was read.
        Ok(false) => {
            hit.give_back(ctx).await;
            Err(ApiError::NotFound(MESSAGE_NOT_FOUND))
        }
        Err(error) => {
            hit.give_back(ctx).await;
            Err(error.into())
        }
    }
}

/// `POST /v1/app/messages/:id/feedbacks` (operator key, a Colloquy extension): the operators'
/// like, dislike or revocation of any message of the app, kept apart from the end user's own
/// rating (`from_source: admin`, as Dify's console rates), counted in its conversation's counts.
pub(crate) async fn submit_operator(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let rating = Rating::parse(body.raw("rating"))?;
    let content = body.string("content")?.map(str::to_owned);
    ctx.require_chat_app()?;
    let message =
        ctx.store().app_message(ctx.app.id, message_id).await?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    if !ctx.message_unexpired(&message).await? {
        return Err(ApiError::NotFound(MESSAGE_NOT_FOUND));
    }
    let existing = ctx.store().operator_feedback(ctx.app.id, message_id).await?;
    let detail = format!("rating={}", rating.map_or("null", Rating::as_str));
    ctx.audit(AuditAction::RateMessage, Some(message_id.to_string()), Some(&detail)).await?;
    let change = Change::of(ctx, &message, (rating, content), existing, (FeedbackSource::Admin, None))?;
    if change.write(ctx, &message).await? {
        Ok(ApiResponse::ok(&Success::new()))
    } else {
        Err(ApiError::NotFound(MESSAGE_NOT_FOUND))
    }
}

/// `GET /app/feedbacks`: Dify's call, with our filters (absent ones filter nothing) and each
/// item's query and answer.
pub(crate) async fn list_app(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let page = PageNumber::parse(ctx.query.get("page"))?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX_APP_FEEDBACKS)?;
    let mut filter = feedback_filter(ctx)?;
    // `end_user`, not `user`: Dify's call ignores a `user`, and clients send one.
    if let Some(user) = ctx.query.get("end_user") {
        filter.end_users = Some(super::operator::end_users_named(ctx, &crate::domain::UserRef::parse(user)?).await?);
    }
    let mut rows = ctx.store().listed_feedbacks(ctx.app.id, &filter, page.offset(limit), limit.get()).await?;
    if ctx.app.config.retention.conversation_days.is_some() {
        // Feedback on an expired conversation's messages is gone with it (before its removal
        // the page comes back short: pages stay where they were).
        let mut ids: Vec<ConversationId> = rows.iter().map(|row| row.feedback.conversation_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let found = try_join_all(ids.iter().map(|id| ctx.unexpired_app_conversation(*id))).await?;
        let live: HashMap<ConversationId, bool> =
            ids.into_iter().zip(found).map(|(id, found)| (id, found.is_some())).collect();
        rows.retain(|row| live.get(&row.feedback.conversation_id).copied().unwrap_or(false));
    }
    Ok(ApiResponse::ok(&FeedbackList { data: rows.into_iter().map(views::ListedFeedback::from).collect() }))
}

/// The filters of `GET /app/feedbacks` but `end_user` (which needs the store).
fn feedback_filter(ctx: &Ctx<'_>) -> Result<FeedbackFilter, ApiError> {
    let rating = ctx.query.get("rating").map(Rating::from_query).transpose()?;
    let source = match ctx.query.get("from_source") {
        None => None,
        Some("user") => Some(FeedbackSource::User),
        Some("admin") => Some(FeedbackSource::Admin),
        Some(other) => return Err(Invalid(format!("from_source: expected user or admin, got '{other}'")).into()),
    };
    let has_content = match ctx.query.get("has_content") {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(other) => return Err(Invalid(format!("has_content: expected true or false, got '{other}'")).into()),
    };
    let time = |name: &str| ctx.query.get(name).map(|raw| parse_time(name, raw)).transpose();
    Ok(FeedbackFilter {
        rating,
        source,
        end_users: None,
        conversation: ctx.query.id::<ConversationId>("conversation_id")?,
        created: TimeRange::new(time("start")?, time("end")?),
        has_content,
    })
}
