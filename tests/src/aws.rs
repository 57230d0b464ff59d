//! The AWS adapters against the local emulators (DynamoDB Local and moto), which
//! `scripts/test.sh` starts. Without them these helpers fail loudly: the suites that need
//! them are never skipped in silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use colloquy_aws::aws_clients;
use colloquy_aws::dynamo::DynamoStore;
use colloquy_aws::s3::S3Blobs;
use tokio::sync::OnceCell;

/// The endpoint of an emulator, or a panic that says how to start it.
pub fn emulator(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run the tests with ./scripts/test.sh, which starts DynamoDB Local and moto")
    })
}

static TABLE: OnceCell<String> = OnceCell::const_new();
static BUCKET: OnceCell<String> = OnceCell::const_new();

async fn shared_config() -> aws_config::SdkConfig {
    emulator("AWS_ENDPOINT_URL_DYNAMODB");
    emulator("AWS_ENDPOINT_URL");
    aws_config::load_from_env().await
}

/// Counts every request a client sends (retries included), the serial round trips they make
/// and the capacity DynamoDB says they consumed, and can fail chosen ones.
#[derive(Debug, Default)]
pub struct RequestCounter {
    pub sent: AtomicUsize,
    /// Fail every n-th request (0: never).
    pub fail_every: AtomicUsize,
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    /// Requests sent while none was in flight: each starts a round trip that others sent
    /// before its answer share, so this is the number of serial round trips.
    rounds: AtomicUsize,
    /// Read and write capacity units consumed, in thousandths.
    read_milli_units: AtomicUsize,
    write_milli_units: AtomicUsize,
}

/// What a request has cost so far: requests, serial round trips, read and write units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub requests: usize,
    pub rounds: usize,
    pub read_units: f64,
    pub write_units: f64,
}

impl std::ops::Sub for Cost {
    type Output = Cost;
    fn sub(self, before: Cost) -> Cost {
        Cost {
            requests: self.requests - before.requests,
            rounds: self.rounds - before.rounds,
            read_units: self.read_units - before.read_units,
            write_units: self.write_units - before.write_units,
        }
    }
}

#[derive(Debug, Clone)]
struct Counting(Arc<RequestCounter>);

/// Marks an attempt that was sent (and is in flight until its answer).
#[derive(Debug, Clone)]
struct Sent;

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// Asks each operation that can report it for its consumed capacity (`TOTAL`).
fn ask_for_capacity(input: &mut Input) {
    macro_rules! total {
        ($($input:ty),*) => {
            $(if let Some(input) = input.downcast_mut::<$input>() {
                input.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
            })*
        };
    }
    total!(
        GetItemInput,
        QueryInput,
        BatchGetItemInput,
        TransactGetItemsInput,
        PutItemInput,
        UpdateItemInput,
        DeleteItemInput,
        BatchWriteItemInput,
        TransactWriteItemsInput
    );
}

/// The capacity an answer reports: (read units, write units).
fn consumed(output: &Output) -> (f64, f64) {
    fn sum(all: &[ConsumedCapacity]) -> f64 {
        all.iter().filter_map(ConsumedCapacity::capacity_units).sum()
    }
    macro_rules! one {
        ($($output:ty => $read:expr),*) => {
            $(if let Some(output) = output.downcast_ref::<$output>() {
                let units = output.consumed_capacity.as_ref().and_then(ConsumedCapacity::capacity_units).unwrap_or(0.0);
                return if $read { (units, 0.0) } else { (0.0, units) };
            })*
        };
    }
    macro_rules! many {
        ($($output:ty => $read:expr),*) => {
            $(if let Some(output) = output.downcast_ref::<$output>() {
                let units = sum(output.consumed_capacity.as_deref().unwrap_or_default());
                return if $read { (units, 0.0) } else { (0.0, units) };
            })*
        };
    }
    one!(GetItemOutput => true, QueryOutput => true, PutItemOutput => false, UpdateItemOutput => false, DeleteItemOutput => false);
    many!(BatchGetItemOutput => true, TransactGetItemsOutput => true, BatchWriteItemOutput => false, TransactWriteItemsOutput => false);
    (0.0, 0.0)
}

