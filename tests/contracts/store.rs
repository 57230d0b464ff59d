use std::sync::Arc;

use colloquy_core::domain::{
    ABANDONED_AFTER, ABANDONED_ERROR, Annotation, AnnotationId, AnnotationJob, AnnotationSettings, ApiKey, App,
    AppConfig, AppId, AppMode, Conversation, ConversationId, ConversationList, ConversationSort, ConversationVariable,
    Cursor, EndUser, EndUserId, Feedback, FeedbackId, FeedbackSource, FileId, JobId, JobStatus, KeyRole, Message,
    MessageId, OpaqueJson, Owner, RatedMessage, Rating, ReplyAction, SortField, TaskId, Timestamp, UploadFile, UserRef,
    ValueType, VariableId, VariableNameFilter,
};
use colloquy_core::ports::Store;
use colloquy_embedded::sqlite::SqliteStore;
use colloquy_tests::{T0, test_store};
use serde_json::{Map, json};
use uuid::Uuid;

fn id() -> Uuid {
    Uuid::now_v7()
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_micros((T0 + second) * 1_000_000)
}

async fn app(store: &dyn Store) -> App {
    let app = App::new(AppId::from_uuid(id()), "Contract", AppMode::Chat, AppConfig::default(), at(0)).unwrap();
    store.create_app(&app, &ApiKey::generate(KeyRole::App).record(KeyRole::App, at(0))).await.unwrap();
    app
}

async fn app_named(store: &dyn Store, name: &str) -> App {
    let app = App::new(AppId::from_uuid(id()), name, AppMode::Chat, AppConfig::default(), at(0)).unwrap();
    store.create_app(&app, &ApiKey::generate(KeyRole::App).record(KeyRole::App, at(0))).await.unwrap();
    app
}

async fn owner(store: &dyn Store, app: AppId, user: &str) -> Owner {
    let user = UserRef::parse(user).unwrap();
    let fresh = EndUser { id: EndUserId::from_uuid(id()), app_id: app, session_id: user.clone(), created_at: at(0) };
    store.end_user(app, &user, fresh).await.unwrap().owner()
}

/// The `user` string conversations are stored with where the test does not look at it.
fn someone() -> UserRef {
    UserRef::parse("someone").unwrap()
}

fn conversation(owner: Owner, created: i64, updated: i64) -> Conversation {
    Conversation {
        id: ConversationId::from_uuid(id()),
        owner,
        name: "c".into(),
        inputs: Map::new(),
        status: colloquy_core::domain::ConversationStatus::Normal,
        introduction: String::new(),
        created_at: at(created),
        updated_at: at(updated),
        expires_at: None,
        state: Default::default(),
    }
}

fn message(conversation: &Conversation, second: i64) -> Message {
    Message {
        id: MessageId::from_uuid(id()),
        conversation_id: conversation.id,
        owner: conversation.owner,
        parent_message_id: None,
        inputs: Map::new(),
        query: format!("q{second}"),
        answer: String::new(),
        message_files: vec![json!({"url": "https://example.com/a.png"})],
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: colloquy_core::domain::MessageStatus::Normal,
        error: None,
        metadata: OpaqueJson::empty_object(),
        created_at: at(second),
        task_id: None,
    }
}

/// A message whose generation is running (as the chat endpoint stores it).
fn generating(conversation: &Conversation, second: i64) -> Message {
    Message { task_id: Some(TaskId::from_uuid(id())), ..message(conversation, second) }
}

fn feedback_on(m: &Message, second: i64) -> Feedback {
    Feedback {
        id: FeedbackId::from_uuid(id()),
        app_id: m.owner.app_id,
        conversation_id: m.conversation_id,
        message_id: m.id,
        rating: Rating::Like,
        content: None,
        source: FeedbackSource::User,
        from_end_user_id: Some(m.owner.end_user_id),
        created_at: at(second),
        updated_at: at(second),
    }
}

/// A fresh directory, removed with what is in it when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("colloquy-contract-{}", id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generates one test per adapter for a contract.
macro_rules! contract {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(std::sync::Arc::new(super::SqliteStore::in_memory().unwrap())).await;
            })+
        }
        /// A database file: one writing connection and the read-only ones beside it.
        mod sqlite_file {
            $(#[tokio::test]
            async fn $name() {
                let dir = super::ScratchDir::new();
                super::$name(std::sync::Arc::new(super::SqliteStore::open(&dir.0.join("colloquy.db")).unwrap())).await;
            })+
        }
        mod dynamodb {
            $(#[tokio::test]
            async fn $name() {
                super::$name(std::sync::Arc::new(colloquy_tests::aws::dynamo_store().await)).await;
            })+
        }
    };
}

