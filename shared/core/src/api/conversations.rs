//! `GET /conversations`, `GET|PATCH|DELETE /conversations/:id`, `POST /conversations/:id/name`.

use serde_json::Value;

use super::input::Body;
use super::views::{self, Page, split_probe};
use super::{ApiResponse, Ctx, Services};
use crate::api::error::ApiError;
use crate::domain::{
    App, Conversation, ConversationId, ConversationQuery, ConversationSort, ConversationTitle, Cursor, Limit, Metadata,
    Owner, SortField, UserRef,
};
use crate::ports::{LlmRequest, Purpose, Speaker};

pub(crate) const NOT_FOUND: &str = "Conversation Not Exists.";

/// The caller's conversation, or 404 for a missing or foreign one.
pub(crate) async fn owned(ctx: &Ctx<'_>, owner: Owner, id: ConversationId) -> Result<Conversation, ApiError> {
    ctx.unexpired(ctx.store().conversation(owner, id).await?).ok_or(ApiError::NotFound(NOT_FOUND))
}

/// The conversation of `user` on a route that only reads (see `Ctx::read_as`), or 404.
pub(crate) async fn read_owned(ctx: &Ctx<'_>, user: &UserRef, id: ConversationId) -> Result<Conversation, ApiError> {
    let found = ctx
        .read_as(user, move |owner| async move { Ok(ctx.unexpired(ctx.store().conversation(owner, id).await?)) })
        .await?;
    found.map(|(_, conversation)| conversation).ok_or(ApiError::NotFound(NOT_FOUND))
}

fn path_id(ctx: &Ctx<'_>) -> Result<ConversationId, ApiError> {
    ctx.ids.conversation.ok_or(ApiError::RouteNotFound)
}

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let user = ctx.query.user(false)?;
    // npm dify-client 2.x sends its page cursor as `first_id`: read it as `last_id`.
    let last_id = match ctx.query.id::<ConversationId>("last_id")? {
        Some(id) => Some(id),
        None => ctx.query.id::<ConversationId>("first_id")?,
    };
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    let sort = ConversationSort::parse(ctx.query.get("sort_by"))?;
    let filters = ConversationQuery::parse(ctx.query.pairs())?;
    let filters = &filters;
    ctx.require_chat_app()?;

    let rows = match last_id {
        // The cursor's conversation says whose list it is.
        Some(id) => {
            let (owner, last) =
                ctx.read_as(&user, move |owner| async move {
                    Ok(ctx.unexpired(ctx.store().conversation(owner, id).await?))
                })
                .await?
                .ok_or(ApiError::NotFound("Last Conversation Not Exists."))?;
            let at = match sort.field {
                SortField::CreatedAt => last.created_at,
                SortField::UpdatedAt => last.updated_at,
            };
            unexpired_page(ctx, owner, sort, filters, Some(Cursor { at, id }), limit.probe()).await?
        }
        None => ctx
            .read_as(&user, move |owner| async move {
                let rows = unexpired_page(ctx, owner, sort, filters, None, limit.probe()).await?;
                Ok((!rows.is_empty()).then_some(rows))
            })
            .await?
            .map(|(_, rows)| rows)
            .unwrap_or_default(),
    };
    let (rows, has_more) = split_probe(rows, limit.get());
    let data = rows.into_iter().map(views::Conversation::from).collect();
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

/// Up to `fetch` unexpired conversations of `owner` that pass `filters`, in `sort` order after
/// `after`: read from the list the filters name, reading on past expired ones (which the
/// sweeper or the store's TTL removes soon after they expire) and past those that fail a
/// filter the list does not decide (a second metadata pair, `pinned` beside a metadata pair,
/// `pinned=false`).
async fn unexpired_page(
    ctx: &Ctx<'_>,
    owner: Owner,
    sort: ConversationSort,
    filters: &ConversationQuery,
    after: Option<Cursor<ConversationId>>,
    fetch: usize,
) -> Result<Vec<Conversation>, ApiError> {
    let cursor_of = |c: &Conversation| Cursor {
        at: match sort.field {
            SortField::CreatedAt => c.created_at,
            SortField::UpdatedAt => c.updated_at,
        },
        id: c.id,
    };
    let now = ctx.now();
    let list = filters.list();
    read_past(
        fetch,
        after,
        cursor_of,
        |c| !c.is_expired(now) && filters.keeps(&c.state),
        |after| ctx.store().conversations(owner, sort, &list, after, fetch),
    )
    .await
}

/// Reads pages (`read` from a cursor, `fetch` rows at a time) until `fetch` rows are kept or the
/// rows run out: the pages of a list that hides some of its rows.
pub(crate) async fn read_past<T, R>(
    fetch: usize,
    mut after: Option<Cursor<ConversationId>>,
    cursor_of: impl Fn(&T) -> Cursor<ConversationId>,
    keep: impl Fn(&T) -> bool,
    read: impl Fn(Option<Cursor<ConversationId>>) -> R,
) -> Result<Vec<T>, ApiError>
where
    R: Future<Output = crate::ports::StoreResult<Vec<T>>>,
{
    let mut kept = Vec::with_capacity(fetch);
    loop {
        let rows = read(after).await?;
        let exhausted = rows.len() < fetch;
        after = rows.last().map(&cursor_of);
        kept.extend(rows.into_iter().filter(|row| keep(row)));
        if exhausted || kept.len() >= fetch {
            kept.truncate(fetch);
            return Ok(kept);
        }
    }
}

