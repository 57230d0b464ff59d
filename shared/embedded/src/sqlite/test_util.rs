//! Helpers for tests and benchmarks only (the `test-util` feature; production builds leave
//! them out): a bulk import that writes many rows in one transaction.

use rusqlite::params_from_iter;

use colloquy_core::domain::{Conversation, Message};
use colloquy_core::ports::StoreResult;

use super::conversations::{self, conversation_args};
use super::messages::{self, message_args};
use super::{SqliteStore, insert_sql};

impl SqliteStore {
    /// Stores `conversations` and then `messages` as they are, in one transaction: far faster
    /// than one insert per row through the ports. A message's running generation (its task)
    /// is not registered, and a message is stored whether or not its conversation exists.
    pub async fn import(&self, conversations: &[Conversation], messages: &[Message]) -> StoreResult<()> {
        let listed: Vec<Conversation> = conversations.iter().filter(|c| !c.state.lists().is_empty()).cloned().collect();
        let conversations = conversations.iter().map(conversation_args).collect::<StoreResult<Vec<_>>>()?;
        let messages = messages.iter().map(message_args).collect::<StoreResult<Vec<_>>>()?;
        self.write(move |conn| {
            let tx = conn.transaction()?;
            for conversation in &listed {
                conversations::write_lists(&tx, conversation)?;
            }
            for (table, columns, rows) in
                [("conversations", conversations::COLUMNS, conversations), ("messages", messages::COLUMNS, messages)]
            {
                let mut insert = tx.prepare(&insert_sql(table, columns))?;
                for row in rows {
                    insert.execute(params_from_iter(row))?;
                }
            }
            tx.commit()
        })
        .await
    }
}