contract!(
    apps_and_keys,
    end_users,
    conversations,
    messages,
    feedback,
    variables,
    rate_limits,
    annotations,
    tasks,
    files,
    messages_only_enter_live_conversations,
    concurrent_first_feedbacks_make_one,
    abandoned_generations_end_at_start_up,
    app_conversations_merge_every_end_user_in_order,
);

async fn apps_and_keys(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    assert_eq!(store.app(app.id).await.unwrap().unwrap(), app);
    assert!(store.apps().await.unwrap().iter().any(|a| a.id == app.id));
    let app_for = |key: &ApiKey| {
        let store = store.clone();
        let hash = key.hash();
        async move { store.app_for_key(&hash).await.unwrap().map(|grant| grant.app) }
    };
    let key = ApiKey::generate(KeyRole::App);
    store.add_key(app.id, &key.record(KeyRole::App, at(1))).await.unwrap();
    assert!(store.add_key(app.id, &key.record(KeyRole::App, at(1))).await.is_err(), "a key is stored once");
    assert_eq!(app_for(&key).await, Some(app.clone()));
    assert!(store.revoke_key(&key.hash()).await.unwrap());
    assert!(!store.revoke_key(&key.hash()).await.unwrap());
    assert_eq!(app_for(&key).await, None);
    // Every key reads the app as it is now, whenever the key was made.
    let before = ApiKey::generate(KeyRole::App);
    store.add_key(app.id, &before.record(KeyRole::App, at(2))).await.unwrap();
    let mut changed = app.clone();
    changed.config.enable_api = false;
    changed.name = "renamed".into();
    assert!(store.update_app(&changed).await.unwrap());
    assert!(!store.app(app.id).await.unwrap().unwrap().config.enable_api);
    let after = ApiKey::generate(KeyRole::Operator);
    store.add_key(app.id, &after.record(KeyRole::Operator, at(3))).await.unwrap();
    for key in [&before, &after] {
        assert_eq!(app_for(key).await, Some(changed.clone()));
    }
    changed.config.enable_api = true;
    assert!(store.update_app(&changed).await.unwrap());
    assert_eq!(app_for(&before).await, Some(changed.clone()), "updated again");
    assert!(store.revoke_key(&before.hash()).await.unwrap());
    assert!(store.update_app(&changed).await.unwrap(), "an update after a revoke");
    assert_eq!(app_for(&before).await, None, "the update brings no revoked key back");
    assert_eq!(app_for(&after).await, Some(changed.clone()));
    let ghost = App { id: AppId::from_uuid(id()), ..app };
    assert!(!store.update_app(&ghost).await.unwrap());
    keys_have_roles_and_a_last_use(store.as_ref(), app.id, &after).await;
    assert_eq!(store.app(ghost.id).await.unwrap(), None);
}

async fn end_users(store: Arc<dyn Store>) {
    let one = app(store.as_ref()).await;
    let two = app(store.as_ref()).await;
    let first = owner(store.as_ref(), one.id, "alice").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { owner(store.as_ref(), one.id, "alice").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), first, "get-or-create is stable under concurrency");
    }
    assert_ne!(owner(store.as_ref(), two.id, "alice").await, first, "end users are per app");
    assert_ne!(owner(store.as_ref(), one.id, "Alice").await, first, "and case-sensitive");
    // The read-only lookup finds what get-or-create made, and makes nothing itself.
    let alice = UserRef::parse("alice").unwrap();
    let found = store.find_end_user(one.id, &alice).await.unwrap().expect("alice exists");
    assert_eq!(found.owner(), first);
    let ghost = UserRef::parse("ghost").unwrap();
    assert!(store.find_end_user(one.id, &ghost).await.unwrap().is_none());
    assert!(store.find_end_user(one.id, &ghost).await.unwrap().is_none(), "looking did not create it");
}

