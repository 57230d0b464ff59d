//! `GET /messages`: conversation history, newest page first, each page oldest → newest; and
//! `DELETE /messages/:id` (a Colloquy extension).

use std::collections::HashSet;

use super::conversations::{NOT_FOUND, owned, read_owned};
use super::input::Body;
use super::thread::{self, From};
use super::views::{self, Page};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::domain::{ConversationId, Cursor, Limit, Message, MessageId, RatedMessage};

const MESSAGE_NOT_FOUND: &str = "Message Not Exists.";

/// `DELETE /messages/:id` `{user}` → 204 (a Colloquy extension): one of the caller's messages
/// with every message that descends from it (whose parent chain leads to it: in a thread
/// without branches, every later message), their feedback of both sources and their files'
/// links (the uploaded files stay the end user's). Newest first, so a removal cut short leaves a
/// shorter thread; the conversation's counters follow.
pub(crate) async fn delete(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let user = Body::read(ctx.request)?.user(false)?;
    ctx.require_chat_app()?;
    let owner = ctx.end_user(user).await?.owner();
    let message = ctx.store().message(owner, id).await?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    let conversation = owned(ctx, owner, message.conversation_id).await?;
    let mut doomed = vec![message.clone()];
    let mut lineage: HashSet<MessageId> = HashSet::from([id]);
    let mut after = Some(Cursor { at: message.created_at, id });
    loop {
        let page = ctx.store().messages_after(conversation.id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor { at: last.created_at, id: last.id });
        let full = page.len() == PAGE;
        for later in page {
            if later.parent_message_id.is_some_and(|parent| lineage.contains(&parent)) {
                lineage.insert(later.id);
                doomed.push(later);
            }
        }
        if !full {
            break;
        }
    }
    doomed.reverse();
    if ctx.store().delete_messages(&conversation, &doomed).await? == 0 {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    Ok(ApiResponse::no_content())
}

/// Messages read per page while looking for a message's descendants.
const PAGE: usize = 100;

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    if !ctx.query.has("conversation_id") {
        return Err(ApiError::InvalidParam("conversation_id: Field required".into()));
    }
    let conversation_id = ctx.query.id::<ConversationId>("conversation_id")?;
    let first_id = ctx.query.id::<MessageId>("first_id")?;
    // Our extension: the thread through this message (default: through the newest).
    let leaf_id = ctx.query.id::<MessageId>("leaf_id")?;
    let limit = Limit::parse(ctx.query.get("limit"), Limit::MAX)?;
    let user = ctx.query.user(false)?;
    ctx.require_chat_app()?;
    // `conversation_id=` (present but empty) is an empty page in Dify, not an error.
    let Some(conversation_id) = conversation_id else {
        return Ok(ApiResponse::ok(&Page::<views::ThreadMessage>::new(limit.get(), false, Vec::new())));
    };
    // The ownership check and the first read run together (one round trip instead of two on a
    // remote store): the page's partition is the conversation's, not the owner's. What was read
    // is discarded unless the caller owns the conversation, and the ownership error comes first.
    let want = limit.probe();
    let (conversation, rows) = match (first_id, leaf_id) {
        (None, None) => {
            let (owned, rows) = tokio::join!(
                read_owned(ctx, &user, conversation_id),
                thread::walk(ctx, conversation_id, From::Newest, want)
            );
            (owned?, rows?)
        }
        (Some(id), _) => {
            let (owned, first) =
                tokio::join!(read_owned(ctx, &user, conversation_id), ctx.store().message_time(conversation_id, id));
            let conversation = owned?;
            let at = first?.ok_or(ApiError::NotFound("First Message Not Exists."))?;
            (conversation, thread::walk(ctx, conversation_id, From::Below(Cursor { at, id }), want).await?)
        }
        (None, Some(id)) => {
            let (owned, leaf) =
                tokio::join!(read_owned(ctx, &user, conversation_id), ctx.store().message_in(conversation_id, id));
            let conversation = owned?;
            let leaf = leaf?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
            let end = thread::newest_below(ctx, leaf).await?;
            (
                conversation,
                thread::walk(ctx, conversation_id, From::At(Cursor { at: end.created_at, id: end.id }), want).await?,
            )
        }
    };
    let shown = limit.probe() - 1;
    let has_more = rows.len() > shown;
    let siblings = thread::siblings(ctx, &conversation, &rows, shown).await?;
    let mut data = Vec::with_capacity(siblings.len());
    for (RatedMessage { message, rating, .. }, sibling_ids) in rows.into_iter().zip(siblings) {
        let message = views::Message::new(settled_one(ctx, message).await, rating);
        data.push(views::ThreadMessage::new(message, sibling_ids));
    }
    data.reverse();
    Ok(ApiResponse::ok(&Page::new(limit.get(), has_more, data)))
}

/// Messages as they are at this time: one whose generation was abandoned (the process answering
/// it died) is ended as failed, in the store too, so that it is never served as a complete
/// empty answer. Costs nothing for other messages: the message itself says it is generating.
pub(crate) async fn settled(ctx: &Ctx<'_>, mut messages: Vec<Message>) -> Vec<Message> {
    for message in &mut messages {
        settle(ctx, message).await;
    }
    messages
}

/// One message as it is at this time (see [`settled`]).
pub(crate) async fn settled_one(ctx: &Ctx<'_>, mut message: Message) -> Message {
    settle(ctx, &mut message).await;
    message
}

async fn settle(ctx: &Ctx<'_>, message: &mut Message) {
    let now = ctx.now();
    if !message.is_abandoned(now) {
        return;
    }
    match ctx.store().mark_abandoned(message).await {
        Ok(true) => message.mark_abandoned(),
        // Its generation stored an outcome after all (or the message is gone): show that.
        Ok(false) => match ctx.store().message_in(message.conversation_id, message.id).await {
            Ok(Some(stored)) if !stored.is_abandoned(now) => *message = stored,
            _ => message.mark_abandoned(),
        },
        Err(error) => {
            tracing::warn!(%error, message = %message.id, "could not end an abandoned generation");
            message.mark_abandoned();
        }
    }
}
