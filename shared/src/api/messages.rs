//! `GET /messages`: conversation history, newest page first, each page oldest → newest.

use std::collections::HashMap;

use super::conversations::owned;
use super::{ApiResponse, Ctx, render};
use crate::domain::{ConversationId, Cursor, Limit, MessageId};
use crate::error::ApiError;

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    if !ctx.query.has("conversation_id") {
        return Err(ApiError::InvalidParam("conversation_id: Field required".into()));
    }
    let conversation_id = ctx.query.id::<ConversationId>("conversation_id")?;
    let first_id = ctx.query.id::<MessageId>("first_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    let owner = ctx.end_user(ctx.query.user(false)?).await?.owner();
    ctx.require_chat_app()?;
    // `conversation_id=` (present but empty) is an empty page in Dify, not an error.
    let Some(conversation_id) = conversation_id else {
        return Ok(ApiResponse::ok(&render::page(limit.get(), false, Vec::new())));
    };
    owned(ctx, owner, conversation_id).await?;

    let before = match first_id {
        None => None,
        Some(id) => {
            let first = ctx
                .store()
                .message_in(conversation_id, id)
                .await?
                .ok_or(ApiError::NotFound("First Message Not Exists."))?;
            Some(Cursor { at: first.created_at, id })
        }
    };
    let rows = ctx.store().messages_before(conversation_id, before, limit.probe()).await?;
    let (mut rows, has_more) = render::split_probe(rows, limit.get());
    rows.reverse();
    let ids: Vec<MessageId> = rows.iter().map(|m| m.id).collect();
    let ratings: HashMap<_, _> = ctx.store().user_ratings(owner, &ids).await?.into_iter().collect();
    let data = rows.iter().map(|m| render::message(m, ratings.get(&m.id).copied())).collect();
    Ok(ApiResponse::ok(&render::page(limit.get(), has_more, data)))
}
