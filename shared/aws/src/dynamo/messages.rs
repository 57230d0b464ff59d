//! Messages (`MessageStore`): one partition per conversation, ordered by time, and a pointer
//! per message (its conversation, owner and time) to find it by id alone.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use colloquy_core::domain::{
    ABANDONED_ERROR, AppId, Conversation, ConversationId, Cursor, Granularity, Message, MessageId, Owner, RatedMessage,
    Tally, TaskId, Timestamp,
};
use colloquy_core::ports::{MessageStore, StoreError, StoreResult};

use super::codec::{json, n, s};
use super::items::{
    LAST_MESSAGE_AT, MESSAGE_COUNT, REPLIES, ROOTS, feedback_from, id_set, live, message_from,
    message_items_with_replies, pointer_from, pointer_item, task_item, user_rating_from,
};
use super::keys::{POINTER_SK, conversation_sk, feedback_sk, key, message_sk, messages_pk, owner_pk, pointer_pk};
use super::requests::{condition_met, sdk_error};
use super::transact::{LIVE, Transaction};
use super::{DynamoStore, Item};

impl DynamoStore {
    /// Marks the message at (`conversation`, `sk`) failed if `task` is still generating it.
    pub(super) async fn end_generation(
        &self,
        conversation: ConversationId,
        sk: String,
        task: TaskId,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(conversation), sk)))
            .update_expression("SET #status = :failed, #error = :error REMOVE task_id")
            .condition_expression("task_id = :task")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":failed", s("error"))
            .expression_attribute_values(":error", s(ABANDONED_ERROR))
            .expression_attribute_values(":task", s(task.to_string()))
            .send()
            .await;
        condition_met(result)
    }

    /// Up to `fetch` message items of a conversation, newest first, strictly before `before`.
    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Item>> {
        let before = before.map(|cursor| message_sk(cursor.at, cursor.id));
        self.newest_first(messages_pk(conversation), before, fetch).await
    }

    /// A transaction's update of a live conversation's message count and last message time
    /// (in place of a check that it is live: one item is written once in a transaction), for
    /// `count` messages of which `newest` is the newest; `root`, a message without a parent
    /// among them, joins the conversation's roots.
    fn count_messages(
        &self,
        newest: &Message,
        count: usize,
        root: Option<MessageId>,
    ) -> StoreResult<TransactWriteItem> {
        let m = newest;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(m.owner), conversation_sk(m.conversation_id))))
            .update_expression("ADD #count :one SET #last = :at")
            .condition_expression(LIVE)
            .expression_attribute_names("#count", MESSAGE_COUNT)
            .expression_attribute_names("#last", LAST_MESSAGE_AT)
            .expression_attribute_values(":one", n(i64::try_from(count).unwrap_or(i64::MAX)))
            .expression_attribute_values(":at", n(m.created_at.micros()));
        if let Some(root) = root {
            update = update
                .update_expression("ADD #count :one, #roots :root SET #last = :at")
                .expression_attribute_names("#roots", ROOTS)
                .expression_attribute_values(":root", AttributeValue::Ss(vec![root.to_string()]));
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(sdk_error)?).build())
    }

    /// The update that adds `m` to its parent's replies (a transaction's write, conditional on
    /// the parent being stored), or `None` for a message without a parent. The parent's time
    /// (its sort key) is read from its pointer; `Ok(Err(()))` when the parent is gone.
    async fn reply_link(&self, m: &Message) -> StoreResult<Result<Option<TransactWriteItem>, ()>> {
        let Some(parent) = m.parent_message_id else { return Ok(Ok(None)) };
        let at = match self.pointer(parent).await? {
            Some((conversation, _, at)) if conversation == m.conversation_id => at,
            _ => return Ok(Err(())),
        };
        Ok(Ok(Some(self.replies_update("ADD", m, parent, at)?)))
    }

    /// The update that adds `m` to (`ADD`) or takes it from (`DELETE`) the replies of its
    /// `parent` (created at `at`), conditional on the parent being stored.
    pub(super) fn replies_update(
        &self,
        action: &str,
        m: &Message,
        parent: MessageId,
        at: Timestamp,
    ) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(m.conversation_id), message_sk(at, parent))))
            .update_expression(format!("{action} #replies :id"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#replies", REPLIES)
            .expression_attribute_values(":id", AttributeValue::Ss(vec![m.id.to_string()]))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Stores `messages` (of one conversation, oldest first, each but the first replying to one
    /// of them) with their pointers in one transaction with the conversation's counters and the
    /// first's link to what it replies to (its parent's replies, or the conversation's roots).
    /// False when the conversation or the parent is gone.
    async fn insert_thread(&self, messages: &[Message], tasks: Vec<TransactWriteItem>) -> StoreResult<bool> {
        let (Some(first), Some(newest)) = (messages.first(), messages.iter().max_by_key(|m| (m.created_at, m.id)))
        else {
            return Ok(true);
        };
        let Ok(link) = self.reply_link(first).await? else { return Ok(false) };
        let root = first.parent_message_id.is_none().then_some(first.id);
        let absent = Some("attribute_not_exists(PK)");
        let mut writes = vec![self.count_messages(newest, messages.len(), root)?];
        let linked = link.is_some();
        writes.extend(link);
        for (m, item) in messages.iter().zip(message_items_with_replies(messages)) {
            writes.push(self.put_item(item, absent)?);
            writes.push(self.put_item(pointer_item(m), absent)?);
        }
        writes.extend(tasks);
        match self.transact_checked(writes).await? {
            Transaction::Done => {
                for m in messages {
                    self.count_usage_of(m).await;
                }
                Ok(true)
            }
            // The conversation (or the parent) is gone.
            Transaction::Refused(failed) if failed[0] || (linked && failed[1]) => Ok(false),
            Transaction::Refused(_) => Err(StoreError::Conflict("a message exists".into())),
        }
    }

    /// The transaction of [`MessageStore::update_message`]: the live check, then the message's
    /// update (only while it is generating when `generating`).
    async fn write_message(&self, m: &Message, generating: bool) -> StoreResult<Transaction> {
        let condition =
            if generating { "attribute_exists(PK) AND attribute_exists(task_id)" } else { "attribute_exists(PK)" };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(m.conversation_id), message_sk(m.created_at, m.id))))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":answer", s(&m.answer))
            .expression_attribute_values(":status", s(m.status.as_str()))
            .expression_attribute_values(":metadata", s(m.metadata.as_str()))
            .expression_attribute_values(":files", json(&m.message_files));
        let mut set = vec!["answer = :answer", "#status = :status", "metadata = :metadata", "message_files = :files"];
        let mut remove = Vec::new();
        match &m.error {
            Some(error) => {
                set.push("#error = :error");
                update = update.expression_attribute_values(":error", s(error));
            }
            None => remove.push("#error"),
        }
        match m.task_id {
            Some(task) => {
                set.push("task_id = :task");
                update = update.expression_attribute_values(":task", s(task.to_string()));
            }
            None => remove.push("task_id"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(sdk_error)?;
        let writes =
            vec![self.live_check(m.owner, m.conversation_id)?, TransactWriteItem::builder().update(update).build()];
        self.transact_checked(writes).await
    }

    /// A message its pointer found, if its conversation is live: the conversation (for its
    /// tombstone) and the message, read together and consistently (a chat or a feedback checks
    /// the conversation while it writes).
    async fn live_message(
        &self,
        owner: Owner,
        conversation: ConversationId,
        at: Timestamp,
        id: MessageId,
    ) -> StoreResult<Option<Message>> {
        let reads = [
            self.get_item(owner_pk(owner), conversation_sk(conversation))?,
            self.get_item(messages_pk(conversation), message_sk(at, id))?,
        ];
        let [conversation, message] = self.transact_get(reads).await?;
        match message {
            Some(message) if live(conversation)?.is_some() => message_from(&message).map(Some),
            _ => Ok(None),
        }
    }

    /// The pointer of a message: its conversation, owner and time.
    pub(super) async fn pointer(&self, id: MessageId) -> StoreResult<Option<(ConversationId, Owner, Timestamp)>> {
        self.get(pointer_pk(id), POINTER_SK).await?.as_ref().map(pointer_from).transpose()
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    /// One transaction: the conversation must be live, the message and its pointer new, its
    /// parent stored (the message joins its replies); the task of a generating message is
    /// stored with them.
    async fn insert_message(&self, m: &Message) -> StoreResult<bool> {
        let tasks = m.task_id.map(|task| self.put_item(task_item(m, task), None)).transpose()?;
        self.insert_thread(std::slice::from_ref(m), tasks.into_iter().collect()).await
    }

    /// One transaction: the conversation's count (by how many, its last message time the
    /// newest's; a live check), the first's link to its parent, and each message with its
    /// pointer.
    async fn insert_messages(&self, messages: &[Message]) -> StoreResult<bool> {
        self.insert_thread(messages, Vec::new()).await
    }

    async fn delete_messages(&self, conversation: &Conversation, messages: &[Message]) -> StoreResult<u64> {
        self.remove_messages(conversation, messages).await
    }

    /// One transaction with a check that the conversation is live, so that an answer finished
    /// after a delete changes nothing (and a purged message is never written again). The first
    /// outcome stored for a message that was generating (conditional on its task) counts its
    /// answer in the usage counters.
    async fn update_message(&self, m: &Message) -> StoreResult<bool> {
        if let Some(answer) = Tally::answer(m) {
            match self.write_message(m, true).await? {
                Transaction::Done => {
                    let spread = m.id.as_uuid().as_u128();
                    self.count(m.owner.app_id, Granularity::Hour, m.created_at, spread, answer).await;
                    return Ok(true);
                }
                // The conversation is gone.
                Transaction::Refused(failed) if failed[0] => return Ok(false),
                // Not generating (any more): stored as asked, not counted again.
                Transaction::Refused(_) => {}
            }
        }
        Ok(matches!(self.write_message(m, false).await?, Transaction::Done))
    }

    async fn mark_abandoned(&self, m: &Message) -> StoreResult<bool> {
        let Some(task) = m.task_id else { return Ok(false) };
        self.end_generation(m.conversation_id, message_sk(m.created_at, m.id), task).await
    }

    async fn app_message(&self, app: AppId, id: MessageId) -> StoreResult<Option<Message>> {
        match self.pointer(id).await? {
            Some((conversation, owner, at)) if owner.app_id == app => {
                self.live_message(owner, conversation, at, id).await
            }
            _ => Ok(None),
        }
    }

    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>> {
        match self.pointer(id).await? {
            Some((conversation, stored_owner, at)) if stored_owner == owner => {
                self.live_message(owner, conversation, at, id).await
            }
            _ => Ok(None),
        }
    }

    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>> {
        let Some((stored, _, at)) = self.pointer(id).await? else { return Ok(None) };
        if stored != conversation {
            return Ok(None);
        }
        self.get(messages_pk(conversation), message_sk(at, id)).await?.as_ref().map(message_from).transpose()
    }

    /// The message's pointer alone (one GetItem).
    async fn message_time(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Timestamp>> {
        Ok(self.pointer(id).await?.filter(|(stored, _, _)| *stored == conversation).map(|(_, _, at)| at))
    }

    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        self.history(conversation, before, fetch).await?.iter().map(message_from).collect()
    }

    /// The ratings are on the message items: the page is one Query. Messages stored before
    /// they carried their rating have it read from their feedback items (one BatchGetItem).
    async fn rated_messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<RatedMessage>> {
        let mut page = Vec::new();
        let mut unknown = Vec::new();
        for item in self.history(conversation, before, fetch).await? {
            let message = message_from(&item)?;
            let rating = match user_rating_from(&item)? {
                Some(rating) => rating,
                None => {
                    unknown.push(key(pointer_pk(message.id), feedback_sk(message.owner.end_user_id)));
                    None
                }
            };
            let replies = id_set("message", &item, REPLIES)?;
            page.push(RatedMessage { message, rating, replies });
        }
        if !unknown.is_empty() {
            for feedback in self.batch_get(unknown).await?.iter().map(feedback_from) {
                let feedback = feedback?;
                let rated = page.iter_mut().find(|m| m.message.id == feedback.message_id);
                if let Some(rated) = rated.filter(|m| m.message.owner.app_id == feedback.app_id) {
                    rated.rating = Some(feedback.rating);
                }
            }
        }
        Ok(page)
    }

    async fn root_messages(&self, conversation: &Conversation) -> StoreResult<Vec<MessageId>> {
        let item = self.get(owner_pk(conversation.owner), conversation_sk(conversation.id)).await?;
        item.map_or_else(|| Ok(Vec::new()), |item| id_set("conversation", &item, ROOTS))
    }

    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>> {
        let items = self.oldest_first(messages_pk(conversation), None, 1).await?;
        items.first().map(message_from).transpose()
    }

    async fn messages_after(
        &self,
        conversation: ConversationId,
        after: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        let after = after.map(|cursor| message_sk(cursor.at, cursor.id));
        self.oldest_first(messages_pk(conversation), after, fetch).await?.iter().map(message_from).collect()
    }
}
