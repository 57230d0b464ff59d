//! `POST /messages/:id/feedbacks` and `GET /app/feedbacks`.

use super::input::Body;
use super::views::{self, FeedbackList, Success};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::domain::{Feedback, FeedbackId, FeedbackSource, Limit, PageNumber, Rating};

const MESSAGE_NOT_FOUND: &str = "Message Not Exists.";

/// What a feedback request does.
enum Change {
    Revoke(Feedback),
    Save(Feedback),
}

pub(crate) async fn submit(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let rating = Rating::parse(body.raw("rating"))?;
    let content = body.string("content")?.map(str::to_owned);
    let owner = ctx.end_user(body.user(true)?).await?.owner();
    let message = ctx.store().message(owner, message_id).await?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    let existing = ctx.store().user_feedback(owner, message_id).await?;

    let now = ctx.now();
    let previous = existing.as_ref().map(|f| f.rating);
    let change = match (rating, existing) {
        (None, None) => {
            return Err(ApiError::InvalidParam("rating cannot be None when feedback not exists".into()));
        }
        (None, Some(existing)) => Change::Revoke(existing),
        (Some(rating), Some(existing)) => Change::Save(Feedback { rating, content, updated_at: now, ..existing }),
        // A concurrent first feedback of the same end user may win: the store then updates that one.
        (Some(rating), None) => Change::Save(Feedback {
            id: FeedbackId::from_uuid(ctx.services.ids.new_id()),
            app_id: ctx.app.id,
            conversation_id: message.conversation_id,
            message_id,
            rating,
            content,
            source: FeedbackSource::User,
            from_end_user_id: Some(owner.end_user_id),
            created_at: now,
            updated_at: now,
        }),
    };
    let hit = ctx.check_rate(&format!("feedback:{}:{}", owner.app_id, owner.end_user_id)).await?;
    let written = match change {
        Change::Revoke(existing) => ctx.store().delete_feedback(&existing, &message).await,
        Change::Save(feedback) => ctx.store().save_feedback(&feedback, previous, &message).await,
    };
    match written {
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

pub(crate) async fn list_app(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let page = PageNumber::parse(ctx.query.get("page"))?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX_APP_FEEDBACKS)?;
    let rows = ctx.store().app_feedbacks(ctx.app.id, page.offset(limit), limit.get()).await?;
    Ok(ApiResponse::ok(&FeedbackList { data: rows.into_iter().map(views::Feedback::from).collect() }))
}
