//! Every setting of Colloquy, read once through one reader.
//!
//! [`VARS`] names each setting, its command-line flag (when it has one), its one default and
//! what it does; [`Settings::read`] is the only code that reads them. The `colloquy` program
//! passes its flags over the environment, a Lambda function passes the environment alone.
//! README's configuration table is checked against [`VARS`] by a test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::{ApiLimits, Cors};

mod vars;
use vars::PLATFORM_VARS;
pub use vars::{FlagScope, OPENAI_VOICES, VARS, Var};

/// A value that must not reach a log: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which program reads the settings (some defaults differ by where the code runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The `colloquy` command-line program and its local server.
    Cli,
    /// A Lambda function: table and bucket are required, local speech engines do not exist.
    Lambda,
}

/// Which store holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Dynamodb,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub kind: StoreKind,
    pub data_dir: PathBuf,
    pub table: String,
    pub bucket: String,
    /// Path-style S3 addressing (one rule for every program).
    pub s3_path_style: bool,
    /// `SSL_CERT_FILE`: the only roots AWS connections trust when set (else compiled-in ones).
    pub cert_file: Option<PathBuf>,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are both set, as Lambda always sets
    /// them: the credentials are the environment's, the first source the SDK's default chain
    /// would take them from, so that chain (and the STS, SSO and metadata clients it builds
    /// at start) is not needed.
    pub env_credentials: bool,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`) is set, as Lambda always sets it: the region is
    /// the environment's, the first source the SDK's default region chain would read, so that
    /// chain (a profile and an instance metadata client, built at start) is not needed.
    pub env_region: bool,
}

impl StoreSettings {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("colloquy.db")
    }

    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }
}

/// The local server's connection handling.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_in_flight: usize,
    /// How often expired conversations and files are removed; `None`: never.
    pub sweep_interval: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// A `tracing` filter directive.
    pub filter: String,
    pub format: LogFormat,
}

/// An OpenAI-compatible chat and embeddings API.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// Base URL including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub embedding_model: String,
}

#[derive(Debug, Clone)]
pub struct BedrockSettings {
    pub model: String,
    pub embedding_model: String,
}

/// Which providers to set up and how.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// The default provider (`echo`, `openai` or `bedrock`).
    pub default: &'static str,
    pub echo_delay: Duration,
    /// Set when `COLLOQUY_LLM=openai` or any `COLLOQUY_OPENAI_*` model variable is given.
    pub openai: Option<OpenAiSettings>,
    /// Set when `COLLOQUY_LLM=bedrock` or `COLLOQUY_BEDROCK_MODEL` is given.
    pub bedrock: Option<BedrockSettings>,
}

/// Which text-to-speech engine to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtsChoice {
    /// Unset: espeak-ng when it is installed (the local default).
    Auto,
    Polly {
        engine: String,
    },
    OpenAi,
    Espeak,
    None,
}

/// Which speech-to-text engine to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SttChoice {
    /// Unset: PocketSphinx when one of the Pythons can import it (the local default).
    Auto,
    Transcribe {
        language: Option<String>,
        polling: TranscribePolling,
    },
    OpenAi,
    PocketSphinx,
    None,
}

/// How Transcribe jobs are waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscribePolling {
    pub deadline: Duration,
    pub first_interval: Duration,
}

/// An OpenAI-compatible speech API.
#[derive(Debug, Clone)]
pub struct OpenAiSpeechSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub tts_model: String,
    pub stt_model: String,
    pub voices: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SpeechSettings {
    pub tts: TtsChoice,
    pub stt: SttChoice,
    /// Set when either direction uses an OpenAI-compatible API.
    pub openai: Option<OpenAiSpeechSettings>,
    /// The Pythons to try for PocketSphinx, in order.
    pub pythons: Vec<PathBuf>,
}

impl SpeechSettings {
    /// Whether an AWS engine (Polly, Transcribe) is chosen.
    pub fn needs_aws(&self) -> bool {
        matches!(self.tts, TtsChoice::Polly { .. }) || matches!(self.stt, SttChoice::Transcribe { .. })
    }
}

/// Every setting, typed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreSettings,
    pub limits: ApiLimits,
    pub cors: Cors,
    /// How long the app behind a key may be served from memory (at most 10 s).
    pub key_cache: Duration,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub models: ModelSettings,
    pub speech: SpeechSettings,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Settings::defaults().limits
    }
}

/// Values looked up by name, trimmed; empty counts as unset.
struct Source<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Source<F> {
    fn raw(&self, name: &str) -> Option<String> {
        debug_assert!(
            VARS.iter().any(|v| v.name == name) || PLATFORM_VARS.contains(&name),
            "{name} is not a documented setting"
        );
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn given(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// The value, or its default from [`VARS`].
    fn text(&self, name: &str) -> Option<String> {
        self.raw(name).or_else(|| default_of(name).map(str::to_owned))
    }

    fn required(&self, name: &str) -> Result<String, String> {
        self.text(name).ok_or_else(|| format!("{name} is not set"))
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let raw = self.required(name)?;
        raw.parse().map_err(|_| format!("{}: '{raw}' is not valid", label(name)))
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        let raw = self.required(name)?;
        raw.parse().map_err(|_| format!("{}: '{raw}' is not a number", label(name)))
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.raw(name).as_deref() {
            None => Ok(None),
            Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
            Some("false" | "0" | "no" | "off") => Ok(Some(false)),
            Some(other) => Err(format!("{name}: '{other}' is not true or false")),
        }
    }
}

/// A setting's name as a user may have given it: the variable, and its flag when it has one.
fn label(name: &str) -> String {
    match VARS.iter().find(|v| v.name == name).and_then(|v| v.flag) {
        Some(flag) => format!("{name} (--{flag})"),
        None => name.to_owned(),
    }
}

fn default_of(name: &str) -> Option<&'static str> {
    VARS.iter().find(|v| v.name == name).and_then(|v| v.default)
}

impl Settings {
    /// Reads every setting through `lookup` (the environment, with the CLI's flags over it).
    pub fn read(program: Program, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let source = Source { lookup };
        let store = read_store(program, &source)?;
        let limits = ApiLimits {
            max_body_bytes: source.parsed("COLLOQUY_MAX_BODY_BYTES")?,
            max_upload_bytes: source.parsed("COLLOQUY_MAX_UPLOAD_BYTES")?,
        };
        let cors = Cors::parse(&source.text("COLLOQUY_CORS_ORIGINS").unwrap_or_default())
            .map_err(|e| format!("COLLOQUY_CORS_ORIGINS: {e}"))?;
        let seconds = |name| source.number(name).map(|s| Duration::from_secs(s.max(1)));
        let server = ServerSettings {
            addr: source.parsed("COLLOQUY_ADDR")?,
            header_timeout: seconds("COLLOQUY_HEADER_TIMEOUT_SECS")?,
            body_timeout: seconds("COLLOQUY_BODY_TIMEOUT_SECS")?,
            idle_timeout: seconds("COLLOQUY_IDLE_TIMEOUT_SECS")?,
            max_connections: source.parsed::<usize>("COLLOQUY_MAX_CONNECTIONS")?.max(1),
            max_in_flight: source.parsed::<usize>("COLLOQUY_MAX_IN_FLIGHT")?.max(1),
            sweep_interval: match source.number("COLLOQUY_SWEEP_INTERVAL_SECS")? {
                0 => None,
                seconds => Some(Duration::from_secs(seconds)),
            },
        };
        let key_cache = match (program, source.raw("COLLOQUY_KEY_CACHE_SECONDS")) {
            // Every Lambda request would otherwise read the key and the app first.
            (Program::Lambda, None) => crate::api::key_cache::MAX_TTL,
            _ => Duration::from_secs(source.number("COLLOQUY_KEY_CACHE_SECONDS")?),
        };
        if key_cache > crate::api::key_cache::MAX_TTL {
            return Err(format!("COLLOQUY_KEY_CACHE_SECONDS: at most {}", crate::api::key_cache::MAX_TTL.as_secs()));
        }
        let log = read_log(program, &source)?;
        let models = read_models(&source)?;
        let speech = read_speech(program, &source)?;
        Ok(Self { store, limits, cors, key_cache, server, log, models, speech })
    }

    /// Reads the process environment.
    pub fn from_env(program: Program) -> Result<Self, String> {
        Self::read(program, |name| std::env::var(name).ok())
    }

    /// Every default (what a program started with no settings uses).
    pub fn defaults() -> Self {
        Self::read(Program::Cli, |_| None).expect("the defaults in VARS are valid")
    }
}

fn read_store<F: Fn(&str) -> Option<String>>(program: Program, source: &Source<F>) -> Result<StoreSettings, String> {
    let kind = match source.required("COLLOQUY_STORE")?.as_str() {
        "sqlite" => StoreKind::Sqlite,
        "dynamodb" => StoreKind::Dynamodb,
        other => return Err(format!("COLLOQUY_STORE must be sqlite or dynamodb; got '{other}'")),
    };
    let on_lambda = |name: &str| -> Result<String, String> {
        match program {
            // A function without its table or bucket is a deployment mistake, not a default.
            Program::Lambda => source.raw(name).ok_or_else(|| format!("{name} is not set")),
            Program::Cli => source.required(name),
        }
    };
    let endpoint_override = source.given("AWS_ENDPOINT_URL") || source.given("AWS_ENDPOINT_URL_S3");
    Ok(StoreSettings {
        kind: if program == Program::Lambda { StoreKind::Dynamodb } else { kind },
        data_dir: PathBuf::from(source.required("COLLOQUY_DATA_DIR")?),
        table: on_lambda("COLLOQUY_TABLE")?,
        bucket: on_lambda("COLLOQUY_BUCKET")?,
        s3_path_style: source.flag("COLLOQUY_S3_PATH_STYLE")?.unwrap_or(endpoint_override),
        cert_file: source.raw("SSL_CERT_FILE").map(PathBuf::from),
        env_credentials: source.given("AWS_ACCESS_KEY_ID") && source.given("AWS_SECRET_ACCESS_KEY"),
        env_region: source.given("AWS_REGION") || source.given("AWS_DEFAULT_REGION"),
    })
}

fn read_log<F: Fn(&str) -> Option<String>>(program: Program, source: &Source<F>) -> Result<LogSettings, String> {
    let lambda_json = program == Program::Lambda
        && source.raw("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let format = match source.raw("COLLOQUY_LOG_FORMAT").as_deref() {
        None if lambda_json => LogFormat::Json,
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => return Err(format!("COLLOQUY_LOG_FORMAT must be text or json; got '{other}'")),
    };
    Ok(LogSettings { filter: source.required("COLLOQUY_LOG")?, format })
}

fn read_models<F: Fn(&str) -> Option<String>>(source: &Source<F>) -> Result<ModelSettings, String> {
    let chosen = source.required("COLLOQUY_LLM")?;
    let Some(default) = crate::domain::PROVIDERS.into_iter().find(|p| *p == chosen) else {
        return Err(format!("COLLOQUY_LLM must be echo, openai or bedrock; got '{chosen}'"));
    };
    let echo_delay = Duration::from_millis(source.number("COLLOQUY_ECHO_DELAY_MS")?);
    let openai_wanted = default == "openai"
        || ["COLLOQUY_OPENAI_BASE_URL", "COLLOQUY_OPENAI_API_KEY", "COLLOQUY_OPENAI_MODEL"]
            .iter()
            .any(|n| source.given(n));
    let openai = if openai_wanted {
        Some(OpenAiSettings {
            base_url: source.required("COLLOQUY_OPENAI_BASE_URL")?,
            api_key: source.raw("COLLOQUY_OPENAI_API_KEY").map(Secret),
            model: source.required("COLLOQUY_OPENAI_MODEL")?,
            embedding_model: source.required("COLLOQUY_OPENAI_EMBEDDING_MODEL")?,
        })
    } else {
        None
    };
    let bedrock = if default == "bedrock" || source.given("COLLOQUY_BEDROCK_MODEL") {
        Some(BedrockSettings {
            model: source.required("COLLOQUY_BEDROCK_MODEL")?,
            embedding_model: source.required("COLLOQUY_BEDROCK_EMBEDDING_MODEL")?,
        })
    } else {
        None
    };
    Ok(ModelSettings { default, echo_delay, openai, bedrock })
}

fn read_speech<F: Fn(&str) -> Option<String>>(program: Program, source: &Source<F>) -> Result<SpeechSettings, String> {
    let tts = match source.raw("COLLOQUY_TTS").as_deref() {
        // Lambda's runtime has no local engines: unset means none there.
        None if program == Program::Lambda => TtsChoice::None,
        None => TtsChoice::Auto,
        Some("polly") => TtsChoice::Polly { engine: source.required("COLLOQUY_POLLY_ENGINE")? },
        Some("openai") => TtsChoice::OpenAi,
        Some("espeak") => TtsChoice::Espeak,
        Some("none") => TtsChoice::None,
        Some(other) => return Err(format!("COLLOQUY_TTS must be polly, openai, espeak or none; got '{other}'")),
    };
    let stt = match source.raw("COLLOQUY_STT").as_deref() {
        None if program == Program::Lambda => SttChoice::None,
        None => SttChoice::Auto,
        Some("transcribe") => SttChoice::Transcribe {
            language: source.raw("COLLOQUY_TRANSCRIBE_LANGUAGE"),
            polling: TranscribePolling {
                deadline: Duration::from_secs(source.number("COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS")?),
                first_interval: Duration::from_millis(source.number("COLLOQUY_TRANSCRIBE_POLL_MS")?),
            },
        },
        Some("openai") => SttChoice::OpenAi,
        Some("pocketsphinx") => SttChoice::PocketSphinx,
        Some("none") => SttChoice::None,
        Some(other) => {
            return Err(format!("COLLOQUY_STT must be transcribe, openai, pocketsphinx or none; got '{other}'"));
        }
    };
    let openai = if tts == TtsChoice::OpenAi || stt == SttChoice::OpenAi {
        Some(OpenAiSpeechSettings {
            base_url: match source.raw("COLLOQUY_OPENAI_SPEECH_BASE_URL") {
                Some(url) => url,
                None => source.required("COLLOQUY_OPENAI_BASE_URL")?,
            },
            api_key: source
                .raw("COLLOQUY_OPENAI_SPEECH_API_KEY")
                .or_else(|| source.raw("COLLOQUY_OPENAI_API_KEY"))
                .map(Secret),
            tts_model: source.required("COLLOQUY_OPENAI_TTS_MODEL")?,
            stt_model: source.required("COLLOQUY_OPENAI_STT_MODEL")?,
            voices: source.raw("COLLOQUY_OPENAI_TTS_VOICES").map_or_else(
                || OPENAI_VOICES.iter().map(|v| (*v).to_owned()).collect(),
                |list| list.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect(),
            ),
        })
    } else {
        None
    };
    Ok(SpeechSettings { tts, stt, openai, pythons: pythons(source) })
}

/// The Pythons to try for PocketSphinx: the configured one alone, else where
/// `scripts/speech-engines.sh` installs it, then `python3` from `PATH`.
fn pythons<F: Fn(&str) -> Option<String>>(source: &Source<F>) -> Vec<PathBuf> {
    if let Some(python) = source.raw("COLLOQUY_POCKETSPHINX_PYTHON") {
        return vec![PathBuf::from(python)];
    }
    let cache = source
        .raw("COLLOQUY_EMULATOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| source.raw("HOME").map(|home| PathBuf::from(home).join(".cache/colloquy-emulators")));
    cache.map(|dir| dir.join("speech/bin/python")).into_iter().chain([PathBuf::from("python3")]).collect()
}

#[cfg(test)]
mod tests;
