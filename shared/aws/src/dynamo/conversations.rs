//! Conversations (`ConversationStore`): one partition per end user, listed through the two
//! local secondary indexes (by update and by creation time); a delete lays a tombstone.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
    WriteRequest,
};
use futures_util::{StreamExt, TryStreamExt};

use colloquy_core::domain::{
    AppId, Conversation, ConversationFilter, ConversationId, ConversationList, ConversationSort, ConversationSummary,
    ConversationVariable, Cursor, Granularity, Message, Owner, SortField, Tally, Timestamp, UserRef,
};
use colloquy_core::ports::{ConversationStore, StoreError, StoreResult};

use super::codec::{json, n, s, ttl};
use super::items::{
    ARCHIVED, LAST_MESSAGE_AT, LISTS, MESSAGE_COUNT, METADATA, PINNED, REVISION, ROOTS, conversation_from,
    conversation_item, conversation_pointer_item, expiry, fork_placeholder, list_item, lists_of, live,
    message_items_with_replies, pointer_item, summary_from, variable_item,
};
use super::keys::{
    APP_CONVERSATION_SHARDS, CONVERSATION_POINTER_SK, app_conversation_shard_pk, app_conversations_pk,
    conversation_index_sk, conversation_pointer_pk, conversation_sk, key, list_pk, list_sk, messages_pk, order,
    owner_pk,
};
use super::requests::{sdk_error, written_by};
use super::table::{APP_INDEX, INDEXES};
use super::transact::{LIVE, TRANSACT_ATTEMPTS, Transaction, pause};
use super::{DynamoStore, Item};

/// Tombstoned conversations expire (TTL) after this long.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[async_trait]
impl ConversationStore for DynamoStore {
    /// The conversation, its pointer and its copies in lists (`put_conversation`).
    async fn insert_conversation(&self, c: &Conversation, user: &UserRef) -> StoreResult<()> {
        self.put_conversation(c, conversation_item(c, user)).await
    }

    /// The conversation first as a placeholder (read as none, in no list, expiring in a day),
    /// then the messages (with their pointers) and the variables in batches: every read of a
    /// message goes through its live conversation, so they read as nothing until the last
    /// step, one transaction replacing the placeholder with the conversation (its counters
    /// set), its pointer and its copies in lists. A fork cut short leaves the placeholder to
    /// its TTL, and the purge then removes what was copied.
    async fn insert_fork(
        &self,
        c: &Conversation,
        user: &UserRef,
        messages: &[Message],
        variables: &[ConversationVariable],
    ) -> StoreResult<()> {
        self.fork_copies(c, user, messages, variables).await?;
        let mut item = conversation_item(c, user);
        item.insert(MESSAGE_COUNT.into(), n(i64::try_from(messages.len()).unwrap_or(i64::MAX)));
        if let Some(last) = messages.iter().map(|m| m.created_at).max() {
            item.insert(LAST_MESSAGE_AT.into(), n(last.micros()));
        }
        let roots: Vec<String> =
            messages.iter().filter(|m| m.parent_message_id.is_none()).map(|m| m.id.to_string()).collect();
        if !roots.is_empty() {
            item.insert(ROOTS.into(), AttributeValue::Ss(roots));
        }
        self.put_conversation_as(c, item, "attribute_exists(forking)").await
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        live(self.get(owner_pk(owner), conversation_sk(id)).await?)?.as_ref().map(conversation_from).transpose()
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        list: &ConversationList,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        // The main list is the owner's partition (whose archived conversations carry no index
        // keys); every other list is a partition of copies with the same index keys.
        let pk = match list {
            ConversationList::Active => owner_pk(owner),
            other => list_pk(owner, &other.key()),
        };
        let (index, attribute) = match sort.field {
            SortField::UpdatedAt => INDEXES[0],
            SortField::CreatedAt => INDEXES[1],
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .consistent_read(true)
            .scan_index_forward(!sort.descending)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(pk));
        query = match after {
            None => query.key_condition_expression("PK = :pk"),
            Some(cursor) => {
                let beyond = if sort.descending { "<" } else { ">" };
                query
                    .key_condition_expression(format!("PK = :pk AND {attribute} {beyond} :cursor"))
                    .expression_attribute_values(":cursor", s(conversation_index_sk(cursor.at, cursor.id)))
            }
        };
        // Tombstones carry no index keys, so the index holds live conversations only.
        let output = query.send().await.map_err(sdk_error)?;
        output.items.unwrap_or_default().iter().map(conversation_from).collect()
    }

