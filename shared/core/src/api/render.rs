//! Dify's JSON shapes for each resource.

use serde_json::{Value, json};

use crate::domain::{Conversation, ConversationVariable, Feedback, Message, Rating, python_str};

/// `SimpleConversation`.
pub(crate) fn conversation(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "inputs": c.inputs,
        "status": c.status,
        "introduction": c.introduction,
        "created_at": c.created_at.unix_seconds(),
        "updated_at": c.updated_at.unix_seconds(),
    })
}

/// `MessageListItem`, with the end user's own rating.
pub(crate) fn message(m: &Message, rating: Option<Rating>) -> Value {
    json!({
        "id": m.id,
        "conversation_id": m.conversation_id,
        "parent_message_id": m.parent_message_id,
        "inputs": m.inputs,
        "query": m.query,
        "answer": m.answer,
        "message_files": m.message_files,
        "feedback": rating.map(|r| json!({"rating": r.as_str()})),
        "retriever_resources": m.retriever_resources,
        "agent_thoughts": m.agent_thoughts,
        "status": m.status,
        "error": m.error,
        "created_at": m.created_at.unix_seconds(),
    })
}

/// A conversation variable; `value` is always a string (Python `str()` of the value).
pub(crate) fn variable(v: &ConversationVariable) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "value_type": v.value_type.as_str(),
        "value": python_str(&v.value),
        "description": v.description,
        "created_at": v.created_at.unix_seconds(),
        "updated_at": v.updated_at.unix_seconds(),
    })
}

/// `MessageFeedback.to_dict()`: ISO timestamps without a zone.
pub(crate) fn feedback(f: &Feedback) -> Value {
    json!({
        "id": f.id,
        "app_id": f.app_id,
        "conversation_id": f.conversation_id,
        "message_id": f.message_id,
        "rating": f.rating.as_str(),
        "content": f.content,
        "from_source": f.source.as_str(),
        "from_end_user_id": f.from_end_user_id,
        "from_account_id": Value::Null,
        "created_at": f.created_at.iso_naive(),
        "updated_at": f.updated_at.iso_naive(),
    })
}

/// The `{limit, has_more, data}` envelope of cursor-paginated lists.
pub(crate) fn page(limit: u32, has_more: bool, data: Vec<Value>) -> Value {
    json!({"limit": limit, "has_more": has_more, "data": data})
}

/// Splits a `limit + 1` probe into the page and `has_more`.
pub(crate) fn split_probe<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    (rows, has_more)
}
