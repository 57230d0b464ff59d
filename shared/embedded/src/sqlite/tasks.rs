//! Running generations (table `tasks`): stop requests, and ending the ones a crashed process
//! left behind (which also ends their messages).

use async_trait::async_trait;
use rusqlite::params_from_iter;

use colloquy_core::domain::{ABANDONED_ERROR, Message, Owner, TaskId, Timestamp};
use colloquy_core::ports::{StoreResult, TaskControl};

use super::SqliteStore;
use super::codec::{Fields, args};

#[async_trait]
impl TaskControl for SqliteStore {
    async fn request_stop(&self, task: TaskId, owner: Owner) -> StoreResult<()> {
        let sql = "UPDATE tasks SET stop_requested = 1 WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3";
        self.execute(sql.into(), args![task, owner.app_id, owner.end_user_id]).await.map(drop)
    }

    async fn stop_requested(&self, task: TaskId) -> StoreResult<bool> {
        let sql = "SELECT stop_requested FROM tasks WHERE id = ?1";
        let flag = self.one(sql.into(), args![task], |row| Fields::of("tasks", row).get::<i64>("stop_requested"));
        Ok(flag.await? == Some(1))
    }

    async fn finish_task(&self, task: TaskId) -> StoreResult<()> {
        self.execute("DELETE FROM tasks WHERE id = ?1".into(), args![task]).await.map(drop)
    }

    async fn end_abandoned(&self, now: Timestamp) -> StoreResult<usize> {
        let before = Message::abandoned_before(now);
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let ended = tx.execute(
                "UPDATE messages SET status = 'error', error = ?2, task_id = NULL
                 WHERE task_id IS NOT NULL AND created_at < ?1",
                params_from_iter(args![before, ABANDONED_ERROR]),
            )?;
            tx.execute("DELETE FROM tasks WHERE started_at < ?1", params_from_iter(args![before]))?;
            tx.commit()?;
            Ok(ended)
        })
        .await
    }
}