    /// One UpdateItem while the conversation is in no list but the main one; otherwise a
    /// transaction that also rewrites its copies, made against the revision it read.
    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let mut fields = Fields::of(c, false);
        fields.set("#rev = if_not_exists(#rev, :zero) + :one");
        fields.names.insert("#rev".into(), REVISION.into());
        fields.names.insert("#lists".into(), LISTS.into());
        fields.values.insert(":zero".into(), n(0));
        fields.values.insert(":one".into(), n(1));
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(c.owner), conversation_sk(c.id))))
            .update_expression(fields.expression())
            .condition_expression(format!("{LIVE} AND attribute_not_exists(#lists)"))
            .set_expression_attribute_names(Some(fields.names))
            .set_expression_attribute_values(Some(fields.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut read: Option<Item>;
        match request.send().await {
            Ok(_) => return Ok(true),
            Err(SdkError::ServiceError(service)) => match service.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    let Some(item) = live(failed.item().cloned())? else { return Ok(false) };
                    // In lists: the item the refusal returned is the first attempt's read.
                    read = Some(item);
                }
                _ => return Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => return Err(sdk_error(e)),
        }
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let found = match read.take() {
                Some(item) => Some(item),
                None => self.get(owner_pk(c.owner), conversation_sk(c.id)).await?,
            };
            let Some(item) = live(found)? else { return Ok(false) };
            let stored = conversation_from(&item)?;
            let (_, revision) = lists_of(&item)?;
            let mut copy = c.clone();
            copy.state = stored.state;
            let fields = Fields::of(&copy, copy.state.archived);
            let mut writes = vec![self.revised_update(c.owner, c.id, fields, revision)?];
            for list in copy.state.lists() {
                writes.push(self.put_item(list_item(&copy, &list), None)?);
            }
            if let Transaction::Done = self.transact_checked(writes).await? {
                return Ok(true);
            }
            // Another write moved the revision: read again after a jittered pause.
            pause(attempt, 5).await;
        }
        Err(StoreError::Unavailable("a conversation kept changing while it was written".into()))
    }

    /// The state and the lists: the conversation's item (its revision checked), a copy put in
    /// each list of the new state, the copies in lists it left deleted, in one transaction.
    async fn set_conversation_state(&self, c: &Conversation) -> StoreResult<bool> {
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let Some(item) = live(self.get(owner_pk(c.owner), conversation_sk(c.id)).await?)? else {
                return Ok(false);
            };
            let mut stored = conversation_from(&item)?;
            let (before, revision) = lists_of(&item)?;
            stored.state = c.state.clone();
            let lists = stored.state.lists();
            let keys: Vec<String> = lists.iter().map(ConversationList::key).collect();
            let fields = Fields::state(&stored, &keys);
            let mut writes = vec![self.revised_update(c.owner, c.id, fields, revision)?];
            for list in &lists {
                writes.push(self.put_item(list_item(&stored, list), None)?);
            }
            for gone in before.iter().filter(|k| !keys.contains(k)) {
                writes.push(self.delete_item(list_pk(c.owner, gone), list_sk(c.id))?);
            }
            if let Transaction::Done = self.transact_checked(writes).await? {
                return Ok(true);
            }
            // Another write moved the revision: read again after a jittered pause.
            pause(attempt, 5).await;
        }
        Err(StoreError::Unavailable("a conversation kept changing while it was written".into()))
    }

    /// Every shard of the app-wide index (or, for one end user's, that owner's partition),
    /// merged newest first; `updated` bounds and the cursor are key conditions, the other
    /// filters are checked on the items read.
    async fn app_conversations(
        &self,
        app: AppId,
        filter: &ConversationFilter,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let sources: Vec<Source> = match &filter.end_users {
            Some(end_users) => end_users
                .iter()
                .map(|end_user_id| Source {
                    index: INDEXES[0].0,
                    pk_attribute: "PK",
                    pk: owner_pk(Owner { app_id: app, end_user_id: *end_user_id }),
                    sk_attribute: INDEXES[0].1,
                    consistent: true,
                })
                .collect(),
            None => (0..APP_CONVERSATION_SHARDS)
                .map(|shard| Source {
                    index: APP_INDEX.0,
                    pk_attribute: APP_INDEX.1,
                    pk: app_conversations_pk(app, shard),
                    sk_attribute: APP_INDEX.2,
                    consistent: false,
                })
                .collect(),
        };
        // Sort keys are `<updated>#<id>`: a bare `<time>` sorts before every key at that time.
        let lower = filter.updated.from.map(order);
        let cursor = after.map(|c| conversation_index_sk(c.at, c.id));
        let until = filter.updated.until.map(order);
        let upper = match (cursor, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // An empty range (which a BETWEEN would refuse) finds nothing.
        if sources.is_empty() || lower.as_ref().zip(upper.as_ref()).is_some_and(|(l, u)| l >= u) {
            return Ok(Vec::new());
        }
        self.merge_sources(&sources, lower, upper, filter, fetch).await
    }

    /// The owner from one of its messages, then the conversation itself, read consistently.
    async fn app_conversation(&self, app: AppId, id: ConversationId) -> StoreResult<Option<ConversationSummary>> {
        let Some(owner) = self.owner_of(id).await? else { return Ok(None) };
        if owner.app_id != app {
            return Ok(None);
        }
        live(self.get(owner_pk(owner), conversation_sk(id)).await?)?.as_ref().map(summary_from).transpose()
    }

    /// One request: a tombstone that hides the conversation from every read at once; the
    /// purge (run from the table's stream) removes what belonged to it.
    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        Ok(self.tombstone(owner, id).await?.is_some())
    }
}