async fn conversations(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let bob = owner(store.as_ref(), app.id, "bob").await;
    let mut all = Vec::new();
    for (created, updated) in [(0, 5), (0, 5), (1, 1), (2, 9), (2, 5)] {
        let c = conversation(alice, created, updated);
        store.insert_conversation(&c, &someone()).await.unwrap();
        all.push(c);
    }
    assert!(store.insert_conversation(&all[0], &someone()).await.is_err(), "ids are unique");
    store.insert_conversation(&conversation(bob, 3, 3), &someone()).await.unwrap();
    assert_eq!(store.conversation(alice, all[0].id).await.unwrap().as_ref(), Some(&all[0]));
    assert_eq!(store.conversation(bob, all[0].id).await.unwrap(), None);

    for field in [SortField::CreatedAt, SortField::UpdatedAt] {
        for descending in [false, true] {
            let sort = ConversationSort { field, descending };
            let key =
                |c: &Conversation| (if field == SortField::CreatedAt { c.created_at } else { c.updated_at }, c.id);
            let mut expected: Vec<_> = all.iter().map(key).collect();
            expected.sort();
            if descending {
                expected.reverse();
            }
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store.conversations(alice, sort, &ConversationList::Active, after, 2).await.unwrap();
                seen.extend(page.iter().map(key));
                match page.last() {
                    Some(last) if page.len() == 2 => after = Some(Cursor { at: key(last).0, id: last.id }),
                    _ => break,
                }
            }
            assert_eq!(seen, expected, "{sort:?}");
        }
    }

    let mut renamed = all[2].clone();
    renamed.name = "renamed".into();
    renamed.updated_at = at(20);
    assert!(store.update_conversation(&renamed).await.unwrap());
    let newest =
        store.conversations(alice, ConversationSort::DEFAULT, &ConversationList::Active, None, 1).await.unwrap();
    assert_eq!(newest[0].name, "renamed", "a rename is visible and reorders at once");
    assert!(!store.update_conversation(&Conversation { owner: bob, ..renamed.clone() }).await.unwrap());

    assert!(store.delete_conversation(alice, renamed.id).await.unwrap());
    assert!(!store.delete_conversation(alice, renamed.id).await.unwrap());
    assert!(!store.delete_conversation(bob, all[0].id).await.unwrap());
    assert_eq!(store.conversation(alice, renamed.id).await.unwrap(), None);
    assert!(!store.update_conversation(&renamed).await.unwrap(), "a deleted conversation cannot be renamed");
    let listed =
        store.conversations(alice, ConversationSort::DEFAULT, &ConversationList::Active, None, 10).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|c| c.id != renamed.id));
}

async fn messages(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let bob = owner(store.as_ref(), app.id, "bob").await;
    let chat = conversation(alice, 0, 0);
    let other = conversation(alice, 0, 0);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    store.insert_conversation(&other, &someone()).await.unwrap();
    let mut sent = Vec::new();
    for second in [1, 1, 1, 2, 3] {
        let m = message(&chat, second);
        assert!(store.insert_message(&m).await.unwrap());
        sent.push(m);
    }
    assert!(store.insert_message(&sent[0]).await.is_err(), "ids are unique");
    sent.sort_by_key(|m| (m.created_at, m.id));

    assert_eq!(store.message(alice, sent[0].id).await.unwrap().as_ref(), Some(&sent[0]));
    assert_eq!(store.message(bob, sent[0].id).await.unwrap(), None);
    assert_eq!(store.message_in(chat.id, sent[0].id).await.unwrap().as_ref(), Some(&sent[0]));
    assert_eq!(store.message_in(other.id, sent[0].id).await.unwrap(), None);
    assert_eq!(store.first_message(chat.id).await.unwrap().map(|m| m.id), Some(sent[0].id));
    assert_eq!(store.first_message(other.id).await.unwrap(), None);

    let newest = store.messages_before(chat.id, None, 2).await.unwrap();
    assert_eq!(newest.iter().map(|m| m.id).collect::<Vec<_>>(), vec![sent[4].id, sent[3].id]);
    let cursor = Cursor { at: sent[2].created_at, id: sent[2].id };
    let older = store.messages_before(chat.id, Some(cursor), 10).await.unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), vec![sent[1].id, sent[0].id], "ties are ordered by id");

    let mut answered = sent[4].clone();
    answered.answer = "done".into();
    answered.status = colloquy_core::domain::MessageStatus::Error;
    answered.error = Some("boom".into());
    answered.metadata = OpaqueJson::of(&json!({"usage": {"prompt_tokens": 3}}));
    assert!(store.update_message(&answered).await.unwrap());
    assert_eq!(store.message(alice, answered.id).await.unwrap().as_ref(), Some(&answered));
    answered.error = None;
    answered.status = colloquy_core::domain::MessageStatus::Normal;
    assert!(store.update_message(&answered).await.unwrap());
    assert_eq!(store.message(alice, answered.id).await.unwrap().unwrap().error, None);

    assert!(store.delete_conversation(alice, chat.id).await.unwrap());
    assert_eq!(store.message(alice, sent[0].id).await.unwrap(), None, "messages vanish with their conversation");
}

