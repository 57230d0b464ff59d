//! Test helpers: start the real server on a random port over an in-memory store, and seed
//! data through the same storage ports the service uses.

pub mod aws;
pub mod fakes;
pub mod faults;
pub mod lambda;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use colloquy::server::ServerLimits;
use colloquy_core::admin;
use colloquy_core::api::{ApiLimits, Cors, JobRunner, KeyCache, Services};
use colloquy_core::domain::{
    App, AppConfig, AppMode, Conversation, ConversationId, ConversationVariable, EndUser, EndUserId, Feedback,
    FeedbackId, FeedbackSource, KeyRole, Message, MessageId, Rating, Timestamp, UserRef, ValueType, VariableId,
};
use colloquy_core::models::{Models, Provider};
use colloquy_core::ports::{BlobStore, Clock, IdGenerator, Store};
use colloquy_core::speech::Speech;
use colloquy_core::system::TimeOrderedIds;
use colloquy_embedded::fs_blobs::FsBlobStore;
use colloquy_embedded::sqlite::SqliteStore;
use colloquy_providers::echo::{EchoLlm, LexicalEmbedder};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

/// A clock the test moves by hand, so timestamps can collide on purpose.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at_seconds(seconds: i64) -> Self {
        Self(AtomicI64::new(seconds * 1_000_000))
    }

    pub fn set_seconds(&self, seconds: i64) {
        self.0.store(seconds * 1_000_000, Ordering::SeqCst);
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

/// The default start of test time: 2025-01-16T10:00:00Z.
pub const T0: i64 = 1_737_021_600;

/// A running server and handles on its insides.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<ManualClock>,
    shutdown: Option<oneshot::Sender<()>>,
    /// The newest message seeded into each conversation (the next seed's parent).
    seeded: std::sync::Mutex<std::collections::HashMap<colloquy_core::domain::ConversationId, (Timestamp, MessageId)>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An app created through the admin API, with its key.
#[derive(Debug, Clone)]
pub struct TestKey {
    pub app: App,
    pub key: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiLimits::default()).await
}

pub async fn spawn_app_with(limits: ApiLimits) -> TestApp {
    spawn_app_full(limits, echo_models(Duration::ZERO), Speech::none()).await
}

/// A server whose apps use `models`.
pub async fn spawn_app_with_models(models: Models) -> TestApp {
    spawn_app_full(ApiLimits::default(), models, Speech::none()).await
}

/// A server with the given speech engines.
pub async fn spawn_app_with_speech(speech: Speech) -> TestApp {
    spawn_app_full(ApiLimits::default(), echo_models(Duration::ZERO), speech).await
}

/// Only the built-in echo provider, streaming with `delay` between words.
pub fn echo_models(delay: Duration) -> Models {
    let echo = Provider { name: "echo", llm: Arc::new(EchoLlm::new(delay)), embedder: Some(Arc::new(LexicalEmbedder)) };
    Models::new("echo", vec![echo]).expect("echo is configured")
}

/// A server on a given store.
pub async fn spawn_app_on(store: Arc<dyn Store>) -> TestApp {
    spawn_on(store, ApiLimits::default(), echo_models(Duration::ZERO), Speech::none()).await
}

async fn spawn_app_full(limits: ApiLimits, models: Models, speech: Speech) -> TestApp {
    spawn_on(test_store().await, limits, models, speech).await
}

/// A server with the given connection limits and CORS policy (and a short echo delay, so a
/// streamed chat stays in flight for a while).
pub async fn spawn_app_with_server(server: ServerLimits, cors: Cors) -> TestApp {
    spawn_server(
        test_store().await,
        ApiLimits::default(),
        echo_models(Duration::from_millis(50)),
        Speech::none(),
        server,
        cors,
    )
    .await
}

async fn spawn_on(store: Arc<dyn Store>, limits: ApiLimits, models: Models, speech: Speech) -> TestApp {
    spawn_server(store, limits, models, speech, ServerLimits::default(), Cors::default()).await
}