impl DynamoStore {
    /// What a fork writes before its last step: the conversation's placeholder, then the
    /// messages (each with the replies among them), their pointers and the variables, in
    /// batches. Public so that a test can cut a fork short here.
    pub async fn fork_copies(
        &self,
        c: &Conversation,
        user: &UserRef,
        messages: &[Message],
        variables: &[ConversationVariable],
    ) -> StoreResult<()> {
        let now = Timestamp::from_micros(
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0),
        );
        if !self.put_absent(fork_placeholder(c, user, now)).await? {
            return Err(StoreError::Conflict("the conversation exists".into()));
        }
        let mut puts = Vec::with_capacity(messages.len() * 2 + variables.len());
        let items = message_items_with_replies(messages)
            .into_iter()
            .chain(messages.iter().map(pointer_item))
            .chain(variables.iter().map(variable_item));
        for item in items {
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(sdk_error)?;
            puts.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(puts).await
    }

    /// A new conversation's `item`, its pointer and its copies in lists, in one transaction
    /// (its request token makes a retried request that went through succeed, not conflict);
    /// counted in the usage counters.
    async fn put_conversation(&self, c: &Conversation, item: Item) -> StoreResult<()> {
        self.put_conversation_as(c, item, "attribute_not_exists(PK)").await
    }

    /// [`put_conversation`](Self::put_conversation) with the item written on `condition`.
    async fn put_conversation_as(&self, c: &Conversation, item: Item, condition: &str) -> StoreResult<()> {
        let absent = Some("attribute_not_exists(PK)");
        let mut writes =
            vec![self.put_item(item, Some(condition))?, self.put_item(conversation_pointer_item(c), absent)?];
        for list in c.state.lists() {
            writes.push(self.put_item(list_item(c, &list), None)?);
        }
        match self.transact_checked(writes).await? {
            Transaction::Done => {
                let spread = c.id.as_uuid().as_u128();
                self.count(c.owner.app_id, Granularity::Hour, c.created_at, spread, Tally::conversation()).await;
                Ok(())
            }
            Transaction::Refused(_) => Err(StoreError::Conflict("the conversation exists".into())),
        }
    }