async fn feedback(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let chat = conversation(alice, 0, 0);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    let mut rated = Vec::new();
    let mut messages = Vec::new();
    for second in 0..4 {
        let m = message(&chat, second);
        assert!(store.insert_message(&m).await.unwrap());
        let f = feedback_on(&m, second);
        assert!(store.save_feedback(&f, None, &m).await.unwrap());
        rated.push(f);
        messages.push(m);
    }
    let unrated = message(&chat, 5);
    assert!(store.insert_message(&unrated).await.unwrap());
    assert_eq!(store.message_time(chat.id, messages[1].id).await.unwrap(), Some(messages[1].created_at));
    let elsewhere = ConversationId::from_uuid(id());
    assert_eq!(store.message_time(elsewhere, messages[1].id).await.unwrap(), None, "only in its conversation");
    assert_eq!(store.message_time(chat.id, MessageId::from_uuid(id())).await.unwrap(), None);
    let mut changed = rated[1].clone();
    changed.rating = Rating::Dislike;
    changed.content = Some("wrong".into());
    changed.updated_at = at(30);
    assert!(store.save_feedback(&changed, Some(Rating::Like), &messages[1]).await.unwrap());
    assert_eq!(store.user_feedback(alice, rated[1].message_id).await.unwrap().as_ref(), Some(&changed));
    // A first feedback that lost a race (another id) updates the stored one, which keeps its id.
    let late =
        Feedback { id: FeedbackId::from_uuid(id()), rating: Rating::Like, created_at: at(40), ..changed.clone() };
    assert!(store.save_feedback(&late, None, &messages[1]).await.unwrap());
    let kept = store.user_feedback(alice, rated[1].message_id).await.unwrap().unwrap();
    assert_eq!((kept.id, kept.created_at, kept.rating), (changed.id, changed.created_at, Rating::Like));
    assert_eq!(store.app_feedbacks(app.id, 0, 10).await.unwrap().len(), 4, "still one list entry each");
    assert!(store.save_feedback(&changed, Some(Rating::Like), &messages[1]).await.unwrap());
    let bob = owner(store.as_ref(), app.id, "bob").await;
    assert_eq!(store.user_feedback(bob, rated[1].message_id).await.unwrap(), None);

    // A page of messages carries each one's rating, as last saved.
    let ratings = |page: Vec<RatedMessage>| page.into_iter().map(|m| (m.message.id, m.rating)).collect::<Vec<_>>();
    let page = ratings(store.rated_messages_before(chat.id, None, 10).await.unwrap());
    let expected = |second: Option<Rating>| {
        vec![
            (unrated.id, None),
            (messages[3].id, Some(Rating::Like)),
            (messages[2].id, Some(Rating::Like)),
            (messages[1].id, second),
            (messages[0].id, Some(Rating::Like)),
        ]
    };
    assert_eq!(page, expected(Some(Rating::Dislike)));
    let cursor = Cursor { at: messages[2].created_at, id: messages[2].id };
    let older = ratings(store.rated_messages_before(chat.id, Some(cursor), 10).await.unwrap());
    assert_eq!(older, expected(Some(Rating::Dislike))[3..], "after a cursor too");

    let page = store.app_feedbacks(app.id, 1, 2).await.unwrap();
    assert_eq!(page.iter().map(|f| f.id).collect::<Vec<_>>(), vec![rated[2].id, rated[1].id], "newest first, offset");
    assert_eq!(page[1].content.as_deref(), Some("wrong"));
    assert!(store.delete_feedback(&changed, &messages[1]).await.unwrap());
    assert_eq!(store.user_feedback(alice, rated[1].message_id).await.unwrap(), None);
    let page = ratings(store.rated_messages_before(chat.id, None, 10).await.unwrap());
    assert_eq!(page, expected(None), "a revoked rating is gone from the page");
    assert_eq!(store.app_feedbacks(app.id, 0, 10).await.unwrap().len(), 3);
    assert!(store.delete_conversation(alice, chat.id).await.unwrap());
    assert!(store.app_feedbacks(app.id, 0, 10).await.unwrap().is_empty(), "feedback vanishes with its conversation");
}

