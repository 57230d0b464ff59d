//! Threads of a conversation's message tree (a Colloquy extension of Dify's flat history).
//!
//! Every message but a conversation's first names its parent. Sending again with the same
//! parent (regenerating an answer, editing a question) makes a sibling, so a conversation is a
//! tree; a *thread* is the path from its first message down to one message. `GET /messages`
//! pages the thread ending at the newest message (or the one `leaf_id` picks), and the model
//! sees the thread it answers on. In a conversation without siblings the thread is the whole
//! history, read exactly as before.
//!
//! A thread is walked newest first through the conversation's history (the store's own
//! time-ordered pages), keeping the message each kept one names as its parent: a page costs
//! what a page of history costs plus the messages of other branches it passes over.

use super::Ctx;
use crate::api::error::ApiError;
use crate::domain::{ConversationId, Cursor, Message, MessageId, RatedMessage, Timestamp};

/// Messages read per store page while walking past other branches.
const STEP: usize = 100;

/// Where a walk starts.
pub(crate) enum From {
    /// At the conversation's newest message.
    Newest,
    /// At the message at this cursor (it is the thread's newest).
    At(Cursor<MessageId>),
    /// Below the message at this cursor: with its parent (a page of older messages,
    /// `first_id`). The message itself is read with the page (its pointer gave the cursor).
    Below(Cursor<MessageId>),
}

/// What the walk keeps next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Any,
    Id(MessageId),
    Done,
}

/// Up to `want` messages of a thread of `conversation`, newest first, each the parent of the
/// one before it; fewer when the thread's first message is reached.
pub(crate) async fn walk(
    ctx: &Ctx<'_>,
    conversation: ConversationId,
    from: From,
    want: usize,
) -> Result<Vec<RatedMessage>, ApiError> {
    // Just past a message: a cursor a microsecond later than it, before any id.
    let past = |at: Timestamp| {
        Some(Cursor { at: Timestamp::from_micros(at.micros() + 1), id: MessageId::from_uuid(uuid::Uuid::nil()) })
    };
    let (mut cursor, mut next, skip) = match from {
        From::Newest => (None, Next::Any, false),
        From::At(m) => (past(m.at), Next::Id(m.id), false),
        From::Below(m) => (past(m.at), Next::Id(m.id), true),
    };
    let want = want + usize::from(skip);
    let mut kept: Vec<RatedMessage> = Vec::with_capacity(want);
    // Messages passed over at the time of the newest one read: a parent created in the same
    // microsecond as its reply may sort after it (ids break the tie).
    let mut passed: Vec<RatedMessage> = Vec::new();
    let mut fetch = want.clamp(1, STEP);
    while kept.len() < want && next != Next::Done {
        let rows = ctx.store().rated_messages_before(conversation, cursor, fetch).await?;
        let full = rows.len() == fetch;
        for row in rows {
            cursor = Some(Cursor { at: row.message.created_at, id: row.message.id });
            if passed.first().is_some_and(|p| p.message.created_at != row.message.created_at) {
                passed.clear();
            }
            let wanted = match next {
                Next::Any => true,
                Next::Id(id) => row.message.id == id,
                Next::Done => false,
            };
            if !wanted {
                passed.push(row);
                continue;
            }
            next = keep(&mut kept, row);
            while let Next::Id(id) = next
                && kept.len() < want
                && let Some(at) = passed.iter().position(|p| p.message.id == id)
            {
                next = keep(&mut kept, passed.swap_remove(at));
            }
            if kept.len() == want || next == Next::Done {
                break;
            }
        }
        if !full {
            break;
        }
        fetch = STEP;
    }
    if skip && !kept.is_empty() {
        kept.remove(0);
    }
    Ok(kept)
}

fn keep(kept: &mut Vec<RatedMessage>, row: RatedMessage) -> Next {
    let next = row.message.parent_message_id.map_or(Next::Done, Next::Id);
    kept.push(row);
    next
}

/// The newest message of `conversation` at or below `top` in its tree (`top` itself when
/// nothing replies to it): where the thread through `top` ends.
pub(crate) async fn newest_below(ctx: &Ctx<'_>, top: Message) -> Result<Message, ApiError> {
    let mut lineage = std::collections::HashSet::from([top.id]);
    let mut newest = top.clone();
    let mut after = Some(Cursor { at: top.created_at, id: top.id });
    loop {
        let page = ctx.store().messages_after(top.conversation_id, after, STEP).await?;
        let full = page.len() == STEP;
        for later in page {
            after = Some(Cursor { at: later.created_at, id: later.id });
            if later.parent_message_id.is_some_and(|parent| lineage.contains(&parent)) {
                lineage.insert(later.id);
                newest = later;
            }
        }
        if !full {
            return Ok(newest);
        }
    }
}

/// The ids sharing each kept message's parent (itself among them, oldest first), for the
/// first `shown` messages of a walk: a message's parent is the next one kept, whose replies
/// the store read with it; a message without one has the conversation's first messages.
pub(crate) async fn siblings(
    ctx: &Ctx<'_>,
    conversation: &crate::domain::Conversation,
    kept: &[RatedMessage],
    shown: usize,
) -> Result<Vec<Vec<MessageId>>, ApiError> {
    let mut roots = None;
    let mut out = Vec::with_capacity(shown.min(kept.len()));
    for (i, row) in kept.iter().take(shown).enumerate() {
        let id = row.message.id;
        let mut ids = match (row.message.parent_message_id, kept.get(i + 1)) {
            (None, _) => match &roots {
                Some(roots) => Vec::clone(roots),
                None => {
                    let found = ctx.store().root_messages(conversation).await?;
                    roots = Some(found.clone());
                    found
                }
            },
            (Some(parent), Some(above)) if above.message.id == parent => above.replies.clone(),
            // The parent was not read (the walk stopped at it): nothing else is known.
            (Some(_), _) => Vec::new(),
        };
        // Messages stored before replies were recorded are alone in their place.
        if !ids.contains(&id) {
            ids = vec![id];
        }
        out.push(ids);
    }
    Ok(out)
}