    /// Lays a live conversation's tombstone (one UpdateItem; with its copies in lists deleted
    /// in the same transaction when it is in any); returns how many messages it had (its
    /// counter), or `None` when it was not live (gone, or deleted by another request).
    pub(super) async fn tombstone(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<u64>> {
        let now = Timestamp::from_micros(
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0),
        );
        // The tombstone names the request that laid it, so a retry of this very request
        // (its first response lost) is told apart from a conversation deleted before.
        let request = uuid::Uuid::new_v4().to_string();
        let mut fields = Fields::default();
        fields.set("deleted = :yes, expires_at = :ttl, written_by = :request");
        fields.remove.extend(["LSI1SK", "LSI2SK", "GSI1PK", "GSI1SK"].map(String::from));
        fields.values.insert(":yes".into(), AttributeValue::Bool(true));
        fields.values.insert(":ttl".into(), ttl(now, TOMBSTONE_TTL));
        fields.values.insert(":request".into(), s(&request));
        fields.names.insert("#lists".into(), LISTS.into());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .update_expression(fields.expression())
            .condition_expression(format!("{LIVE} AND attribute_not_exists(#lists)"))
            .set_expression_attribute_names(Some(fields.names.clone()))
            .set_expression_attribute_values(Some(fields.values.clone()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        // Optional by design: the counter arrived after the first conversations.
        let messages = |item: Option<&Item>| -> StoreResult<u64> {
            let count =
                item.map(|item| super::codec::Read::new("conversation", item).opt_n(MESSAGE_COUNT)).transpose()?;
            Ok(count.flatten().unwrap_or(0).max(0) as u64)
        };
        let mut read: Option<Item>;
        match result {
            Ok(output) => return messages(output.attributes.as_ref()).map(Some),
            Err(SdkError::ServiceError(service)) => match service.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    if written_by("conversation", failed.item(), &request)? {
                        return messages(failed.item()).map(Some);
                    }
                    let Some(item) = live(failed.item().cloned())? else { return Ok(None) };
                    // In lists: the item the refusal returned is the first attempt's read.
                    read = Some(item);
                }
                _ => return Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => return Err(sdk_error(e)),
        }
        // In lists: the tombstone and the copies' removal together.
        fields.remove.push("#lists".into());
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let found = match read.take() {
                Some(item) => Some(item),
                None => self.get(owner_pk(owner), conversation_sk(id)).await?,
            };
            if written_by("conversation", found.as_ref(), &request)? {
                return messages(found.as_ref()).map(Some);
            }
            let Some(item) = live(found)? else { return Ok(None) };
            let (lists, revision) = lists_of(&item)?;
            let mut writes = vec![self.revised_update(owner, id, fields.clone(), revision)?];
            for list in &lists {
                writes.push(self.delete_item(list_pk(owner, list), list_sk(id))?);
            }
            if let Transaction::Done = self.transact_checked(writes).await? {
                return messages(Some(&item)).map(Some);
            }
            // Another write moved the revision: read again after a jittered pause.
            pause(attempt, 5).await;
        }
        Err(StoreError::Unavailable("a conversation kept changing while it was deleted".into()))
    }
}

/// An update's `SET` and `REMOVE` clauses with the attribute names and values they use.
#[derive(Default, Clone)]
struct Fields {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Fields {
    /// Name, inputs, status and update time, with the keys that order the conversation by
    /// update (the main list's only when it is not `archived`) and its expiry.
    fn of(c: &Conversation, archived: bool) -> Self {
        let mut fields = Self::default();
        for clause in ["#name = :name", "inputs = :inputs", "#status = :status", "updated_at = :at"] {
            fields.set(clause);
        }
        fields.set("GSI1PK = :shard, GSI1SK = :lsi");
        if !archived {
            fields.set("LSI1SK = :lsi");
        }
        fields.names.insert("#name".into(), "name".into());
        fields.names.insert("#status".into(), "status".into());
        fields.values.insert(":name".into(), s(&c.name));
        fields.values.insert(":inputs".into(), json(&c.inputs));
        fields.values.insert(":status".into(), s(c.status.as_str()));
        fields.values.insert(":at".into(), n(c.updated_at.micros()));
        fields.values.insert(":lsi".into(), s(conversation_index_sk(c.updated_at, c.id)));
        fields.values.insert(":shard".into(), s(app_conversation_shard_pk(c.owner.app_id, c.id)));
        // The expiry moves with the activity (TTL), or goes when the app keeps conversations.
        match c.expires_at {
            Some(at) => {
                fields.set("expires_at = :expires");
                fields.values.insert(":expires".into(), expiry(at));
            }
            None => fields.remove.push("expires_at".into()),
        }
        fields
    }