async fn variables(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let chat = conversation(alice, 0, 0);
    let mut made = Vec::new();
    for (second, name) in [(0, "memory"), (0, "Memo_2"), (1, "other")] {
        let v = ConversationVariable {
            id: VariableId::from_uuid(id()),
            app_id: app.id,
            conversation_id: chat.id,
            name: name.into(),
            value_type: ValueType::Object,
            value: json!({"k": second}),
            description: String::new(),
            created_at: at(second),
            updated_at: at(second),
        };
        store.insert_variable(&v).await.unwrap();
        made.push(v);
    }
    made.sort_by_key(|v| (v.created_at, v.id));
    let all = store.variables(chat.id, None, None, 10).await.unwrap();
    assert_eq!(all, made);
    let filter = VariableNameFilter::parse("MEMO").unwrap();
    let memos = store.variables(chat.id, Some(&filter), None, 10).await.unwrap();
    assert_eq!(memos.len(), 2);
    let after =
        store.variables(chat.id, None, Some(Cursor { at: made[0].created_at, id: made[0].id }), 1).await.unwrap();
    assert_eq!(after, vec![made[1].clone()]);
    let mut changed = made[2].clone();
    changed.value = json!([1, 2]);
    changed.updated_at = at(9);
    store.update_variable(&changed).await.unwrap();
    assert_eq!(store.variable(chat.id, changed.id).await.unwrap(), Some(changed));
    assert_eq!(store.variable(ConversationId::from_uuid(id()), made[0].id).await.unwrap(), None);
}

async fn rate_limits(store: Arc<dyn Store>) {
    let key = format!("contract:{}", id());
    for _ in 0..3 {
        assert!(store.try_hit(&key, 60, 3).await.unwrap());
    }
    assert!(!store.try_hit(&key, 60, 3).await.unwrap());
    assert!(!store.try_hit(&key, 60, 3).await.unwrap(), "refused hits are not counted up");
    store.give_back(&key, 60).await.unwrap();
    assert!(store.try_hit(&key, 60, 3).await.unwrap(), "a hit given back can be used again");
    assert!(!store.try_hit(&key, 60, 3).await.unwrap());
    let unused = format!("{key}:unused");
    store.give_back(&unused, 60).await.unwrap();
    for _ in 0..3 {
        assert!(store.try_hit(&unused, 60, 3).await.unwrap(), "giving back never raises the limit");
    }
    assert!(!store.try_hit(&unused, 60, 3).await.unwrap());
    assert!(store.try_hit(&key, 120, 3).await.unwrap(), "a new window starts afresh");
    assert!(store.try_hit(&format!("{key}:other"), 60, 3).await.unwrap());
}

async fn annotations(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let mut made = Vec::new();
    for (second, question) in [(0, "Reset password"), (1, "Opening hours"), (2, "Password length")] {
        let a = Annotation {
            id: AnnotationId::from_uuid(id()),
            app_id: app.id,
            question: question.into(),
            answer: format!("answer {second}"),
            hit_count: 0,
            embedding: (second == 0).then(|| vec![0.25, -1.0, 3.5]),
            created_at: at(second),
        };
        store.insert_annotation(&a).await.unwrap();
        made.push(a);
    }
    assert_eq!(store.annotation(app.id, made[0].id).await.unwrap().as_ref(), Some(&made[0]));
    assert_eq!(store.annotation(AppId::from_uuid(id()), made[0].id).await.unwrap(), None);
    let (page, total) = store.annotations(app.id, Some("PASSWORD"), 0, 1).await.unwrap();
    assert_eq!((page.iter().map(|a| a.id).collect::<Vec<_>>(), total), (vec![made[2].id], 2));
    let (page, total) = store.annotations(app.id, None, 1, 5).await.unwrap();
    assert_eq!((page.len(), total), (2, 3));
    let (page, _) = store.annotations(app.id, Some("answer 1"), 0, 5).await.unwrap();
    assert_eq!(page[0].id, made[1].id, "answers are searched too");

    store.record_annotation_hit(app.id, made[0].id).await.unwrap();
    store.record_annotation_hit(app.id, made[0].id).await.unwrap();
    let mut changed = store.annotation(app.id, made[0].id).await.unwrap().unwrap();
    assert_eq!(changed.hit_count, 2);
    changed.question = "Reset my password".into();
    changed.embedding = None;
    assert!(store.update_annotation(&changed).await.unwrap());
    assert_eq!(store.annotation(app.id, changed.id).await.unwrap(), Some(changed.clone()));
    assert_eq!(store.all_annotations(app.id).await.unwrap().len(), 3);
    assert!(store.delete_annotation(app.id, changed.id).await.unwrap());
    assert!(!store.delete_annotation(app.id, changed.id).await.unwrap());
    assert!(!store.update_annotation(&changed).await.unwrap());

    assert_eq!(store.annotation_settings(app.id).await.unwrap(), None);
    let settings = AnnotationSettings::new(0.75, "echo", "lexical").unwrap();
    store.save_annotation_settings(app.id, Some(&settings)).await.unwrap();
    assert_eq!(store.annotation_settings(app.id).await.unwrap(), Some(settings));
    store.save_annotation_settings(app.id, None).await.unwrap();
    assert_eq!(store.annotation_settings(app.id).await.unwrap(), None);

    let mut job = AnnotationJob {
        id: JobId::from_uuid(id()),
        app_id: app.id,
        action: ReplyAction::Enable,
        status: JobStatus::Processing,
        error: String::new(),
        created_at: at(0),
    };
    store.save_job(&job).await.unwrap();
    job.status = JobStatus::Error;
    job.error = "no provider".into();
    store.save_job(&job).await.unwrap();
    assert_eq!(store.job(app.id, job.id).await.unwrap(), Some(job.clone()));
    assert_eq!(store.job(AppId::from_uuid(id()), job.id).await.unwrap(), None);
}

