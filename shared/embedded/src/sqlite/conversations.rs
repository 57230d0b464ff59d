//! Conversations (table `conversations`); deleting one also deletes its messages, feedback
//! and variables.

use async_trait::async_trait;
use rusqlite::{Row, params};

use colloquy_core::domain::{Conversation, ConversationId, ConversationSort, Cursor, Owner, SortField};
use colloquy_core::ports::{ConversationStore, StoreResult};

use super::codec::{Args, Fields, args, to_json};
use super::{SqliteStore, insert_sql};

pub(super) const COLUMNS: &str = "id, app_id, end_user_id, name, inputs, status, introduction, created_at, updated_at";

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    let f = Fields::of("conversations", row);
    Ok(Conversation {
        id: f.parse("id")?,
        owner: Owner { app_id: f.parse("app_id")?, end_user_id: f.parse("end_user_id")? },
        name: f.get("name")?,
        inputs: f.json("inputs")?,
        status: f.parse("status")?,
        introduction: f.get("introduction")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

/// A page of an end user's conversations in `sort` order: `?1` the app, `?2` the end user,
/// `?3` how many rows; after a cursor, `?4` and `?5` its sort time and id. The cursor is a
/// row-value comparison so that SQLite seeks `conversations_by_created` or
/// `conversations_by_updated` straight to it, however deep; the first page has a statement
/// of its own rather than a `?4 IS NULL OR ...`, which no index serves.
pub(super) fn list_sql(sort: ConversationSort, after_cursor: bool) -> String {
    let column = match sort.field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
    };
    let (direction, beyond) = if sort.descending { ("DESC", "<") } else { ("ASC", ">") };
    let seek = if after_cursor { format!(" AND ({column}, id) {beyond} (?4, ?5)") } else { String::new() };
    format!(
        "SELECT {COLUMNS} FROM conversations WHERE app_id = ?1 AND end_user_id = ?2{seek} \
         ORDER BY {column} {direction}, id {direction} LIMIT ?3"
    )
}

/// The values of a row, in the order of [`COLUMNS`].
pub(super) fn conversation_args(c: &Conversation) -> StoreResult<Args> {
    Ok(args![
        c.id,
        c.owner.app_id,
        c.owner.end_user_id,
        c.name.as_str(),
        to_json(&c.inputs)?,
        c.status.as_str(),
        c.introduction.as_str(),
        c.created_at,
        c.updated_at
    ])
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        self.execute(insert_sql("conversations", COLUMNS), conversation_args(c)?).await.map(drop)
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], conversation_from_row).await
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let mut values = args![owner.app_id, owner.end_user_id, fetch as i64];
        if let Some(cursor) = after {
            values.extend(args![cursor.at, cursor.id]);
        }
        self.page(list_sql(sort, after.is_some()), values, conversation_from_row).await
    }

    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let sql = "UPDATE conversations SET name = ?4, inputs = ?5, status = ?6, updated_at = ?7
                   WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3";
        let values = args![
            c.id,
            c.owner.app_id,
            c.owner.end_user_id,
            c.name.as_str(),
            to_json(&c.inputs)?,
            c.status.as_str(),
            c.updated_at
        ];
        Ok(self.execute(sql.into(), values).await? == 1)
    }

    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let id = id.to_string();
            let deleted = tx
                .prepare_cached("DELETE FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3")?
                .execute(params![id, owner.app_id.to_string(), owner.end_user_id.to_string()])?;
            if deleted == 1 {
                for table in ["messages", "feedbacks", "conversation_variables"] {
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE conversation_id = ?1"))?.execute([&id])?;
                }
            }
            tx.commit()?;
            Ok(deleted == 1)
        })
        .await
    }
}