/// A server that serves the apps behind keys from memory for `ttl` (as Lambda does), on the
/// test clock.
pub async fn spawn_app_caching_keys(ttl: Duration) -> TestApp {
    spawn_app_on_caching_keys(test_store().await, ttl).await
}

/// [`spawn_app_caching_keys`] on a given store.
pub async fn spawn_app_on_caching_keys(store: Arc<dyn Store>, ttl: Duration) -> TestApp {
    let blobs = test_blobs().await;
    let front = (ServerLimits::default(), Cors::default(), KeyCache::new(ttl));
    spawn_split(
        (store.clone(), blobs.clone()),
        (store, blobs),
        ApiLimits::default(),
        echo_models(Duration::ZERO),
        Speech::none(),
        front,
    )
    .await
}

async fn spawn_server(
    store: Arc<dyn Store>,
    limits: ApiLimits,
    models: Models,
    speech: Speech,
    server: ServerLimits,
    cors: Cors,
) -> TestApp {
    let blobs = test_blobs().await;
    let front = (server, cors, KeyCache::off());
    spawn_split((store.clone(), blobs.clone()), (store, blobs), limits, models, speech, front).await
}

/// A server on `server`'s store and blobs while the test seeds and checks through `direct`:
/// the same data reached another way (around a fault-injecting proxy, say).
pub async fn spawn_app_via(
    server: (Arc<dyn Store>, Arc<dyn BlobStore>),
    direct: (Arc<dyn Store>, Arc<dyn BlobStore>),
) -> TestApp {
    let front = (ServerLimits::default(), Cors::default(), KeyCache::off());
    spawn_split(server, direct, ApiLimits::default(), echo_models(Duration::ZERO), Speech::none(), front).await
}

