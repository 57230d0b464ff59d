//! The readers and writers of every kind of item: domain values to items and back.
//!
//! Readers go through `codec::Read`, so a missing or mistyped attribute is corrupt data;
//! the attributes that are optional by design say why.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use colloquy_core::domain::{
    Annotation, AnnotationJob, AnnotationSettings, App, AppId, AppMode, Conversation, ConversationId, ConversationList,
    ConversationState, ConversationSummary, ConversationVariable, EndUser, Feedback, FeedbackSource, Invalid,
    JobStatus, KeyHash, KeyRecord, KeyRole, Message, MessageId, Metadata, Owner, Rating, ReplyAction, TaskId,
    Timestamp, UploadFile, UserRef, ValueType,
};
use colloquy_core::ports::{StoreError, StoreResult};

use super::Item;
use super::codec::{Read, embedding, json, n, s, ttl};
use super::keys::{
    APP_PK, CONVERSATION_POINTER_SK, FILE_SK, KEY_SK, POINTER_SK, SETTINGS_SK, annotation_sk, annotations_pk,
    app_conversation_shard_pk, app_keys_pk, app_sk, conversation_index_sk, conversation_pointer_pk, conversation_sk,
    file_pk, job_pk, job_sk, key, key_pk, list_pk, list_sk, message_sk, messages_pk, owner_pk, pointer_pk, task_pk,
    task_sk, variable_sk, variables_pk,
};
use super::table::{APP_INDEX, INDEXES, TTL_ATTRIBUTE};

/// Task flags and annotation jobs expire (TTL) after this long.
const TASK_TTL: Duration = Duration::from_secs(24 * 3600);

/// An app at revision `rev` (counted up by every update, so that a key written with a copy of
/// the app can check that the copy is current).
pub(super) fn app_item(app: &App, rev: i64) -> Item {
    let mut item = app_fields(app);
    item.extend(key(APP_PK, app_sk(app.id)));
    item.insert(APP_REV.into(), n(rev));
    item
}

/// The attribute of an app item holding its revision, and of a key item holding the revision
/// of its copy of the app.
pub(super) const APP_REV: &str = "rev";
/// The attribute of a key item holding a copy of its app.
pub(super) const APP_COPY: &str = "app";

/// What an app is, without a key: its item's attributes, and the copy each key carries.
pub(super) fn app_fields(app: &App) -> Item {
    let mut item = Item::new();
    item.insert("id".into(), s(app.id.to_string()));
    item.insert("name".into(), s(&app.name));
    item.insert("mode".into(), s(app.mode.as_str()));
    item.insert("config".into(), json(&app.config));
    item.insert("created_at".into(), n(app.created_at.micros()));
    item
}

pub(super) fn app_from(item: &Item) -> StoreResult<App> {
    let r = Read::new("app", item);
    Ok(App {
        id: r.parse("id")?,
        name: r.s("name")?,
        mode: r.parse_with("mode", AppMode::parse)?,
        config: r.json("config")?,
        created_at: r.time("created_at")?,
    })
}

/// An API key (by its hash), naming its app and carrying a copy of it at revision `rev`, so
/// that authenticating a request is one read.
pub(super) fn key_item(record: &KeyRecord, app: &App, rev: i64) -> Item {
    let mut item = key(key_pk(&record.hash), KEY_SK);
    item.insert("app_id".into(), s(app.id.to_string()));
    item.insert("created_at".into(), n(record.created_at.micros()));
    item.insert(KEY_ROLE.into(), s(record.role.as_str()));
    if let Some(shown) = &record.shown {
        item.insert("shown".into(), s(shown));
    }
    item.insert(APP_COPY.into(), AttributeValue::M(app_fields(app)));
    item.insert(APP_REV.into(), n(rev));
    item
}

/// A key's role: keys written before roles were kept have none, and are app keys.
pub(super) const KEY_ROLE: &str = "role";
/// When a request last used a key (to the hour).
pub(super) const KEY_USED: &str = "last_used_at";

pub(super) fn key_record_from(item: &Item) -> StoreResult<KeyRecord> {
    let r = Read::new("API key", item);
    Ok(KeyRecord {
        hash: KeyHash::from_stored(r.s("PK")?.trim_start_matches("KEY#").to_owned()),
        // Optional by design: keys written before roles were kept.
        role: r.opt_parse(KEY_ROLE)?.unwrap_or(KeyRole::App),
        // Optional by design: keys written before keys were listed.
        shown: r.opt_s("shown")?,
        created_at: r.time("created_at")?,
        // Optional by design: a key never used.
        last_used_at: r.opt_time(KEY_USED)?,
    })
}