fn milli(units: f64) -> usize {
    (units * 1000.0).round() as usize
}

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask_for_capacity(context.input_mut());
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let sent = self.0.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.0.fail_every.load(Ordering::SeqCst);
        if every > 0 && sent.is_multiple_of(every) {
            return Err("injected failure".into());
        }
        if self.0.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.0.rounds.fetch_add(1, Ordering::SeqCst);
        }
        cfg.interceptor_state().store_put(Sent);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = context.output_or_error() {
            let (read, write) = consumed(output);
            self.0.read_milli_units.fetch_add(milli(read), Ordering::SeqCst);
            self.0.write_milli_units.fetch_add(milli(write), Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Sent>().is_some() {
            cfg.interceptor_state().unset::<Sent>();
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl RequestCounter {
    pub fn count(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Everything counted so far.
    pub fn cost(&self) -> Cost {
        Cost {
            requests: self.count(),
            rounds: self.rounds.load(Ordering::SeqCst),
            read_units: self.read_milli_units.load(Ordering::SeqCst) as f64 / 1000.0,
            write_units: self.write_milli_units.load(Ordering::SeqCst) as f64 / 1000.0,
        }
    }
}

/// A DynamoDB client on the emulator that tries every request once (so requests can be
/// counted and failures injected exactly); with a counter when given one.
pub async fn dynamo_client(counter: Option<Arc<RequestCounter>>) -> aws_sdk_dynamodb::Client {
    let config = shared_config().await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(1));
    if let Some(counter) = counter {
        builder = builder.interceptor(Counting(counter));
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// The test table, created once per test process.
pub async fn table_name() -> String {
    TABLE
        .get_or_init(|| async {
            let name = format!("colloquy-test-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
            let store = DynamoStore::new(dynamo_client(None).await, name.clone());
            assert!(store.create_table().await.expect("create the test table"), "a fresh table");
            name
        })
        .await
        .clone()
}

/// The DynamoDB store on the shared test table, with the client the service builds (its
/// retries) but no timeouts: once the 10,000-message purge test has run in it, DynamoDB
/// Local takes ~100 ms per write to a stream-enabled table and queues concurrent ones for
/// seconds, which says nothing about the service.
pub async fn dynamo_store() -> DynamoStore {
    let config = aws_clients::dynamodb_config(&shared_config().await)
        .timeout_config(aws_sdk_dynamodb::config::timeout::TimeoutConfig::disabled());
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config.build()), table_name().await)
}

/// The DynamoDB store on the shared test table exactly as the service builds it (retries and
/// timeouts), reached at `endpoint` (a fault-injecting proxy in front of the emulator).
pub async fn dynamo_store_at(endpoint: &str) -> DynamoStore {
    let client = aws_clients::dynamodb_config(&shared_config().await).endpoint_url(endpoint).build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(client), table_name().await)
}

/// The S3 blob store on the test bucket as the service builds it, reached at `endpoint`.
pub async fn s3_blobs_at(endpoint: &str) -> S3Blobs {
    let bucket = bucket_name().await;
    let client = aws_clients::s3_config(&shared_config().await, true).endpoint_url(endpoint).build();
    S3Blobs::new(aws_sdk_s3::Client::from_conf(client), bucket)
}

/// The DynamoDB store on the shared test table, counting (and maybe failing) its requests.
pub async fn counted_dynamo_store() -> (DynamoStore, Arc<RequestCounter>) {
    let counter = Arc::new(RequestCounter::default());
    (DynamoStore::new(dynamo_client(Some(counter.clone())).await, table_name().await), counter)
}

/// The test bucket's name (created on first use).
pub async fn bucket_name() -> String {
    s3_blobs().await.bucket().to_owned()
}

/// An S3 client on moto as the service builds it (path-style addressing).
pub async fn s3_client() -> aws_sdk_s3::Client {
    aws_clients::s3(&shared_config().await, true)
}

/// The S3 blob store on a test bucket in moto, created once per test process.
pub async fn s3_blobs() -> S3Blobs {
    let client = s3_client().await;
    let bucket = BUCKET
        .get_or_init(|| async {
            let name = format!("colloquy-test-{}", uuid::Uuid::new_v4().simple());
            let blobs = S3Blobs::new(client.clone(), name.clone());
            assert!(blobs.create_bucket().await.expect("create the test bucket"));
            name
        })
        .await
        .clone();
    S3Blobs::new(client, bucket)
}

/// A Polly client on moto.
pub async fn polly_client() -> aws_sdk_polly::Client {
    aws_clients::polly(&shared_config().await)
}

/// A Transcribe client on moto.
pub async fn transcribe_client() -> aws_sdk_transcribe::Client {
    aws_clients::transcribe(&shared_config().await)
}

/// Stands in for Transcribe's recognition, which moto does not do: writes `text` as the
/// transcript of every job that appears, where the adapter reads it
/// ([`colloquy_aws::transcribe::transcript_key`]). Stops when the returned guard drops.
pub async fn stand_in_transcripts(text: &'static str) -> StandIn {
    use colloquy_core::ports::BlobStore;
    let client = transcribe_client().await;
    let blobs = s3_blobs().await;
    StandIn(tokio::spawn(async move {
        let mut done = std::collections::HashSet::new();
        loop {
            if let Ok(list) = client.list_transcription_jobs().send().await {
                for job in list.transcription_job_summaries() {
                    let Some(name) = job.transcription_job_name() else { continue };
                    if done.insert(name.to_owned()) {
                        let transcript = serde_json::json!({
                            "jobName": name, "status": "COMPLETED",
                            "results": {"transcripts": [{"transcript": text}], "items": []},
                        });
                        let key = colloquy_aws::transcribe::transcript_key(name);
                        let bytes = bytes::Bytes::from(transcript.to_string());
                        blobs.put_blob(&key, "application/json", bytes).await.expect("place a transcript");
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }))
}

/// A running stand-in for Transcribe; dropping it stops it.
pub struct StandIn(tokio::task::JoinHandle<()>);

impl Drop for StandIn {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The environment a function binary gets under the in-test Runtime API: the test table and
/// bucket, the echo model, and the audio engines as the template sets them (other functions
/// ignore those). Transcribe is polled fast: moto advances a job one state per status call.
pub async fn function_env() -> Vec<(&'static str, String)> {
    vec![
        ("COLLOQUY_TABLE", table_name().await),
        ("COLLOQUY_BUCKET", bucket_name().await),
        ("COLLOQUY_S3_PATH_STYLE", "true".into()),
        ("COLLOQUY_LLM", "echo".into()),
        ("COLLOQUY_ECHO_DELAY_MS", "0".into()),
        ("COLLOQUY_TTS", "polly".into()),
        ("COLLOQUY_STT", "transcribe".into()),
        ("COLLOQUY_TRANSCRIBE_POLL_MS", "20".into()),
    ]
}