async fn tasks(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let bob = owner(store.as_ref(), app.id, "bob").await;
    let chat = conversation(alice, 0, 0);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    // A generating message is stored with its task.
    let answering = generating(&chat, 1);
    let task = answering.task_id.unwrap();
    assert!(store.insert_message(&answering).await.unwrap());
    assert_eq!(store.message(alice, answering.id).await.unwrap().unwrap().task_id, Some(task));
    assert!(!store.stop_requested(task).await.unwrap());
    store.request_stop(task, bob).await.unwrap();
    assert!(!store.stop_requested(task).await.unwrap(), "only the owner can stop a task");
    store.request_stop(TaskId::from_uuid(id()), alice).await.unwrap();
    store.request_stop(task, alice).await.unwrap();
    assert!(store.stop_requested(task).await.unwrap());
    store.finish_task(task).await.unwrap();
    assert!(!store.stop_requested(task).await.unwrap());
    // Storing the outcome ends the generating state.
    let answered = Message { answer: "done".into(), task_id: None, ..answering };
    assert!(store.update_message(&answered).await.unwrap());
    assert_eq!(store.message(alice, answered.id).await.unwrap(), Some(answered));
}

async fn files(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let bob = owner(store.as_ref(), app.id, "bob").await;
    let file = UploadFile {
        id: FileId::from_uuid(id()),
        owner: alice,
        name: "report.pdf".into(),
        size: 1234,
        extension: "pdf".into(),
        mime_type: "application/pdf".into(),
        created_at: at(0),
        expires_at: None,
    };
    store.insert_file(&file).await.unwrap();
    assert_eq!(store.file(alice, file.id).await.unwrap(), Some(file.clone()));
    assert_eq!(store.file(bob, file.id).await.unwrap(), None, "files are the uploader's");
    assert_eq!(store.file(alice, FileId::from_uuid(id())).await.unwrap(), None);
}

#[tokio::test]
async fn the_api_test_store_is_the_one_selected() {
    // `test_store` picks DynamoDB when COLLOQUY_TEST_STORE=dynamodb; either way it works.
    let store = test_store().await;
    let app = app(store.as_ref()).await;
    assert!(store.app(app.id).await.unwrap().is_some());
}

async fn messages_only_enter_live_conversations(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let bob = owner(store.as_ref(), app.id, "bob").await;
    let chat = conversation(alice, 0, 0);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    let answered = message(&chat, 1);
    assert!(store.insert_message(&answered).await.unwrap());
    let rated = feedback_on(&answered, 1);

    let never_stored = message(&conversation(alice, 0, 0), 1);
    assert!(!store.insert_message(&never_stored).await.unwrap(), "no conversation, no message");
    let foreign = Message { owner: bob, ..message(&chat, 2) };
    assert!(!store.insert_message(&foreign).await.unwrap(), "only into the owner's conversation");

    // What a chat whose conversation is deleted meanwhile does, after the delete.
    assert!(store.delete_conversation(alice, chat.id).await.unwrap());
    let late = generating(&chat, 3);
    assert!(!store.insert_message(&late).await.unwrap());
    assert!(!store.stop_requested(late.task_id.unwrap()).await.unwrap(), "nor its task");
    request_stop_is_ignored(store.as_ref(), late.task_id.unwrap(), alice).await;
    let finished = Message { answer: "too late".into(), ..answered.clone() };
    assert!(!store.update_message(&finished).await.unwrap(), "an answer finished after the delete is dropped");
    assert!(!store.save_feedback(&rated, None, &answered).await.unwrap(), "feedback needs a live conversation");
    // (Reads by conversation start from a live conversation, so only reads by id are checked.)
    for m in [&answered, &late, &foreign, &never_stored] {
        assert_eq!(store.message(m.owner, m.id).await.unwrap(), None);
    }
    assert_eq!(store.user_feedback(alice, answered.id).await.unwrap(), None);
    assert!(store.app_feedbacks(app.id, 0, 10).await.unwrap().is_empty());
}