async fn spawn_split(
    (server_store, server_blobs): (Arc<dyn Store>, Arc<dyn BlobStore>),
    (store, blobs): (Arc<dyn Store>, Arc<dyn BlobStore>),
    limits: ApiLimits,
    models: Models,
    speech: Speech,
    (server, cors, keys): (ServerLimits, Cors, KeyCache),
) -> TestApp {
    let clock = Arc::new(ManualClock::at_seconds(T0));
    let services = Services {
        store: server_store,
        blobs: server_blobs,
        models,
        speech,
        clock: clock.clone(),
        ids: Arc::new(TimeOrderedIds),
        limits,
        cors,
        keys: Arc::new(keys),
        jobs: JobRunner::InProcess,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a random port");
    let addr = listener.local_addr().expect("local address");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(colloquy::server::serve_with(listener, services, server, async {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        client: Client::new(),
        store,
        blobs,
        clock,
        shutdown: Some(tx),
        seeded: Default::default(),
    }
}

/// Which store the API tests run on: the embedded one, or DynamoDB (Local) and S3 when
/// `COLLOQUY_TEST_STORE=dynamodb` (set by `scripts/test.sh` once the emulators run).
pub fn testing_on_dynamodb() -> bool {
    std::env::var("COLLOQUY_TEST_STORE").is_ok_and(|v| v == "dynamodb")
}

/// A fresh store for one test: an in-memory database, or the shared test table (tests do not
/// collide there because every test creates its own apps, and every key includes the app).
pub async fn test_store() -> Arc<dyn Store> {
    if testing_on_dynamodb() {
        Arc::new(aws::dynamo_store().await)
    } else {
        Arc::new(SqliteStore::in_memory().expect("in-memory store"))
    }
}

/// Blob storage for one test: a fresh directory, or moto's S3 when testing on DynamoDB.
pub async fn test_blobs() -> Arc<dyn BlobStore> {
    if testing_on_dynamodb() {
        Arc::new(aws::s3_blobs().await)
    } else {
        Arc::new(FsBlobStore::new(std::env::temp_dir().join(format!("colloquy-test-blobs-{}", Uuid::new_v4()))))
    }
}

fn new_uuid() -> Uuid {
    TimeOrderedIds.new_id()
}

impl TestApp {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Creates an app (and its first key) as `colloquy app create` does.
    pub async fn create_app(&self, mode: AppMode, config: AppConfig) -> TestKey {
        let (app, key) =
            admin::create_app(self.store.as_ref(), self.clock.as_ref(), &TimeOrderedIds, "Test app", mode, config)
                .await
                .expect("create app");
        TestKey { app, key: key.expose().to_owned() }
    }

    pub async fn chat_app(&self) -> TestKey {
        self.create_app(AppMode::Chat, AppConfig::default()).await
    }

    /// An operator key of `app`'s app, as `colloquy key create --role operator` makes it.
    pub async fn operator_key(&self, app: &TestKey) -> TestKey {
        let key =
            admin::create_key(self.store.as_ref(), self.clock.as_ref(), &TimeOrderedIds, app.app.id, KeyRole::Operator)
                .await
                .expect("create operator key");
        TestKey { app: app.app.clone(), key: key.expose().to_owned() }
    }

    /// The end user of `user`, created as the service creates it (with its derived id).
    pub async fn end_user(&self, app: &TestKey, user: &str) -> EndUser {
        let id = EndUserId::derived(app.app.id, &UserRef::parse(user).unwrap());
        self.end_user_with_id(app, user, id).await
    }

    /// The end user of `user` as end users were created before ids were derived: with a
    /// random id.
    pub async fn legacy_end_user(&self, app: &TestKey, user: &str) -> EndUser {
        self.end_user_with_id(app, user, EndUserId::from_uuid(new_uuid())).await
    }

    async fn end_user_with_id(&self, app: &TestKey, user: &str, id: EndUserId) -> EndUser {
        let fresh =
            EndUser { id, app_id: app.app.id, session_id: UserRef::parse(user).unwrap(), created_at: self.now() };
        self.store.end_user(app.app.id, &UserRef::parse(user).unwrap(), fresh).await.expect("end user")
    }

    /// A conversation of `user` created at `at` (seconds) with the given micro offset.
    pub async fn seed_conversation_at(&self, app: &TestKey, user: &str, name: &str, at: Timestamp) -> Conversation {
        let owner = self.end_user(app, user).await.owner();
        let conversation = Conversation {
            id: ConversationId::from_uuid(new_uuid()),
            owner,
            name: name.to_owned(),
            inputs: Map::new(),
            status: colloquy_core::domain::ConversationStatus::Normal,
            introduction: String::new(),
            created_at: at,
            updated_at: at,
            expires_at: None,
            state: Default::default(),
        };
        self.store
            .insert_conversation(&conversation, &UserRef::parse(user).unwrap())
            .await
            .expect("insert conversation");
        conversation
    }

    pub async fn seed_conversation(&self, app: &TestKey, user: &str, name: &str) -> Conversation {
        self.seed_conversation_at(app, user, name, self.now()).await
    }

    /// A finished message of `conversation` at `at`, replying (as a chat does) to the message
    /// before it.
    pub async fn seed_message_at(&self, conversation: &Conversation, query: &str, at: Timestamp) -> Message {
        let id = MessageId::from_uuid(new_uuid());
        // The newest seeded before it when seeds come in order (most tests), else read.
        let last = self.seeded.lock().unwrap().get(&conversation.id).copied();
        let parent = match last {
            Some((last_at, last_id)) if last_at <= at => Some(last_id),
            _ => {
                let before = colloquy_core::domain::Cursor { at, id };
                let found = self.store.messages_before(conversation.id, Some(before), 1).await.expect("read history");
                found.first().map(|m| m.id)
            }
        };
        let message = Message {
            id,
            conversation_id: conversation.id,
            owner: conversation.owner,
            parent_message_id: parent,
            inputs: Map::new(),
            query: query.to_owned(),
            answer: format!("answer to {query}"),
            message_files: Vec::new(),
            retriever_resources: Vec::new(),
            agent_thoughts: Vec::new(),
            status: colloquy_core::domain::MessageStatus::Normal,
            error: None,
            metadata: colloquy_core::domain::OpaqueJson::empty_object(),
            created_at: at,
            task_id: None,
        };
        assert!(self.store.insert_message(&message).await.expect("insert message"), "the conversation exists");
        let mut seeded = self.seeded.lock().unwrap();
        let newest = seeded.entry(conversation.id).or_insert((at, id));
        if (at, id) > *newest {
            *newest = (at, id);
        }
        message
    }

    /// The rating of `message` by its conversation's end user, stored as the feedback route stores it.
    pub async fn seed_rating(&self, message: &Message, rating: Rating) -> Feedback {
        let feedback = Feedback {
            id: FeedbackId::from_uuid(new_uuid()),
            app_id: message.owner.app_id,
            conversation_id: message.conversation_id,
            message_id: message.id,
            rating,
            content: None,
            source: FeedbackSource::User,
            from_end_user_id: Some(message.owner.end_user_id),
            created_at: self.now(),
            updated_at: self.now(),
        };
        let previous =
            self.store.user_feedback(message.owner, message.id).await.expect("read feedback").map(|f| f.rating);
        let saved = self.store.save_feedback(&feedback, previous, message).await.expect("save feedback");
        assert!(saved, "a live conversation");
        feedback
    }

    pub async fn seed_message(&self, conversation: &Conversation, query: &str) -> Message {
        self.seed_message_at(conversation, query, self.now()).await
    }

    pub async fn seed_variable(
        &self,
        conversation: &Conversation,
        name: &str,
        value_type: ValueType,
        value: Value,
    ) -> ConversationVariable {
        let variable = ConversationVariable {
            id: VariableId::from_uuid(new_uuid()),
            app_id: conversation.owner.app_id,
            conversation_id: conversation.id,
            name: name.to_owned(),
            value_type,
            value,
            description: format!("{name} of the conversation"),
            created_at: self.now(),
            updated_at: self.now(),
        };
        self.store.insert_variable(&variable).await.expect("insert variable");
        variable
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, key: &TestKey, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&key.key)
    }

    pub fn post(&self, key: &TestKey, path: &str, body: Value) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&key.key).json(&body)
    }

    pub fn put(&self, key: &TestKey, path: &str, body: Value) -> RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(&key.key).json(&body)
    }

    pub fn delete(&self, key: &TestKey, path: &str, body: Value) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(&key.key).json(&body)
    }
}

/// Sends a request and returns the status and the JSON body (`Null` when empty).
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request reaches the server");
    read(response).await
}

pub async fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("JSON body, got {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// Asserts a Dify error body.
#[track_caller]
pub fn assert_error(actual: &(u16, Value), status: u16, code: &str) {
    assert_eq!(actual.0, status, "status of {}", actual.1);
    assert_eq!(actual.1["code"], code, "code of {}", actual.1);
    assert_eq!(actual.1["status"], status, "status field of {}", actual.1);
    assert!(actual.1["message"].is_string(), "message of {}", actual.1);
}

/// A UUID no object has.
pub fn unknown_id() -> String {
    Uuid::new_v4().to_string()
}

/// One parsed server-sent event: its `event:` field and its `data:` as JSON (Null if none).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Option<String>,
    pub data: Value,
}

/// Reads a `text/event-stream` response with a real SSE parser until it ends.
pub async fn read_events(response: Response) -> Vec<Event> {
    use futures_util::StreamExt;
    let mut stream = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.expect("a well-formed event");
        let data = event.data.as_deref().map(|d| serde_json::from_str(d).expect("JSON data")).unwrap_or(Value::Null);
        events.push(Event { kind: event.event, data });
    }
    events
}
