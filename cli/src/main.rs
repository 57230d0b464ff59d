//! `colloquy`: manage apps and keys, and serve the Dify-compatible API locally.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use colloquy::config::{settings, with_setting_flags};
use colloquy::server::{self, ServerLimits};
use colloquy_aws::Aws;
use colloquy_aws::s3::S3Blobs;
use colloquy_core::admin;
use colloquy_core::api::{JobRunner, KeyCache, Services};
use colloquy_core::domain::{AppConfig, AppId, AppMode, KeyRole, Timestamp};
use colloquy_core::ports::{BlobStore, Clock, SpeechSynthesizer, Store, Transcriber};
use colloquy_core::settings::{Settings, StoreKind, SttChoice, TtsChoice};
use colloquy_core::speech::Speech;
use colloquy_core::system::{SystemClock, TimeOrderedIds};
use colloquy_embedded::fs_blobs::FsBlobStore;
use colloquy_embedded::local_speech::{Espeak, PocketSphinx};
use colloquy_embedded::sqlite::SqliteStore;
use serde_json::json;

mod export;
mod inspect;

/// The store flags (`--store`, `--data-dir`, `--table`, `--bucket`) and the server's flags are
/// added from the settings table (`colloquy_core::settings::VARS`).
#[derive(Parser)]
#[command(name = "colloquy", version, about = "A Dify-compatible conversation and message service")]
struct Cli {
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
    Serve,
    /// Export an app's messages (every end user's) as JSON Lines or CSV, as `POST
    /// /v1/app/exports` does, to a file or standard output.
    Export {
        #[arg(long)]
        app: AppId,
        /// Messages created at or after this time (Unix seconds or RFC 3339).
        #[arg(long)]
        start: Option<String>,
        /// Messages created before this time (default and at most: now).
        #[arg(long)]
        end: Option<String>,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// The file to write (complete or not at all); standard output without it.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Count everything stored of an app, or of one of its end users (`--user`), kind by kind:
    /// rows or items (every item of the table is read, no index trusted) and blobs.
    Inspect {
        #[arg(long)]
        app: AppId,
        /// The end user's `user` string, as the app sends it.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove every conversation and file past its app's `retention` now (the server's sweeper
    /// does it every `--sweep-interval-secs`; on AWS DynamoDB's TTL does, and this Scans).
    Purge {
        /// What has expired (the only kind of purge there is; required, so that the command
        /// says what it removes).
        #[arg(long, required = true)]
        expired: bool,
        /// Count what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
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
        /// `app` (Dify's: acts for end users) or `operator` (reads every conversation of the
        /// app and its analytics; never acts as an end user).
        #[arg(long = "role", default_value = "app", value_parser = parse_role)]
        role: KeyRole,
    },
    /// List an app's keys: the start of each, its role, when it was created and last used.
    List {
        #[arg(long = "app")]
        app: AppId,
        /// Print one JSON object per key.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key.
    Revoke { key: String },
}

fn parse_role(raw: &str) -> Result<KeyRole, String> {
    KeyRole::parse(raw).map_err(|e| e.to_string())
}

fn parse_mode(raw: &str) -> Result<AppMode, String> {
    AppMode::parse(raw).map_err(|e| e.0)
}

fn main() -> ExitCode {
    let matches = with_setting_flags(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let settings = match settings(&matches) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = colloquy_core::logging::init(&settings.log) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The adapters the settings choose: this is where the program is composed.
struct Composition {
    settings: Settings,
    /// Loaded only when something on AWS is used.
    aws: Option<Aws>,
}

impl Composition {
    async fn new(settings: Settings) -> Result<Self, String> {
        let needs_aws = settings.store.kind == StoreKind::Dynamodb
            || settings.models.bedrock.is_some()
            || settings.speech.needs_aws();
        let aws = if needs_aws { Some(load_aws(&settings).await?) } else { None };
        Ok(Self { settings, aws })
    }

    fn aws(&self) -> Result<&Aws, String> {
        self.aws.as_ref().ok_or_else(|| "the AWS configuration is not loaded".to_owned())
    }

    /// Opens the configured store.
    fn store(&self) -> Result<Arc<dyn Store>, String> {
        let store = &self.settings.store;
        match store.kind {
            StoreKind::Sqlite => {
                std::fs::create_dir_all(&store.data_dir)
                    .map_err(|e| format!("cannot create {}: {e}", store.data_dir.display()))?;
                Ok(Arc::new(SqliteStore::open(&store.database_path()).map_err(|e| e.to_string())?))
            }
            StoreKind::Dynamodb => Ok(Arc::new(self.aws()?.store(store))),
        }
    }

    /// Where uploaded files go (beside the database, or the S3 bucket), and the bucket when it is S3.
    fn blobs(&self) -> Result<(Arc<dyn BlobStore>, Option<S3Blobs>), String> {
        let store = &self.settings.store;
        Ok(match store.kind {
            StoreKind::Sqlite => (Arc::new(FsBlobStore::new(store.files_dir())), None),
            StoreKind::Dynamodb => {
                let s3 = self.aws()?.blobs(store);
                (Arc::new(s3.clone()), Some(s3))
            }
        })
    }

    fn models(&self) -> Result<colloquy_core::models::Models, String> {
        let settings = &self.settings.models;
        let bedrock = match &settings.bedrock {
            Some(bedrock) => vec![self.aws()?.bedrock(bedrock)],
            None => Vec::new(),
        };
        let models = colloquy_providers::models(settings, bedrock)?;
        match models.default_provider() {
            "echo" => tracing::info!(
                "language model: the built-in `echo` provider (deterministic, no account needed; set COLLOQUY_LLM=openai or bedrock for a real model)"
            ),
            other => tracing::info!(provider = other, "language model"),
        }
        Ok(models)
    }

    /// The speech engines: the local ones when installed (unless told otherwise), Polly,
    /// Transcribe or an OpenAI-compatible API.
    async fn speech(&self, s3: Option<S3Blobs>) -> Result<Speech, String> {
        let speech = &self.settings.speech;
        let openai = || colloquy_providers::openai_speech(speech.openai.as_ref());
        let synthesizer: Option<Arc<dyn SpeechSynthesizer>> = match &speech.tts {
            TtsChoice::Auto => Espeak::find().map(|e| Arc::new(e) as _),
            TtsChoice::None => None,
            TtsChoice::Espeak => Some(Arc::new(Espeak::find().ok_or(
                "COLLOQUY_TTS=espeak, but espeak-ng is not installed (Debian: apt-get install espeak-ng lame)",
            )?)),
            TtsChoice::OpenAi => Some(openai()?),
            TtsChoice::Polly { engine } => Some(self.aws()?.polly(engine)),
        };
        let transcriber: Option<Arc<dyn Transcriber>> = match &speech.stt {
            SttChoice::Auto => PocketSphinx::find_any(&speech.pythons).await.map(|p| Arc::new(p) as _),
            SttChoice::None => None,
            SttChoice::PocketSphinx => Some(Arc::new(PocketSphinx::find_any(&speech.pythons).await.ok_or_else(
                || {
                    format!(
                        "COLLOQUY_STT=pocketsphinx, but none of {:?} can import pocketsphinx (run scripts/speech-engines.sh)",
                        speech.pythons
                    )
                },
            )?)),
            SttChoice::OpenAi => Some(openai()?),
            SttChoice::Transcribe { language, polling } => {
                let s3 = s3.ok_or("COLLOQUY_STT=transcribe needs the S3 bucket (use --store dynamodb)")?;
                Some(self.aws()?.transcribe(s3, language.clone(), *polling))
            }
        };
        let speech = Speech { synthesizer, transcriber };
        let (tts, stt) = speech.describe();
        tracing::info!(
            text_to_speech = tts.unwrap_or("none (install espeak-ng: scripts/speech-engines.sh, or set COLLOQUY_TTS)"),
            speech_to_text =
                stt.unwrap_or("none (install PocketSphinx: scripts/speech-engines.sh, or set COLLOQUY_STT)"),
            "speech engines"
        );
        Ok(speech)
    }
}

/// The AWS configuration; fails only on an unusable `SSL_CERT_FILE`.
async fn load_aws(settings: &Settings) -> Result<Aws, String> {
    Aws::load(&settings.store).await.map_err(|e| e.to_string())
}

async fn aws_init(composition: &Composition) -> Result<(), String> {
    let aws = match &composition.aws {
        Some(aws) => aws.clone(),
        None => load_aws(&composition.settings).await?,
    };
    let table = aws.store(&composition.settings.store);
    let created = table.create_table().await.map_err(|e| e.to_string())?;
    println!("table {}: {}", table.table(), if created { "created" } else { "exists" });
    let bucket = aws.blobs(&composition.settings.store);
    let created = bucket.create_bucket().await.map_err(|e| e.to_string())?;
    println!("bucket {}: {}", bucket.bucket(), if created { "created" } else { "exists" });
    bucket.apply_lifecycle().await.map_err(|e| e.to_string())?;
    println!("bucket {}: lifecycle rules set (scratch/ 1 day, exports/ 7 days)", bucket.bucket());
    Ok(())
}

async fn run(command: Command, settings: Settings) -> Result<(), String> {
    let composition = Composition::new(settings).await?;
    match command {
        Command::Aws(AwsCommand::Init) => aws_init(&composition).await,
        Command::Serve => serve(&composition).await,
        Command::Inspect { app, user, json } => {
            let (blobs, _) = composition.blobs()?;
            inspect::run(composition.store()?.as_ref(), blobs.as_ref(), app, user.as_deref(), json).await
        }
        Command::Export { app, start, end, format, output } => {
            let request = export::Request { app, start, end, format, output };
            export::run(composition.store()?, request).await
        }
        Command::Purge { expired: _, dry_run, json } => {
            let (store, (blobs, _)) = (composition.store()?, composition.blobs()?);
            let now = SystemClock.now();
            let summary = colloquy_core::retention::sweep_expired(store.as_ref(), blobs.as_ref(), now, dry_run)
                .await
                .map_err(|e| e.to_string())?;
            let verb = if dry_run { "would remove" } else { "removed" };
            if json {
                println!("{}", serde_json::json!({"dry_run": dry_run, "expired": summary}));
            } else {
                println!(
                    "{verb} {} expired conversations and {} expired files ({} bytes)",
                    summary.conversations, summary.files, summary.file_bytes
                );
            }
            Ok(())
        }
        command => manage(command, composition.store()?.as_ref()).await,
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
        Command::Key(KeyCommand::Create { app, role }) => {
            let key = admin::create_key(store, &clock, &ids, app, role).await.map_err(|e| e.to_string())?;
            println!("{}", key.expose());
        }
        Command::Key(KeyCommand::List { app, json }) => {
            let keys = admin::list_keys(store, app).await.map_err(|e| e.to_string())?;
            let time = |at: Option<Timestamp>| at.map(|at| format!("{}Z", at.iso_naive()));
            for key in keys {
                let shown = key.shown.unwrap_or_else(|| "(made before keys were listed)".into());
                let (created, used) = (time(Some(key.created_at)), time(key.last_used_at));
                if json {
                    let line =
                        json!({"key": shown, "role": key.role.as_str(), "created_at": created, "last_used_at": used});
                    println!("{line}");
                } else {
                    let used = used.unwrap_or_else(|| "never".into());
                    println!(
                        "{shown:<12} {:<8} created {} last used {used}",
                        key.role.as_str(),
                        created.unwrap_or_default()
                    );
                }
            }
        }
        Command::Key(KeyCommand::Revoke { key }) => {
            admin::revoke_key(store, &clock, &ids, &key).await.map_err(|e| e.to_string())?;
            println!("revoked");
        }
        Command::Serve | Command::Aws(_) | Command::Export { .. } | Command::Inspect { .. } | Command::Purge { .. } => {
            return Err("not an app or key command".into());
        }
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

async fn serve(composition: &Composition) -> Result<(), String> {
    let store = composition.store()?;
    let (blobs, s3) = composition.blobs()?;
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
    let settings = &composition.settings;
    if let Some(every) = settings.server.sweep_interval {
        let (store, blobs) = (store.clone(), blobs.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                match colloquy_core::retention::sweep_expired(store.as_ref(), blobs.as_ref(), SystemClock.now(), false)
                    .await
                {
                    Ok(removed) if removed.conversations + removed.files > 0 => tracing::info!(
                        conversations = removed.conversations,
                        files = removed.files,
                        "removed what expired"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "the retention sweep failed; it runs again at its next interval")
                    }
                }
            }
        });
    }
    let services = Services {
        store,
        blobs,
        models: composition.models()?,
        speech: composition.speech(s3).await?,
        clock: Arc::new(SystemClock),
        ids: Arc::new(TimeOrderedIds),
        limits: settings.limits,
        cors: settings.cors.clone(),
        keys: Arc::new(KeyCache::new(settings.key_cache)),
        jobs: JobRunner::InProcess,
    };
    let limits = ServerLimits::from_settings(&settings.server, server::raise_file_limit());
    let addr = settings.server.addr;
    let listener = server::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(addr = %addr, "serving the Dify-compatible API at http://{addr}/v1");
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
