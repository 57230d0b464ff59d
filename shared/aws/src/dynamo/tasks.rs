//! Running generations (`TaskControl`): a task item per generation, spread over a fixed set
//! of partitions, holding its stop flag and where its message is.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;

use colloquy_core::domain::{Message, Owner, TaskId, Timestamp};
use colloquy_core::ports::{StoreResult, TaskControl};

use super::DynamoStore;
use super::codec::{Read, s};
use super::keys::{TASK_SHARDS, key, task_pk, task_shard_pk, task_sk};
use super::requests::condition_met;

impl DynamoStore {
    /// Ends the abandoned generations of one task partition (see [`TaskControl::end_abandoned`]).
    async fn end_abandoned_in(&self, shard: u128, before: Timestamp) -> StoreResult<usize> {
        let mut ended = 0;
        for item in self.partition(task_shard_pk(shard), None).await? {
            let r = Read::new("task", &item);
            if r.time("started_at")? >= before {
                continue;
            }
            let task: TaskId = r.parse("id")?;
            if self.end_generation(r.parse("conversation_id")?, r.s("message_sk")?, task).await? {
                ended += 1;
            }
            self.delete(task_pk(task), task_sk(task)).await?;
        }
        Ok(ended)
    }
}

#[async_trait]
impl TaskControl for DynamoStore {
    async fn request_stop(&self, task: TaskId, owner: Owner) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(task_pk(task), task_sk(task))))
            .update_expression("SET #stop = :yes")
            .condition_expression("app_id = :app AND end_user_id = :user")
            .expression_attribute_names("#stop", "stop")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":app", s(owner.app_id.to_string()))
            .expression_attribute_values(":user", s(owner.end_user_id.to_string()))
            .send()
            .await;
        // Unknown or foreign tasks are ignored, like Dify.
        condition_met(result).map(drop)
    }

    async fn stop_requested(&self, task: TaskId) -> StoreResult<bool> {
        match self.get(task_pk(task), task_sk(task)).await? {
            Some(item) => Read::new("task", &item).bool("stop"),
            None => Ok(false),
        }
    }

    async fn finish_task(&self, task: TaskId) -> StoreResult<()> {
        self.delete(task_pk(task), task_sk(task)).await
    }

    /// Reads every task partition (they hold only running tasks and what crashes left).
    /// Lambda functions never run this: their abandoned messages end when read, and the tasks
    /// expire (TTL).
    async fn end_abandoned(&self, now: Timestamp) -> StoreResult<usize> {
        let before = Message::abandoned_before(now);
        let mut shards = futures_util::stream::iter(0..TASK_SHARDS)
            .map(|shard| self.end_abandoned_in(shard, before))
            .buffer_unordered(8);
        let mut ended = 0;
        while let Some(result) = shards.next().await {
            ended += result?;
        }
        Ok(ended)
    }
}