/// A key's entry in its app's list of keys (what an app update rewrites the copies of).
pub(super) fn app_key_entry(hash: &KeyHash, app: AppId, now: Timestamp) -> Item {
    let mut item = key(app_keys_pk(app), hash.as_str());
    item.insert("created_at".into(), n(now.micros()));
    item
}

pub(super) fn end_user_from(app: AppId, user: &UserRef, item: &Item) -> StoreResult<EndUser> {
    let r = Read::new("end user", item);
    Ok(EndUser { id: r.parse("id")?, app_id: app, session_id: user.clone(), created_at: r.time("created_at")? })
}

/// A conversation, in its owner's partition (both local indexes) and in its app's shard of
/// the app-wide index, with its end user's `user` string (what operators list it by).
pub(super) fn conversation_item(c: &Conversation, user: &UserRef) -> Item {
    let mut item = conversation_fields(c, key(owner_pk(c.owner), conversation_sk(c.id)));
    item.insert("user".into(), s(user.as_str()));
    item.insert(APP_INDEX.1.into(), s(app_conversation_shard_pk(c.owner.app_id, c.id)));
    item.insert(APP_INDEX.2.into(), s(conversation_index_sk(c.updated_at, c.id)));
    // The main list (by its local indexes) holds the conversations not archived.
    if c.state.archived {
        item.remove(INDEXES[0].1);
        item.remove(INDEXES[1].1);
    }
    let lists: Vec<String> = c.state.lists().iter().map(ConversationList::key).collect();
    if !lists.is_empty() {
        item.insert(LISTS.into(), AttributeValue::Ss(lists));
    }
    item
}

/// A conversation's copy in one of its end user's lists (`list_pk`): what a page shows, in
/// the list's order (the same local index keys as the main list's).
pub(super) fn list_item(c: &Conversation, list: &ConversationList) -> Item {
    conversation_fields(c, key(list_pk(c.owner, &list.key()), list_sk(c.id)))
}

/// The attributes a conversation is read from (with its local index keys) added to `item`.
fn conversation_fields(c: &Conversation, mut item: Item) -> Item {
    item.insert("id".into(), s(c.id.to_string()));
    item.insert("app_id".into(), s(c.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(c.owner.end_user_id.to_string()));
    item.insert("name".into(), s(&c.name));
    item.insert("inputs".into(), json(&c.inputs));
    item.insert("status".into(), s(c.status.as_str()));
    item.insert("introduction".into(), s(&c.introduction));
    item.insert("created_at".into(), n(c.created_at.micros()));
    item.insert("updated_at".into(), n(c.updated_at.micros()));
    item.insert(INDEXES[0].1.into(), s(conversation_index_sk(c.updated_at, c.id)));
    item.insert(INDEXES[1].1.into(), s(conversation_index_sk(c.created_at, c.id)));
    if let Some(at) = c.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), expiry(at));
    }
    if !c.state.metadata.is_empty() {
        item.insert(METADATA.into(), s(c.state.metadata.to_stored()));
    }
    if c.state.pinned {
        item.insert(PINNED.into(), AttributeValue::Bool(true));
    }
    if c.state.archived {
        item.insert(ARCHIVED.into(), AttributeValue::Bool(true));
    }
    item
}

/// A conversation's metadata (a JSON object of strings), written only when it has some.
pub(super) const METADATA: &str = "metadata";
/// Flags written only when true.
pub(super) const PINNED: &str = "pinned";
pub(super) const ARCHIVED: &str = "archived";
/// The keys of the lists beyond the main one that a conversation is in (a string set, absent
/// when none): whoever changes the conversation finds its copies here.
pub(super) const LISTS: &str = "lists";
/// Counted up by every write of a conversation's fields or state, so that a write of its
/// copies is made against the state it read.
pub(super) const REVISION: &str = "rev";

/// The list keys and the revision of a stored conversation.
pub(super) fn lists_of(item: &Item) -> StoreResult<(Vec<String>, i64)> {
    let r = Read::new("conversation", item);
    // Optional by design: only conversations in a list have the set, and only conversations
    // written since revisions were counted have one.
    let lists = match item.get(LISTS) {
        None => Vec::new(),
        Some(AttributeValue::Ss(keys)) => keys.clone(),
        Some(_) => return Err(StoreError::Corrupt(format!("conversation: {LISTS} is not a string set"))),
    };
    Ok((lists, r.opt_n(REVISION)?.unwrap_or(0)))
}