/// An app's keys are listed with their role and shown start, never the key; a key's use is
/// noted at most once an hour.
async fn keys_have_roles_and_a_last_use(store: &dyn Store, app: AppId, operator: &ApiKey) {
    let grant = store.app_for_key(&operator.hash()).await.unwrap().unwrap();
    assert_eq!((grant.role, grant.last_used_at), (KeyRole::Operator, None));
    store.touch_key(&operator.hash(), at(100)).await.unwrap();
    store.touch_key(&operator.hash(), at(200)).await.unwrap();
    assert_eq!(
        store.app_for_key(&operator.hash()).await.unwrap().unwrap().last_used_at,
        Some(at(100)),
        "within the hour"
    );
    store.touch_key(&operator.hash(), at(100 + 3600)).await.unwrap();
    let keys = store.keys(app).await.unwrap();
    let listed = keys.iter().find(|k| k.hash == operator.hash()).expect("listed");
    assert_eq!((listed.role, listed.created_at, listed.last_used_at), (KeyRole::Operator, at(3), Some(at(3700))));
    let shown = listed.shown.as_deref().unwrap();
    assert!(shown.starts_with("op-") && shown.len() < operator.expose().len(), "{shown}");
    assert!(keys.iter().all(|k| k.role == KeyRole::App || k.hash == operator.hash()));
    // A revoked key is not listed, nor written back by a late use.
    assert!(store.revoke_key(&operator.hash()).await.unwrap());
    store.touch_key(&operator.hash(), at(9000)).await.unwrap();
    assert!(store.keys(app).await.unwrap().iter().all(|k| k.hash != operator.hash()));
    assert_eq!(store.app_for_key(&operator.hash()).await.unwrap(), None);
}

/// Many conversations of several end users, a third of them at one same time: every page size
/// lists each live one exactly once, in (updated_at, id) descending order, whatever shard of a
/// sharded index it is in; counters come with them; deleted ones and other apps' never do.
async fn app_conversations_merge_every_end_user_in_order(store: Arc<dyn Store>) {
    use colloquy_core::domain::{ConversationFilter, ConversationSummary};
    let app = app(store.as_ref()).await;
    let other = app_named(store.as_ref(), "other").await;
    let users = ["ann", "ben", "cat", "dan"];
    let mut owners = Vec::new();
    for user in users {
        owners.push(owner(store.as_ref(), app.id, user).await);
    }
    let mut all: Vec<Conversation> = Vec::new();
    for i in 0..60_i64 {
        let updated = if i % 3 == 0 { 500 } else { i };
        let c = conversation(owners[i as usize % 4], i, updated);
        store.insert_conversation(&c, &UserRef::parse(users[i as usize % 4]).unwrap()).await.unwrap();
        all.push(c);
    }
    let counted = message(&all[5], 600);
    assert!(store.insert_message(&counted).await.unwrap());
    let foreign = conversation(owner(store.as_ref(), other.id, "ann").await, 1, 900);
    store.insert_conversation(&foreign, &someone()).await.unwrap();
    let deleted = all.remove(7);
    assert!(store.delete_conversation(deleted.owner, deleted.id).await.unwrap());
    all.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id.to_string())));
    let expected: Vec<ConversationId> = all.iter().map(|c| c.id).collect();

    let filter = ConversationFilter::default();
    // (Each page reads every shard of DynamoDB's index: a few page sizes keep this quick.)
    for size in [6_usize, 100] {
        let mut listed: Vec<ConversationSummary> = Vec::new();
        let mut after = None;
        loop {
            let page = store.app_conversations(app.id, &filter, after, size + 1).await.unwrap();
            let more = page.len() > size;
            listed.extend(page.into_iter().take(size));
            if !more {
                break;
            }
            let last = &listed.last().unwrap().conversation;
            after = Some(Cursor { at: last.updated_at, id: last.id });
        }
        assert_eq!(listed.iter().map(|s| s.conversation.id).collect::<Vec<_>>(), expected, "pages of {size}");
        let summary = listed
            .iter()
            .find(|s| s.conversation.id == all.iter().find(|c| c.id == counted.conversation_id).unwrap().id)
            .unwrap();
        assert_eq!((summary.message_count, summary.last_message_at), (1, Some(counted.created_at)));
        assert_eq!(summary.user.as_deref(), Some(users[5 % 4]));
    }
    let found = store.app_conversation(app.id, all[0].id).await.unwrap().unwrap();
    assert_eq!(found.conversation, all[0]);
    assert_eq!(store.app_conversation(other.id, all[0].id).await.unwrap(), None, "another app's");
    assert_eq!(store.app_conversation(app.id, deleted.id).await.unwrap(), None, "deleted");
    assert_eq!(store.app_conversation(app.id, foreign.id).await.unwrap(), None);
    let ben = ConversationFilter { end_users: Some(vec![owners[1].end_user_id]), ..ConversationFilter::default() };
    let bens = store.app_conversations(app.id, &ben, None, 100).await.unwrap();
    let expected_bens: Vec<ConversationId> = all.iter().filter(|c| c.owner == owners[1]).map(|c| c.id).collect();
    assert_eq!(bens.iter().map(|s| s.conversation.id).collect::<Vec<_>>(), expected_bens, "one end user's");
}

