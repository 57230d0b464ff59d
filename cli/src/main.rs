//! `colloquy`: manage apps and keys, and serve the Dify-compatible API locally.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use colloquy::config::{ServeSettings, StoreKind, StoreSettings};
use colloquy::server;
use serde_json::json;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::fs_blobs::FsBlobStore;
use shared::adapters::s3::S3Blobs;
use shared::adapters::sqlite::SqliteStore;
use shared::adapters::system::{SystemClock, TimeOrderedIds};
use shared::admin;
use shared::api::{ApiLimits, Cors, Services};
use shared::config::{AwsSpeech, ModelSettings, SpeechSettings};
use shared::domain::{AppConfig, AppId, AppMode};
use shared::ports::{BlobStore, Clock, Store};

#[derive(Parser)]
#[command(name = "colloquy", version, about = "A Dify-compatible conversation and message service")]
struct Cli {
    #[command(flatten)]
    store: StoreSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage apps.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Serve the whole /v1 API.
    Serve(ServeSettings),
    /// AWS resources.
    #[command(subcommand)]
    Aws(AwsCommand),
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the DynamoDB table and the S3 bucket as template.yaml defines them (safe to rerun).
    Init,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an app and its first API key.
    Create {
        #[arg(long)]
        name: String,
        /// chat, agent-chat, advanced-chat, completion or workflow.
        #[arg(long, default_value = "chat", value_parser = parse_mode)]
        mode: AppMode,
        /// A JSON file shaped like Dify's /v1/parameters, plus site and limit fields.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print {"app_id": ..., "api_key": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Replace an app's configuration.
    Update {
        #[arg(long = "app")]
        app: AppId,
        #[arg(long)]
        config: PathBuf,
    },
    /// List apps.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Add an API key to an app; the key is shown once.
    Create {
        #[arg(long = "app")]
        app: AppId,
    },
    /// Revoke an API key.
    Revoke { key: String },
}

fn parse_mode(raw: &str) -> Result<AppMode, String> {
    AppMode::parse(raw).map_err(|e| e.0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COLLOQUY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the configured store.
async fn open_store(settings: &StoreSettings) -> Result<Arc<dyn Store>, String> {
    match settings.store {
        StoreKind::Sqlite => {
            std::fs::create_dir_all(&settings.data_dir)
                .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
            Ok(Arc::new(SqliteStore::open(&settings.database_path()).map_err(|e| e.to_string())?))
        }
        StoreKind::Dynamodb => Ok(Arc::new(DynamoStore::from_env(settings.table.clone()).await)),
    }
}

async fn aws_init(settings: &StoreSettings) -> Result<(), String> {
    let table = DynamoStore::from_env(settings.table.clone()).await;
    let created = table.create_table().await.map_err(|e| e.to_string())?;
    println!("table {}: {}", table.table(), if created { "created" } else { "exists" });
    let bucket = S3Blobs::from_env(settings.bucket.clone(), settings.s3_path_style()).await;
    let created = bucket.create_bucket().await.map_err(|e| e.to_string())?;
    println!("bucket {}: {}", bucket.bucket(), if created { "created" } else { "exists" });
    Ok(())
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Aws(AwsCommand::Init) => aws_init(&cli.store).await,
        Command::Serve(settings) => serve(open_store(&cli.store).await?, &cli.store, settings).await,
        command => manage(command, open_store(&cli.store).await?.as_ref()).await,
    }
}

/// The app and key commands, on an open store.
async fn manage(command: Command, store: &dyn Store) -> Result<(), String> {
    let (clock, ids) = (SystemClock, TimeOrderedIds);
    match command {
        Command::App(AppCommand::Create { name, mode, config, json }) => {
            let config = read_config(config.as_deref())?;
            let (app, key) =
                admin::create_app(store, &clock, &ids, &name, mode, config).await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", json!({"app_id": app.id, "api_key": key.expose()}));
            } else {
                println!("app_id:  {}\napi_key: {}", app.id, key.expose());
            }
        }
        Command::App(AppCommand::Update { app, config }) => {
            let config = read_config(Some(&config))?;
            let app = admin::update_config(store, app, config).await.map_err(|e| e.to_string())?;
            println!("updated app {} ({})", app.id, app.name);
        }
        Command::App(AppCommand::List { json }) => {
            let apps = store.apps().await.map_err(|e| e.to_string())?;
            if json {
                let list: Vec<_> =
                    apps.iter().map(|a| json!({"app_id": a.id, "name": a.name, "mode": a.mode})).collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for app in apps {
                    println!("{}  {:<13}  {}", app.id, app.mode.as_str(), app.name);
                }
            }
        }
        Command::Key(KeyCommand::Create { app }) => {
            let key = admin::create_key(store, &clock, app).await.map_err(|e| e.to_string())?;
            println!("{}", key.expose());
        }
        Command::Key(KeyCommand::Revoke { key }) => {
            admin::revoke_key(store, &key).await.map_err(|e| e.to_string())?;
            println!("revoked");
        }
        Command::Serve(_) | Command::Aws(_) => return Err("not an app or key command".into()),
    }
    Ok(())
}

fn read_config(path: Option<&Path>) -> Result<AppConfig, String> {
    let Some(path) = path else {
        return Ok(AppConfig::default());
    };
    let raw = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    AppConfig::from_json(&raw).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where uploaded files go (beside the database, or the S3 bucket), and the bucket when it is S3.
async fn open_blobs(settings: &StoreSettings) -> (Arc<dyn BlobStore>, Option<S3Blobs>) {
    match settings.store {
        StoreKind::Sqlite => (Arc::new(FsBlobStore::new(settings.data_dir.join("files"))), None),
        StoreKind::Dynamodb => {
            let s3 = S3Blobs::from_env(settings.bucket.clone(), settings.s3_path_style()).await;
            (Arc::new(s3.clone()), Some(s3))
        }
    }
}

/// The speech engines of `COLLOQUY_TTS` / `COLLOQUY_STT` (local ones when installed by default).
async fn open_speech(s3: Option<S3Blobs>) -> Result<shared::speech::Speech, String> {
    let settings = SpeechSettings::from_env()?;
    let aws = if settings.needs_aws() {
        Some(AwsSpeech { config: aws_config::load_from_env().await, blobs: s3 })
    } else {
        None
    };
    let speech = settings.build(aws.as_ref()).await?;
    let (tts, stt) = speech.describe();
    tracing::info!(
        text_to_speech = tts.unwrap_or("none (install espeak-ng, or set COLLOQUY_TTS)"),
        speech_to_text = stt.unwrap_or("none (pip install pocketsphinx, or set COLLOQUY_STT)"),
        "speech engines"
    );
    Ok(speech)
}

async fn serve(store: Arc<dyn Store>, store_settings: &StoreSettings, settings: ServeSettings) -> Result<(), String> {
    let (blobs, s3) = open_blobs(store_settings).await;
    // Generations that a crash interrupted end as failed, and their tasks are removed.
    let ended = store.end_abandoned(SystemClock.now()).await.map_err(|e| e.to_string())?;
    if ended > 0 {
        tracing::warn!(messages = ended, "marked answers interrupted by an earlier stop as failed");
    }
    if store.apps().await.map_err(|e| e.to_string())?.is_empty() {
        // The default app turns on what a first try wants to see: an opening and suggestions.
        let mut config =
            AppConfig { opening_statement: Some("Hello! How can I help you today?".into()), ..AppConfig::default() };
        config.suggested_questions_after_answer.enabled = true;
        config.speech_to_text.enabled = true;
        config.text_to_speech.enabled = true;
        let (app, key) =
            admin::create_app(store.as_ref(), &SystemClock, &TimeOrderedIds, "Default app", AppMode::Chat, config)
                .await
                .map_err(|e| e.to_string())?;
        println!("Created the default chat app {}.\nIts API key (shown once): {}", app.id, key.expose());
    }
    let models_settings = ModelSettings::from_env()?;
    let models = models_settings.build().await?;
    match models.default_provider() {
        "echo" => tracing::info!(
            "language model: the built-in `echo` provider (deterministic, no account needed; set COLLOQUY_LLM=openai or bedrock for a real model)"
        ),
        other => tracing::info!(provider = other, "language model"),
    }
    let services = Services {
        store,
        blobs,
        models,
        speech: open_speech(s3).await?,
        clock: Arc::new(SystemClock),
        ids: Arc::new(TimeOrderedIds),
        limits: ApiLimits { max_body_bytes: settings.max_body_bytes, max_upload_bytes: settings.max_upload_bytes },
        cors: Cors::parse(&settings.cors_origins).map_err(|e| format!("--cors-origins: {e}"))?,
    };
    let limits = settings.server_limits(server::raise_file_limit());
    let listener = server::bind(settings.addr).map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!(addr = %settings.addr, "serving the Dify-compatible API at http://{}/v1", settings.addr);
    tracing::info!(
        max_connections = limits.max_connections,
        max_in_flight = limits.max_in_flight,
        header_timeout_s = limits.header_timeout.as_secs(),
        body_timeout_s = limits.body_timeout.as_secs(),
        idle_timeout_s = limits.idle_timeout.as_secs(),
        "limits"
    );
    server::serve_with(listener, services, limits, server::shutdown_signal()).await.map_err(|e| e.to_string())
}