/// An expiry as the TTL attribute holds it (Unix seconds; expiries are whole seconds).
pub(super) fn expiry(at: Timestamp) -> AttributeValue {
    n(at.unix_seconds())
}

/// The expiry the TTL attribute holds, if any.
fn expiry_of(r: &Read<'_>) -> StoreResult<Option<Timestamp>> {
    // Optional by design: only objects of apps with a retention period expire.
    Ok(r.opt_n(TTL_ATTRIBUTE)?.map(|seconds| Timestamp::from_micros(seconds.saturating_mul(1_000_000))))
}

pub(super) fn conversation_from(item: &Item) -> StoreResult<Conversation> {
    let r = Read::new("conversation", item);
    Ok(Conversation {
        id: r.parse("id")?,
        owner: r.owner()?,
        name: r.s("name")?,
        inputs: r.json("inputs")?,
        status: r.parse("status")?,
        introduction: r.s("introduction")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        expires_at: expiry_of(&r)?,
        state: ConversationState {
            // Optional by design: written only when there is some.
            metadata: match r.opt_s(METADATA)? {
                Some(text) => {
                    Metadata::parse_stored(&text).map_err(|e| StoreError::Corrupt(format!("conversation: {e}")))?
                }
                None => Metadata::default(),
            },
            pinned: r.flag(PINNED)?,
            archived: r.flag(ARCHIVED)?,
        },
    })
}

