//! `GET /conversations/:id/variables`, `PUT|PATCH /conversations/:id/variables/:variable_id`.

use super::conversations::{owned, read_owned};
use super::input::Body;
use super::views::{self, Page, split_probe};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::domain::{Cursor, Limit, VariableId, VariableNameFilter, json_type_name};

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let conversation_id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let user = ctx.query.user(false)?;
    let last_id = ctx.query.id::<VariableId>("last_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    let name = ctx.query.get("variable_name").map(VariableNameFilter::parse).transpose()?;
    ctx.require_chat_app()?;
    read_owned(ctx, &user, conversation_id).await?;

    let after = match last_id {
        None => None,
        Some(id) => {
            let last = ctx
                .store()
                .variable(conversation_id, id)
                .await?
                .filter(|v| name.as_ref().is_none_or(|filter| filter.matches(&v.name)))
                // Dify raises a bare service error here: 400 invalid_param with an empty message.
                .ok_or_else(|| ApiError::InvalidParam(String::new()))?;
            Some(Cursor { at: last.created_at, id })
        }
    };
    let rows = ctx.store().variables(conversation_id, name.as_ref(), after, limit.probe()).await?;
    let (rows, has_more) = split_probe(rows, limit.get());
    let data = rows.into_iter().map(views::Variable::from).collect();
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

pub(crate) async fn update(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let conversation_id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let variable_id = ctx.ids.variable.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let value = body.required_any("value")?.clone();
    let owner = ctx.end_user(body.user(false)?).await?.owner();
    ctx.require_chat_app()?;
    owned(ctx, owner, conversation_id).await?;

    let mut variable = ctx
        .store()
        .variable(conversation_id, variable_id)
        .await?
        .ok_or(ApiError::NotFound("Conversation Variable Not Exists."))?;
    if !variable.value_type.accepts(&value) {
        return Err(ApiError::BadRequest(format!(
            "Type mismatch: variable '{}' expects {}, but got {} type",
            variable.name,
            variable.value_type.as_str(),
            json_type_name(&value)
        )));
    }
    variable.value = value;
    variable.updated_at = ctx.now();
    ctx.store().update_variable(&variable).await?;
    Ok(ApiResponse::ok(&views::Variable::from(variable)))
}