    /// Metadata, pinned, archived and the keys of the lists they put `c` in; an archived
    /// conversation leaves the main list (its local index keys go).
    fn state(c: &Conversation, lists: &[String]) -> Self {
        let mut fields = Self::default();
        for (name, attribute) in
            [("#metadata", METADATA), ("#pinned", PINNED), ("#archived", ARCHIVED), ("#lists", LISTS)]
        {
            fields.names.insert(name.into(), attribute.into());
        }
        let state = &c.state;
        let flag = |fields: &mut Self, on: bool, name: &str| {
            if on {
                fields.set(&format!("{name} = :yes"));
                fields.values.insert(":yes".into(), AttributeValue::Bool(true));
            } else {
                fields.remove.push(name.into());
            }
        };
        flag(&mut fields, state.pinned, "#pinned");
        flag(&mut fields, state.archived, "#archived");
        if state.metadata.is_empty() {
            fields.remove.push("#metadata".into());
        } else {
            fields.set("#metadata = :metadata");
            fields.values.insert(":metadata".into(), s(state.metadata.to_stored()));
        }
        if lists.is_empty() {
            fields.remove.push("#lists".into());
        } else {
            fields.set("#lists = :lists");
            fields.values.insert(":lists".into(), AttributeValue::Ss(lists.to_vec()));
        }
        if state.archived {
            fields.remove.extend(["LSI1SK".into(), "LSI2SK".into()]);
        } else {
            fields.set("LSI1SK = :by_update, LSI2SK = :by_creation");
            fields.values.insert(":by_update".into(), s(conversation_index_sk(c.updated_at, c.id)));
            fields.values.insert(":by_creation".into(), s(conversation_index_sk(c.created_at, c.id)));
        }
        fields
    }

    fn set(&mut self, clause: &str) {
        self.set.push(clause.to_owned());
    }