/// A stop request for `task` changes nothing (it is unknown).
async fn request_stop_is_ignored(store: &dyn Store, task: TaskId, owner: Owner) {
    store.request_stop(task, owner).await.unwrap();
    assert!(!store.stop_requested(task).await.unwrap());
}

async fn concurrent_first_feedbacks_make_one(store: Arc<dyn Store>) {
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let chat = conversation(alice, 0, 0);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    let rated = message(&chat, 0);
    assert!(store.insert_message(&rated).await.unwrap());
    let writes: Vec<_> = (0..50)
        .map(|i| {
            let (store, feedback) = (store.clone(), feedback_on(&rated, i));
            let message = rated.clone();
            tokio::spawn(async move { store.save_feedback(&feedback, None, &message).await })
        })
        .collect();
    for write in writes {
        assert!(write.await.unwrap().expect("no write fails"));
    }
    let stored = store.user_feedback(alice, rated.id).await.unwrap().expect("one feedback");
    let listed = store.app_feedbacks(app.id, 0, 100).await.unwrap();
    assert_eq!(listed, vec![stored], "one list entry, the stored feedback");
}

async fn abandoned_generations_end_at_start_up(store: Arc<dyn Store>) {
    // Long before every other test's data, so that their running tasks are not touched.
    let start = -5_000_000;
    let abandoned_after = ABANDONED_AFTER.as_secs() as i64;
    let app = app(store.as_ref()).await;
    let alice = owner(store.as_ref(), app.id, "alice").await;
    let chat = conversation(alice, start, start);
    store.insert_conversation(&chat, &someone()).await.unwrap();
    let crashed = generating(&chat, start);
    let running = generating(&chat, start + 20);
    let answered = message(&chat, start);
    for m in [&crashed, &running, &answered] {
        assert!(store.insert_message(m).await.unwrap());
    }
    for m in [&crashed, &running] {
        store.request_stop(m.task_id.unwrap(), alice).await.unwrap();
    }
    let now = at(start + abandoned_after + 10);
    assert!(crashed.is_abandoned(now) && !running.is_abandoned(now));

    assert_eq!(store.end_abandoned(now).await.unwrap(), 1);
    let ended = store.message(alice, crashed.id).await.unwrap().unwrap();
    let mut expected = crashed.clone();
    expected.mark_abandoned();
    assert_eq!(ended, expected, "failed, with Dify's error status and its text");
    assert_eq!(ended.error.as_deref(), Some(ABANDONED_ERROR));
    assert!(!store.stop_requested(crashed.task_id.unwrap()).await.unwrap(), "its task is removed");
    request_stop_is_ignored(store.as_ref(), crashed.task_id.unwrap(), alice).await;
    assert_eq!(store.message(alice, running.id).await.unwrap().as_ref(), Some(&running), "a recent one runs on");
    assert!(store.stop_requested(running.task_id.unwrap()).await.unwrap(), "with its task");
    assert_eq!(store.message(alice, answered.id).await.unwrap().as_ref(), Some(&answered));
    assert_eq!(store.end_abandoned(now).await.unwrap(), 0, "once");

    // Reads end abandoned messages one by one, unless the generation stored its outcome.
    assert!(store.mark_abandoned(&running).await.unwrap());
    let mut failed = running.clone();
    failed.mark_abandoned();
    assert_eq!(store.message(alice, running.id).await.unwrap(), Some(failed));
    assert!(!store.mark_abandoned(&running).await.unwrap(), "once");
    let late = generating(&chat, start + 30);
    assert!(store.insert_message(&late).await.unwrap());
    let outcome = Message { answer: "here".into(), task_id: None, ..late.clone() };
    assert!(store.update_message(&outcome).await.unwrap());
    assert!(!store.mark_abandoned(&late).await.unwrap(), "a stored outcome stays");
    assert_eq!(store.message(alice, late.id).await.unwrap(), Some(outcome));
}