/// `GET /conversations/:id` (a Colloquy extension): one of the caller's conversations, in the
/// list's shape with its metadata, pinned and archived.
pub(crate) async fn get(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = path_id(ctx)?;
    let user = ctx.query.user(false)?;
    ctx.require_chat_app()?;
    let conversation = read_owned(ctx, &user, id).await?;
    Ok(ApiResponse::ok(&views::ConversationDetail::from(conversation)))
}

/// `metadata` of a request body: absent or `null` is `None`; an object of strings within the
/// limits, else 400.
pub(crate) fn body_metadata(body: &Body) -> Result<Option<Metadata>, ApiError> {
    Ok(body.raw("metadata").filter(|v| !v.is_null()).map(Metadata::from_json).transpose()?)
}

/// `PATCH /conversations/:id` `{user, metadata?, pinned?, archived?}` (a Colloquy extension):
/// metadata replaces the pairs stored (`{}` removes them); what is absent stays as it is. The
/// update time does not move: organising a conversation is not activity in it.
pub(crate) async fn update(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = path_id(ctx)?;
    let body = Body::read(ctx.request)?;
    let metadata = body_metadata(&body)?;
    let pinned = body.optional_boolean("pinned")?;
    let archived = body.optional_boolean("archived")?;
    let owner = ctx.end_user(body.user(false)?).await?.owner();
    ctx.require_chat_app()?;
    let mut conversation = owned(ctx, owner, id).await?;
    if let Some(metadata) = metadata {
        conversation.state.metadata = metadata;
    }
    conversation.state.pinned = pinned.unwrap_or(conversation.state.pinned);
    conversation.state.archived = archived.unwrap_or(conversation.state.archived);
    if !ctx.store().set_conversation_state(&conversation).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    Ok(ApiResponse::ok(&views::ConversationDetail::from(conversation)))
}

pub(crate) async fn delete(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = path_id(ctx)?;
    let user = Body::read(ctx.request)?.user(false)?;
    let owner = ctx.end_user(user).await?.owner();
    ctx.require_chat_app()?;
    if ctx.store().delete_conversation(owner, id).await? {
        Ok(ApiResponse::no_content())
    } else {
        Err(ApiError::NotFound(NOT_FOUND))
    }
}

pub(crate) async fn rename(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = path_id(ctx)?;
    let body = Body::read(ctx.request)?;
    let auto_generate = body.boolean("auto_generate", false)?;
    let manual =
        if auto_generate { None } else { Some(ConversationTitle::manual(body.string("name")?.unwrap_or(""))?) };
    let owner = ctx.end_user(body.user(false)?).await?.owner();
    ctx.require_chat_app()?;
    let mut conversation = owned(ctx, owner, id).await?;

    match manual {
        Some(title) => {
            conversation.name = title.into_string();
            conversation.updated_at = ctx.now();
            conversation.expires_at = ctx.app.config.retention.conversation_expiry(conversation.updated_at);
        }
        None => {
            // Dify raises a bare service error here, which surfaces as an empty invalid_param.
            let first = ctx.store().first_message(id).await?.ok_or_else(|| ApiError::InvalidParam(String::new()))?;
            // A model failure keeps the old name, as Dify does; updated_at is not touched.
            if let Some(title) = generate_title(ctx.services, &ctx.app, &first.query).await {
                conversation.name = title.into_string();
            }
        }
    }
    if !ctx.store().update_conversation(&conversation).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    Ok(ApiResponse::ok(&views::Conversation::from(conversation)))
}

const TITLE_INSTRUCTIONS: &str = "You name conversations. Reply with JSON only, of the form \
{\"Language Type\": \"<language of the input>\", \"Your Reasoning\": \"<one sentence>\", \
\"Your Output\": \"<a title of at most ten words, in the input's language>\"}.";

/// A title for a conversation that began with `query`, by the app's model. An answer without
/// a usable `"Your Output"` falls back to the query itself (Dify's rule); a model failure
/// gives `None`, so the caller keeps the old name.
pub(crate) async fn generate_title(services: &Services, app: &App, query: &str) -> Option<ConversationTitle> {
    let source = ConversationTitle::prompt_source(query);
    let request = LlmRequest {
        purpose: Purpose::ConversationTitle,
        model: None,
        system: Some(TITLE_INSTRUCTIONS.into()),
        turns: vec![(Speaker::User, source.clone())],
        max_tokens: 500,
        temperature: 1.0,
    };
    match services.models.complete_for(app, request).await {
        Ok(answer) => Some(ConversationTitle::generated(&title_from_answer(&answer.text).unwrap_or(source))),
        Err(error) => {
            tracing::warn!(%error, "title generation failed; keeping the old name");
            None
        }
    }
}

/// `"Your Output"` of the model's JSON answer, when it is a non-empty string.
fn title_from_answer(answer: &str) -> Option<String> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    let parsed: Value = serde_json::from_str(answer.get(start..=end)?).ok()?;
    parsed.get("Your Output")?.as_str().filter(|s| !s.trim().is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_read_from_the_json_answer() {
        assert_eq!(title_from_answer(r#"{"Your Output": "Trip to Rome"}"#).as_deref(), Some("Trip to Rome"));
        assert_eq!(title_from_answer("Sure! ```json\n{\"Your Output\": \"X\"}\n```").as_deref(), Some("X"));
        assert_eq!(title_from_answer(r#"{"Your Output": ""}"#), None);
        assert_eq!(title_from_answer("no json"), None);
    }
}
