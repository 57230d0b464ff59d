//! `POST /messages/:id/feedbacks` and `GET /app/feedbacks`.

use serde_json::json;

use super::input::Body;
use super::{ApiResponse, Ctx, render};
use crate::domain::{Feedback, FeedbackId, FeedbackSource, Limit, Owner, PageNumber, Rating};
use crate::error::ApiError;

pub(crate) async fn submit(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let rating = Rating::parse(body.raw("rating"))?;
    let content = body.string("content")?.map(str::to_owned);
    let owner = ctx.end_user(body.user(true)?).await?.owner();
    let message = ctx.store().message(owner, message_id).await?.ok_or(ApiError::NotFound("Message Not Exists."))?;
    let existing = ctx.store().user_feedback(owner, message_id).await?;

    let now = ctx.now();
    match (rating, existing) {
        (None, None) => Err(ApiError::InvalidParam("rating cannot be None when feedback not exists".into())),
        (None, Some(existing)) => {
            check_rate(ctx, owner).await?;
            ctx.store().delete_feedback(&existing).await?;
            Ok(success())
        }
        (Some(rating), Some(mut existing)) => {
            check_rate(ctx, owner).await?;
            existing.rating = rating;
            existing.content = content;
            existing.updated_at = now;
            ctx.store().save_feedback(&existing).await?;
            Ok(success())
        }
        (Some(rating), None) => {
            check_rate(ctx, owner).await?;
            let feedback = Feedback {
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
            };
            ctx.store().save_feedback(&feedback).await?;
            Ok(success())
        }
    }
}

fn success() -> ApiResponse {
    ApiResponse::ok(&json!({"result": "success"}))
}

/// Feedback writes are limited per end user.
async fn check_rate(ctx: &Ctx<'_>, owner: Owner) -> Result<(), ApiError> {
    ctx.check_rate(&format!("feedback:{}:{}", owner.app_id, owner.end_user_id)).await
}

pub(crate) async fn list_app(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let page = PageNumber::parse(ctx.query.get("page"))?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX_APP_FEEDBACKS)?;
    let rows = ctx.store().app_feedbacks(ctx.app.id, page.offset(limit), limit.get()).await?;
    Ok(ApiResponse::ok(&json!({"data": rows.iter().map(render::feedback).collect::<Vec<_>>()})))
}
