//! The lists both depth benchmarks seed (`bench/depth` on SQLite, `bench/depth-dynamo` on
//! DynamoDB Local): the same rows, so their ratios compare.

use colloquy_core::domain::{
    Conversation, ConversationId, ConversationSort, ConversationStatus, Cursor, Message, MessageId, MessageStatus,
    OpaqueJson, Owner, SortField, Timestamp,
};
use serde_json::{Map, json};
use uuid::Uuid;

/// Rows in each list.
pub const ROWS: usize = 100_001;
/// Rows a page asks the store for: a page of 20 plus one to tell whether more follow.
pub const FETCH: usize = 21;
/// 2025-01-16T10:00:00Z, in microseconds.
pub const T0: i64 = 1_737_021_600_000_000;

/// The `i`-th timestamp of a list: two rows share each one.
pub fn at(i: usize) -> Timestamp {
    Timestamp::from_micros(T0 + (i / 2) as i64 * 1_000)
}

pub fn conversation(owner: Owner, i: usize) -> Conversation {
    Conversation {
        id: ConversationId::from_uuid(Uuid::new_v4()),
        owner,
        name: format!("conversation {i}"),
        inputs: Map::new(),
        status: ConversationStatus::Normal,
        introduction: String::new(),
        created_at: at(i),
        // Updated in the reverse order of creation, so the two sorts differ.
        updated_at: at(ROWS - 1 - i),
        expires_at: None,
        state: Default::default(),
    }
}

pub fn message(conversation: &Conversation, i: usize) -> Message {
    Message {
        id: MessageId::from_uuid(Uuid::new_v4()),
        conversation_id: conversation.id,
        owner: conversation.owner,
        parent_message_id: None,
        inputs: Map::new(),
        query: format!("question {i}"),
        answer: "An answer of a typical length, a sentence or two long, as a model would write it.".into(),
        message_files: Vec::new(),
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: MessageStatus::Normal,
        error: None,
        metadata: OpaqueJson::of(&json!({"usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}})),
        created_at: at(i),
        task_id: None,
    }
}

/// Every sort of the conversation list: its field, whether descending, its `sort_by` value.
pub const SORTS: [(SortField, bool, &str); 4] = [
    (SortField::UpdatedAt, true, "-updated_at"),
    (SortField::UpdatedAt, false, "updated_at"),
    (SortField::CreatedAt, true, "-created_at"),
    (SortField::CreatedAt, false, "created_at"),
];

/// The deep page of a conversation's history (newest first): the cursor of the last full page,
/// and the oldest message, which that page must end with.
pub fn deep_message_page(messages: &[Message]) -> (Cursor<MessageId>, MessageId) {
    let mut newest_first: Vec<&Message> = messages.iter().collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id.to_string())));
    let deep = newest_first[ROWS - FETCH - 1];
    (Cursor { at: deep.created_at, id: deep.id }, newest_first[ROWS - 1].id)
}

/// The deep page of the conversation list in `sort` order: the cursor of the last full page,
/// and the conversation that page must end with.
pub fn deep_conversation_page(
    conversations: &[Conversation],
    sort: ConversationSort,
) -> (Cursor<ConversationId>, ConversationId) {
    let key = |c: &Conversation| {
        let at = match sort.field {
            SortField::CreatedAt => c.created_at,
            SortField::UpdatedAt => c.updated_at,
        };
        (at, c.id.to_string())
    };
    let mut ordered: Vec<&Conversation> = conversations.iter().collect();
    ordered.sort_by_key(|c| key(c));
    if sort.descending {
        ordered.reverse();
    }
    let rows = ordered.len();
    let deep = ordered[rows - FETCH - 1];
    (Cursor { at: key(deep).0, id: deep.id }, ordered[rows - 1].id)
}