    fn expression(&self) -> String {
        let mut expression = String::new();
        if !self.set.is_empty() {
            expression.push_str(&format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}

impl DynamoStore {
    /// A transaction's update of a live conversation made against the revision `revision`
    /// that was read (0: none yet), counting it up.
    fn revised_update(
        &self,
        owner: Owner,
        id: ConversationId,
        mut fields: Fields,
        revision: i64,
    ) -> StoreResult<TransactWriteItem> {
        fields.set("#rev = :next");
        fields.names.insert("#rev".into(), REVISION.into());
        fields.values.insert(":next".into(), n(revision + 1));
        let condition = if revision == 0 {
            format!("{LIVE} AND attribute_not_exists(#rev)")
        } else {
            fields.values.insert(":rev".into(), n(revision));
            format!("{LIVE} AND #rev = :rev")
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .update_expression(fields.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(fields.names))
            .set_expression_attribute_values(Some(fields.values))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// How many shard queries of one listing are in flight at once.
const SHARD_READS_AT_ONCE: usize = 16;

/// Where an app's conversations are listed from: one shard of the app-wide index, or (for
/// one end user's) the owner's partition through its by-update local index, read consistently.
struct Source {
    index: &'static str,
    pk_attribute: &'static str,
    pk: String,
    sk_attribute: &'static str,
    consistent: bool,
}

/// What has been read of one source: the matching conversations (newest first, each with its
/// sort key), where to go on from, and the sort key of the last item read (matching or not).
#[derive(Default)]
struct Read {
    found: Vec<(String, ConversationSummary)>,
    start: Option<Item>,
    last_seen: Option<String>,
    exhausted: bool,
    pages: u32,
}

impl DynamoStore {
    /// The next page of a source, newest first, strictly below `upper` and not below `lower`
    /// (index sort keys), keeping what passes `filter`.
    async fn read_source(
        &self,
        source: &Source,
        bounds: (&Option<String>, &Option<String>),
        filter: &ConversationFilter,
        limit: usize,
        mut read: Read,
    ) -> StoreResult<Read> {
        let (lower, upper) = bounds;
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(source.index)
            .consistent_read(source.consistent)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(read.start.take())
            .expression_attribute_names("#pk", source.pk_attribute)
            .expression_attribute_values(":pk", s(&source.pk));
        let condition = match (lower, upper) {
            (None, None) => "#pk = :pk",
            (Some(_), None) => "#pk = :pk AND #sk >= :lower",
            (None, Some(_)) => "#pk = :pk AND #sk < :upper",
            // BETWEEN includes its upper end: an item at exactly `upper` is dropped below.
            (Some(_), Some(_)) => "#pk = :pk AND #sk BETWEEN :lower AND :upper",
        };
        if lower.is_some() || upper.is_some() {
            query = query.expression_attribute_names("#sk", source.sk_attribute);
        }
        if let Some(lower) = lower {
            query = query.expression_attribute_values(":lower", s(lower));
        }
        if let Some(upper) = upper {
            query = query.expression_attribute_values(":upper", s(upper));
        }
        let output = query.key_condition_expression(condition).send().await.map_err(sdk_error)?;
        for item in output.items.unwrap_or_default() {
            let sk = super::codec::Read::new("conversation", &item).s(source.sk_attribute)?;
            read.last_seen = Some(sk.clone());
            if upper.as_ref().is_some_and(|upper| sk >= *upper) {
                continue;
            }
            let summary = summary_from(&item)?;
            if filter.matches(&summary) {
                read.found.push((sk, summary));
            }
        }
        read.start = output.last_evaluated_key;
        read.exhausted = read.start.is_none();
        read.pages += 1;
        Ok(read)
    }
}

/// The `fetch` newest of what the sources found, and the sort key of the last of them when
/// there are that many (no unread item older than it can be among them).
fn merged(reads: &[Read], fetch: usize) -> (Vec<&(String, ConversationSummary)>, Option<&String>) {
    let mut all: Vec<&(String, ConversationSummary)> = reads.iter().flat_map(|read| read.found.iter()).collect();
    all.sort_by(|a, b| b.0.cmp(&a.0));
    all.truncate(fetch);
    let threshold = if all.len() == fetch { all.last().map(|(sk, _)| sk) } else { None };
    (all, threshold)
}

impl DynamoStore {
    /// A k-way merge of newest-first sources: each is read a small page at a time, and only the
    /// sources whose unread items could still be among the `fetch` newest are read again (an
    /// unread item of a source is older than the last item read from it).
    async fn merge_sources(
        &self,
        sources: &[Source],
        lower: Option<String>,
        upper: Option<String>,
        filter: &ConversationFilter,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let first = (fetch * 2 / sources.len().max(1)).max(2) + 1;
        let mut reads: Vec<Read> = sources.iter().map(|_| Read::default()).collect();
        let mut wanted: Vec<usize> = (0..sources.len()).collect();
        let bounds = (&lower, &upper);
        while !wanted.is_empty() {
            let taken: Vec<(usize, Read)> = wanted.iter().map(|i| (*i, std::mem::take(&mut reads[*i]))).collect();
            let pages = taken.into_iter().map(|(i, read)| {
                // Pages grow as a source proves busy: a filter may match few of its items.
                let limit = (first << read.pages.min(5)).min(1000);
                let source = &sources[i];
                async move { self.read_source(source, bounds, filter, limit, read).await.map(|r| (i, r)) }
            });
            // At most 16 at a time: 64 queries at once gain little latency over 4 waves of 16 and
            // bunch up behind one another in a busy endpoint (DynamoDB Local, a small client pool).
            let pages: Vec<(usize, Read)> =
                futures_util::stream::iter(pages).buffer_unordered(SHARD_READS_AT_ONCE).try_collect().await?;
            for (i, read) in pages {
                reads[i] = read;
            }
            let (_, threshold) = merged(&reads, fetch);
            wanted = (0..sources.len())
                .filter(|i| {
                    let read = &reads[*i];
                    !read.exhausted
                        && match (threshold, &read.last_seen) {
                            (Some(threshold), Some(last)) => last > threshold,
                            _ => true,
                        }
                })
                .collect();
        }
        let (page, _) = merged(&reads, fetch);
        Ok(page.into_iter().map(|(_, summary)| summary.clone()).collect())
    }

    /// The owner of a conversation known by id alone: its pointer, or for a conversation
    /// stored before pointers were kept, any of its messages (the message partition is the
    /// conversation's).
    async fn owner_of(&self, id: ConversationId) -> StoreResult<Option<Owner>> {
        if let Some(pointer) = self.get(conversation_pointer_pk(id), CONVERSATION_POINTER_SK).await? {
            return super::codec::Read::new("conversation pointer", &pointer).owner().map(Some);
        }
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(messages_pk(id)))
            .limit(1)
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .first()
            .map(|item| super::codec::Read::new("message", item).owner())
            .transpose()
    }
}