/// A conversation's pointer: its owner, so that it is found by id alone.
pub(super) fn conversation_pointer_item(c: &Conversation) -> Item {
    let mut item = key(conversation_pointer_pk(c.id), CONVERSATION_POINTER_SK);
    item.insert("app_id".into(), s(c.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(c.owner.end_user_id.to_string()));
    item
}

/// A conversation with its counters (kept by the writes of its messages and feedback;
/// conversations from before counters were kept count from then, never below zero).
pub(super) fn summary_from(item: &Item) -> StoreResult<ConversationSummary> {
    let r = Read::new("conversation", item);
    // Optional by design: counters and the user string arrived after the first conversations.
    let counter = |name: &str| -> StoreResult<u64> { Ok(r.opt_n(name)?.unwrap_or(0).max(0) as u64) };
    Ok(ConversationSummary {
        conversation: conversation_from(item)?,
        user: r.opt_s("user")?,
        message_count: counter(MESSAGE_COUNT)?,
        last_message_at: r.opt_time(LAST_MESSAGE_AT)?,
        like_count: counter(LIKE_COUNT)?,
        dislike_count: counter(DISLIKE_COUNT)?,
    })
}

/// The counters on a conversation item.
pub(super) const MESSAGE_COUNT: &str = "message_count";
pub(super) const LAST_MESSAGE_AT: &str = "last_message_at";
pub(super) const LIKE_COUNT: &str = "like_count";
pub(super) const DISLIKE_COUNT: &str = "dislike_count";

/// A conversation item, unless it is a tombstone.
pub(super) fn live(item: Option<Item>) -> StoreResult<Option<Item>> {
    match item {
        Some(item) if is_gone(&item)? => Ok(None),
        item => Ok(item),
    }
}

/// Whether a conversation item reads as no conversation: a tombstone, or a fork's placeholder
/// (see [`fork_placeholder`]).
pub(super) fn is_gone(item: &Item) -> StoreResult<bool> {
    let r = Read::new("conversation", item);
    Ok(r.flag("deleted")? || r.flag(FORKING)?)
}

/// The attribute of a fork's placeholder.
pub(super) const FORKING: &str = "forking";
/// How long a fork's placeholder lives if its fork never finishes (its TTL then removes it, and
/// the purge the messages copied so far).
pub(super) const FORK_PLACEHOLDER_TTL: Duration = Duration::from_secs(24 * 3600);

/// A fork's conversation as it is written before its messages: in no list (no index keys),
/// read as no conversation (`forking`), expiring in a day. The fork's last write replaces it
/// with the conversation; a fork cut short leaves it to its TTL, whose removal the purge
/// follows as any expired conversation's, and an erasure finds it in the end user's partition.
pub(super) fn fork_placeholder(c: &Conversation, user: &UserRef, now: Timestamp) -> Item {
    let mut item = conversation_item(c, user);
    for index_key in [INDEXES[0].1, INDEXES[1].1, APP_INDEX.1, APP_INDEX.2, LISTS] {
        item.remove(index_key);
    }
    item.insert(FORKING.into(), AttributeValue::Bool(true));
    item.insert(TTL_ATTRIBUTE.into(), ttl(now, FORK_PLACEHOLDER_TTL));
    item
}

pub(super) fn message_item(m: &Message) -> Item {
    let mut item = key(messages_pk(m.conversation_id), message_sk(m.created_at, m.id));
    item.insert("id".into(), s(m.id.to_string()));
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    if let Some(parent) = m.parent_message_id {
        item.insert("parent_message_id".into(), s(parent.to_string()));
    }
    item.insert("inputs".into(), json(&m.inputs));
    item.insert("query".into(), s(&m.query));
    item.insert("answer".into(), s(&m.answer));
    item.insert("message_files".into(), json(&m.message_files));
    item.insert("retriever_resources".into(), json(&m.retriever_resources));
    item.insert("agent_thoughts".into(), json(&m.agent_thoughts));
    item.insert("status".into(), s(m.status.as_str()));
    if let Some(error) = &m.error {
        item.insert("error".into(), s(error));
    }
    item.insert("metadata".into(), s(m.metadata.as_str()));
    item.insert("created_at".into(), n(m.created_at.micros()));
    if let Some(task) = m.task_id {
        item.insert("task_id".into(), s(task.to_string()));
    }
    item.insert(USER_RATING.into(), s(NOT_RATED));
    item
}

/// The attribute of a message item holding the rating its conversation's end user gave it,
/// written with the feedback (so a page of messages shows ratings without reading feedback).
pub(super) const USER_RATING: &str = "user_rating";
/// [`USER_RATING`] of a message without one.
pub(super) const NOT_RATED: &str = "none";

/// A message's [`USER_RATING`]: `None` for a message stored before messages carried it (its
/// feedback item says), else whether it is rated and how.
pub(super) fn user_rating_from(item: &Item) -> StoreResult<Option<Option<Rating>>> {
    // Optional by design: messages written before ratings were kept on them have none.
    let Some(raw) = Read::new("message", item).opt_s(USER_RATING)? else { return Ok(None) };
    if raw == NOT_RATED {
        return Ok(Some(None));
    }
    Read::new("message", item).parse_with(USER_RATING, rating).map(|r| Some(Some(r)))
}

/// A stored rating: exactly the text [`Rating::as_str`] writes.
fn rating(raw: &str) -> Result<Rating, Invalid> {
    one_of(raw, &[Rating::Like, Rating::Dislike], Rating::as_str)
}

pub(super) fn message_from(item: &Item) -> StoreResult<Message> {
    let r = Read::new("message", item);
    Ok(Message {
        id: r.parse("id")?,
        conversation_id: r.parse("conversation_id")?,
        owner: r.owner()?,
        // Optional by design: written only for a message that has one.
        parent_message_id: r.opt_parse("parent_message_id")?,
        inputs: r.json("inputs")?,
        query: r.s("query")?,
        answer: r.s("answer")?,
        message_files: r.json("message_files")?,
        retriever_resources: r.json("retriever_resources")?,
        agent_thoughts: r.json("agent_thoughts")?,
        status: r.parse("status")?,
        // Optional by design: written only for a failed message.
        error: r.opt_s("error")?,
        metadata: r.json("metadata")?,
        created_at: r.time("created_at")?,
        // Optional by design: written only while the answer is being generated.
        task_id: r.opt_parse("task_id")?,
    })
}

/// The attribute of a message item holding the ids of its replies (the messages whose parent
/// it is; a string set, absent when none), added to by each reply's insert and taken from by
/// its removal.
pub(super) const REPLIES: &str = "replies";
/// The attribute of a conversation item holding the ids of its messages without a parent (a
/// string set, absent when none).
pub(super) const ROOTS: &str = "roots";

/// Message items of messages written together (a fork, an import), each with its replies among
/// them: an item's [`REPLIES`] set is written with it rather than added to afterwards.
pub(super) fn message_items_with_replies(messages: &[Message]) -> Vec<Item> {
    messages
        .iter()
        .map(|m| {
            let mut item = message_item(m);
            let replies: Vec<String> =
                messages.iter().filter(|r| r.parent_message_id == Some(m.id)).map(|r| r.id.to_string()).collect();
            if !replies.is_empty() {
                item.insert(REPLIES.into(), AttributeValue::Ss(replies));
            }
            item
        })
        .collect()
}

/// The ids in the string set `name` of `item` (a message's replies, a conversation's first
/// messages), oldest first (they are time-ordered UUIDs).
pub(super) fn id_set(what: &str, item: &Item, name: &str) -> StoreResult<Vec<MessageId>> {
    let mut ids = match item.get(name) {
        // Optional by design: absent while empty (and on items written before the set was kept).
        None => Vec::new(),
        Some(AttributeValue::Ss(ids)) => ids
            .iter()
            .map(|id| id.parse::<MessageId>().map_err(|e| StoreError::Corrupt(format!("{what}: {name}: {}", e.0))))
            .collect::<StoreResult<_>>()?,
        Some(_) => return Err(StoreError::Corrupt(format!("{what}: {name} is not a string set"))),
    };
    ids.sort_unstable_by_key(|id| id.as_uuid());
    Ok(ids)
}

/// Where a message is: its conversation, owner and time (its sort key).
pub(super) fn pointer_item(m: &Message) -> Item {
    let mut item = key(pointer_pk(m.id), POINTER_SK);
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    item.insert("created_at".into(), n(m.created_at.micros()));
    item
}

pub(super) fn pointer_from(item: &Item) -> StoreResult<(ConversationId, Owner, Timestamp)> {
    let r = Read::new("message pointer", item);
    Ok((r.parse("conversation_id")?, r.owner()?, r.time("created_at")?))
}

/// A running generation: its stop flag, and where its message is, so that start-up recovery
/// can end the message when the generation's process died.
pub(super) fn task_item(m: &Message, task: TaskId) -> Item {
    let mut item = key(task_pk(task), task_sk(task));
    item.insert("id".into(), s(task.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    item.insert("stop".into(), AttributeValue::Bool(false));
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("message_sk".into(), s(message_sk(m.created_at, m.id)));
    item.insert("started_at".into(), n(m.created_at.micros()));
    item.insert("expires_at".into(), ttl(m.created_at, TASK_TTL));
    item
}

/// A feedback's attributes added to `item` (its own key, or its key in the app's list).
pub(super) fn feedback_fields(f: &Feedback, mut item: Item) -> Item {
    item.insert("id".into(), s(f.id.to_string()));
    item.insert("app_id".into(), s(f.app_id.to_string()));
    item.insert("conversation_id".into(), s(f.conversation_id.to_string()));
    item.insert("message_id".into(), s(f.message_id.to_string()));
    if let Some(end_user) = f.from_end_user_id {
        item.insert("end_user_id".into(), s(end_user.to_string()));
    }
    item.insert("rating".into(), s(f.rating.as_str()));
    if let Some(content) = &f.content {
        item.insert("content".into(), s(content));
    }
    item.insert("from_source".into(), s(f.source.as_str()));
    item.insert("created_at".into(), n(f.created_at.micros()));
    item.insert("updated_at".into(), n(f.updated_at.micros()));
    item
}

/// The value of `values` that `text` names.
fn one_of<T: Copy>(raw: &str, values: &[T], text: fn(T) -> &'static str) -> Result<T, Invalid> {
    values.iter().copied().find(|v| text(*v) == raw).ok_or_else(|| Invalid(format!("unknown value '{raw}'")))
}

pub(super) fn feedback_from(item: &Item) -> StoreResult<Feedback> {
    let r = Read::new("feedback", item);
    Ok(Feedback {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        conversation_id: r.parse("conversation_id")?,
        message_id: r.parse("message_id")?,
        rating: r.parse_with("rating", rating)?,
        // Optional by design: written only when the end user gave a comment.
        content: r.opt_s("content")?,
        source: r.parse_with("from_source", |raw| {
            one_of(raw, &[FeedbackSource::User, FeedbackSource::Admin], FeedbackSource::as_str)
        })?,
        // Optional by design: written only for an end user's feedback.
        from_end_user_id: r.opt_parse("end_user_id")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(super) fn variable_item(v: &ConversationVariable) -> Item {
    let mut item = key(variables_pk(v.conversation_id), variable_sk(v.id));
    item.insert("id".into(), s(v.id.to_string()));
    item.insert("app_id".into(), s(v.app_id.to_string()));
    item.insert("conversation_id".into(), s(v.conversation_id.to_string()));
    item.insert("name".into(), s(&v.name));
    item.insert("value_type".into(), s(v.value_type.as_str()));
    item.insert("value".into(), json(&v.value));
    item.insert("description".into(), s(&v.description));
    item.insert("created_at".into(), n(v.created_at.micros()));
    item.insert("updated_at".into(), n(v.updated_at.micros()));
    item
}

pub(super) fn variable_from(item: &Item) -> StoreResult<ConversationVariable> {
    let r = Read::new("variable", item);
    Ok(ConversationVariable {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        conversation_id: r.parse("conversation_id")?,
        name: r.s("name")?,
        value_type: r.parse_with("value_type", ValueType::parse)?,
        value: r.json("value")?,
        description: r.s("description")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(super) fn annotation_item(a: &Annotation) -> Item {
    let mut item = key(annotations_pk(a.app_id), annotation_sk(a.id));
    item.insert("id".into(), s(a.id.to_string()));
    item.insert("app_id".into(), s(a.app_id.to_string()));
    item.insert("question".into(), s(&a.question));
    item.insert("answer".into(), s(&a.answer));
    item.insert("hit_count".into(), n(a.hit_count as i64));
    if let Some(vector) = &a.embedding {
        item.insert("embedding".into(), embedding(vector));
    }
    item.insert("created_at".into(), n(a.created_at.micros()));
    item
}

pub(super) fn annotation_from(item: &Item) -> StoreResult<Annotation> {
    let r = Read::new("annotation", item);
    Ok(Annotation {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        question: r.s("question")?,
        answer: r.s("answer")?,
        hit_count: r.count("hit_count")?,
        // Optional by design: written only for an annotation that has been embedded.
        embedding: r.opt_embedding("embedding")?,
        created_at: r.time("created_at")?,
    })
}

pub(super) fn settings_item(app: AppId, settings: &AnnotationSettings) -> Item {
    let mut item = key(annotations_pk(app), SETTINGS_SK);
    item.insert("score_threshold".into(), s(settings.score_threshold.to_string()));
    item.insert("embedding_provider".into(), s(&settings.embedding_provider));
    item.insert("embedding_model".into(), s(&settings.embedding_model));
    item
}

pub(super) fn settings_from(item: &Item) -> StoreResult<AnnotationSettings> {
    let r = Read::new("annotation settings", item);
    let threshold: f64 = r.parse_with("score_threshold", |raw| raw.parse().map_err(|e| Invalid(format!("{e}"))))?;
    Ok(AnnotationSettings {
        score_threshold: threshold as f32,
        embedding_provider: r.s("embedding_provider")?,
        embedding_model: r.s("embedding_model")?,
    })
}

pub(super) fn job_item(job: &AnnotationJob) -> Item {
    let mut item = key(job_pk(job.app_id), job_sk(job.id));
    item.insert("id".into(), s(job.id.to_string()));
    item.insert("app_id".into(), s(job.app_id.to_string()));
    item.insert("action".into(), s(job.action.as_str()));
    item.insert("job_status".into(), s(job.status.as_str()));
    item.insert("error".into(), s(&job.error));
    item.insert("created_at".into(), n(job.created_at.micros()));
    item.insert("expires_at".into(), ttl(job.created_at, TASK_TTL));
    item
}

pub(super) fn job_from(item: &Item) -> StoreResult<AnnotationJob> {
    let r = Read::new("annotation job", item);
    Ok(AnnotationJob {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        action: r.parse_with("action", ReplyAction::parse)?,
        status: r.parse_with("job_status", JobStatus::parse)?,
        error: r.s("error")?,
        created_at: r.time("created_at")?,
    })
}

pub(super) fn file_item(f: &UploadFile) -> Item {
    let mut item = key(file_pk(f.id), FILE_SK);
    item.insert("id".into(), s(f.id.to_string()));
    item.insert("app_id".into(), s(f.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(f.owner.end_user_id.to_string()));
    item.insert("name".into(), s(&f.name));
    item.insert("size".into(), n(i64::try_from(f.size).unwrap_or(i64::MAX)));
    item.insert("extension".into(), s(&f.extension));
    item.insert("mime_type".into(), s(&f.mime_type));
    item.insert("created_at".into(), n(f.created_at.micros()));
    if let Some(at) = f.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), expiry(at));
    }
    item
}

pub(super) fn file_from(item: &Item) -> StoreResult<UploadFile> {
    let r = Read::new("file", item);
    Ok(UploadFile {
        id: r.parse("id")?,
        owner: r.owner()?,
        name: r.s("name")?,
        size: r.count("size")?,
        extension: r.s("extension")?,
        mime_type: r.s("mime_type")?,
        created_at: r.time("created_at")?,
        expires_at: expiry_of(&r)?,
    })
}
