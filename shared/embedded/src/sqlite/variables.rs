//! Conversation variables (table `conversation_variables`).

use async_trait::async_trait;
use rusqlite::Row;

use colloquy_core::domain::{ConversationId, ConversationVariable, Cursor, ValueType, VariableId, VariableNameFilter};
use colloquy_core::ports::{StoreResult, VariableStore};

use super::codec::{Args, Fields, args, to_json};
use super::{SqliteStore, insert_sql};

pub(super) const COLUMNS: &str =
    "id, app_id, conversation_id, name, value_type, value, description, created_at, updated_at";

/// The values of a row, in the order of [`COLUMNS`].
pub(super) fn variable_args(v: &ConversationVariable) -> StoreResult<Args> {
    Ok(args![
        v.id,
        v.app_id,
        v.conversation_id,
        v.name.as_str(),
        v.value_type.as_str(),
        to_json(&v.value)?,
        v.description.as_str(),
        v.created_at,
        v.updated_at
    ])
}

fn variable_from_row(row: &Row<'_>) -> rusqlite::Result<ConversationVariable> {
    let f = Fields::of("conversation_variables", row);
    Ok(ConversationVariable {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        conversation_id: f.parse("conversation_id")?,
        name: f.get("name")?,
        value_type: f.parse_with("value_type", ValueType::parse)?,
        value: f.json("value")?,
        description: f.get("description")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

/// A page of a conversation's variables, oldest first: `?1` the conversation, `?2` a name
/// filter or `NULL`, `?3` how many rows; after a cursor, `?4` and `?5` its time and id. The
/// cursor is a row-value comparison so that SQLite seeks `variables_by_conversation` straight
/// to it; the first page has a statement of its own. The name filter only drops rows on the
/// way, it takes no part in the seek.
pub(super) fn list_sql(after_cursor: bool) -> String {
    let seek = if after_cursor { " AND (created_at, id) > (?4, ?5)" } else { "" };
    format!(
        "SELECT {COLUMNS} FROM conversation_variables WHERE conversation_id = ?1 \
         AND (?2 IS NULL OR instr(lower(name), ?2) > 0){seek} ORDER BY created_at, id LIMIT ?3"
    )
}

#[async_trait]
impl VariableStore for SqliteStore {
    async fn insert_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let values = variable_args(v)?;
        self.execute(insert_sql("conversation_variables", COLUMNS), values).await.map(drop)
    }

    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>> {
        let mut values = args![conversation, name.map(|n| n.needle().to_owned()), fetch as i64];
        if let Some(cursor) = after {
            values.extend(args![cursor.at, cursor.id]);
        }
        self.page(list_sql(after.is_some()), values, variable_from_row).await
    }

    async fn variable(
        &self,
        conversation: ConversationId,
        id: VariableId,
    ) -> StoreResult<Option<ConversationVariable>> {
        let sql = format!("SELECT {COLUMNS} FROM conversation_variables WHERE id = ?1 AND conversation_id = ?2");
        self.one(sql, args![id, conversation], variable_from_row).await
    }

    async fn update_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let sql =
            "UPDATE conversation_variables SET value = ?3, updated_at = ?4 WHERE id = ?1 AND conversation_id = ?2";
        self.execute(sql.into(), args![v.id, v.conversation_id, to_json(&v.value)?, v.updated_at]).await.map(drop)
    }
}
