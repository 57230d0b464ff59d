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

/// Which command-line flags carry a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagScope {
    /// Environment only.
    None,
    /// A flag of every `colloquy` command.
    Global,
    /// A flag of `colloquy serve`.
    Serve,
}

/// One setting: its environment variable, its flag, its default and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The long flag (without `--`) and where it is accepted.
    pub flag: Option<&'static str>,
    pub scope: FlagScope,
    /// The default as a user would write it; `None`: unset unless given.
    pub default: Option<&'static str>,
    pub about: &'static str,
}

const fn env(name: &'static str, default: Option<&'static str>, about: &'static str) -> Var {
    Var { name, flag: None, scope: FlagScope::None, default, about }
}

const fn flag(
    name: &'static str,
    flag: &'static str,
    scope: FlagScope,
    default: Option<&'static str>,
    about: &'static str,
) -> Var {
    Var { name, flag: Some(flag), scope, default, about }
}

/// Every `COLLOQUY_*` setting.
pub const VARS: &[Var] = &[
    // Where data lives.
    flag(
        "COLLOQUY_STORE",
        "store",
        FlagScope::Global,
        Some("sqlite"),
        "`sqlite` (embedded) or `dynamodb` (DynamoDB + S3, through the standard AWS environment)",
    ),
    flag(
        "COLLOQUY_DATA_DIR",
        "data-dir",
        FlagScope::Global,
        Some("./data"),
        "where the embedded database and files live",
    ),
    flag(
        "COLLOQUY_TABLE",
        "table",
        FlagScope::Global,
        Some("colloquy"),
        "the DynamoDB table, with `--store dynamodb` (required on Lambda)",
    ),
    flag(
        "COLLOQUY_BUCKET",
        "bucket",
        FlagScope::Global,
        Some("colloquy-files"),
        "the S3 bucket for files and audio, with `--store dynamodb` (required on Lambda)",
    ),
    env(
        "COLLOQUY_S3_PATH_STYLE",
        None,
        "path-style S3 addressing (`true`/`false`); unset: on when `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` is set (emulators, S3-compatible services)",
    ),
    // What the API accepts.
    flag("COLLOQUY_ADDR", "addr", FlagScope::Serve, Some("127.0.0.1:5001"), "listen address of `serve`"),
    flag(
        "COLLOQUY_MAX_BODY_BYTES",
        "max-body-bytes",
        FlagScope::Serve,
        Some("1048576"),
        "larger request bodies get 413",
    ),
    flag(
        "COLLOQUY_MAX_UPLOAD_BYTES",
        "max-upload-bytes",
        FlagScope::Serve,
        Some("104857600"),
        "largest multipart body (`/files/upload`, `/audio-to-text`; the per-kind and audio limits apply within it)",
    ),
    flag(
        "COLLOQUY_HEADER_TIMEOUT_SECS",
        "header-timeout-secs",
        FlagScope::Serve,
        Some("10"),
        "time a client has to send a request's headers; the connection is closed after it",
    ),
    flag(
        "COLLOQUY_BODY_TIMEOUT_SECS",
        "body-timeout-secs",
        FlagScope::Serve,
        Some("30"),
        "longest wait for the next piece of a request body; 408 `request_timeout` after it",
    ),
    flag(
        "COLLOQUY_IDLE_TIMEOUT_SECS",
        "idle-timeout-secs",
        FlagScope::Serve,
        Some("5"),
        "how long a keep-alive connection with nothing to do stays open",
    ),
    flag(
        "COLLOQUY_MAX_CONNECTIONS",
        "max-connections",
        FlagScope::Serve,
        Some("4096"),
        "open connections at most (kept 256 under the open-file limit, which `serve` raises to its hard limit); at the cap the oldest connection without a request in flight is closed to make room",
    ),
    flag(
        "COLLOQUY_MAX_IN_FLIGHT",
        "max-in-flight",
        FlagScope::Serve,
        Some("1024"),
        "requests in flight at most; beyond it 503 `service_unavailable` with `Retry-After: 1`",
    ),
    flag(
        "COLLOQUY_CORS_ORIGINS",
        "cors-origins",
        FlagScope::Serve,
        Some("*"),
        "browser origins allowed to call the API: `*` (any, as Dify), `none`, or a comma-separated list of `scheme://host[:port]`",
    ),
    // Logs.
    env("COLLOQUY_LOG", Some("info"), "log filter (`tracing` syntax, e.g. `debug`)"),
    env(
        "COLLOQUY_LOG_FORMAT",
        Some("text"),
        "`text` or `json` (one JSON object per line, for CloudWatch Logs Insights and other collectors); on Lambda `json` also when the function's log format is JSON",
    ),
    // Language models.
    env("COLLOQUY_LLM", Some("echo"), "default language model provider: `echo`, `openai` or `bedrock`"),
    env("COLLOQUY_ECHO_DELAY_MS", Some("20"), "pause between the `echo` provider's streamed words"),
    env(
        "COLLOQUY_OPENAI_BASE_URL",
        Some("https://api.openai.com/v1"),
        "an OpenAI-compatible API (Ollama: `http://127.0.0.1:11434/v1`)",
    ),
    env("COLLOQUY_OPENAI_API_KEY", None, "its API key (never logged)"),
    env("COLLOQUY_OPENAI_MODEL", Some("gpt-4o-mini"), "its chat model"),
    env("COLLOQUY_OPENAI_EMBEDDING_MODEL", Some("text-embedding-3-small"), "its embedding model"),
    env("COLLOQUY_BEDROCK_MODEL", Some("anthropic.claude-3-haiku-20240307-v1:0"), "the Bedrock chat model"),
    env("COLLOQUY_BEDROCK_EMBEDDING_MODEL", Some("amazon.titan-embed-text-v2:0"), "the Bedrock embedding model"),
    // Speech.
    env(
        "COLLOQUY_TTS",
        None,
        "text to speech: `espeak`, `polly`, `openai` or `none`; unset: espeak-ng when installed (never on Lambda)",
    ),
    env(
        "COLLOQUY_STT",
        None,
        "speech to text: `pocketsphinx`, `transcribe`, `openai` or `none`; unset: PocketSphinx when installed (never on Lambda)",
    ),
    env(
        "COLLOQUY_POCKETSPHINX_PYTHON",
        None,
        "a Python that can import `pocketsphinx`; unset: `$COLLOQUY_EMULATOR_CACHE/speech/bin/python` (where `scripts/speech-engines.sh` installs it, default `~/.cache/colloquy-emulators`), then `python3`",
    ),
    env("COLLOQUY_POLLY_ENGINE", Some("standard"), "Polly engine: `standard`, `neural`, `long-form`, `generative`"),
    env("COLLOQUY_TRANSCRIBE_LANGUAGE", None, "Transcribe's language code; unset: Transcribe identifies it"),
    env(
        "COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS",
        Some("25"),
        "how long a transcription may take (under API Gateway's 30 s)",
    ),
    env("COLLOQUY_TRANSCRIBE_POLL_MS", Some("500"), "first wait between Transcribe job polls (doubling to 2 s)"),
    env("COLLOQUY_OPENAI_SPEECH_BASE_URL", None, "OpenAI-compatible speech API; unset: `COLLOQUY_OPENAI_BASE_URL`"),
    env("COLLOQUY_OPENAI_SPEECH_API_KEY", None, "its API key; unset: `COLLOQUY_OPENAI_API_KEY` (never logged)"),
    env("COLLOQUY_OPENAI_TTS_MODEL", Some("tts-1"), "its text-to-speech model"),
    env("COLLOQUY_OPENAI_STT_MODEL", Some("whisper-1"), "its speech-to-text model"),
    env("COLLOQUY_OPENAI_TTS_VOICES", None, "its voices, comma-separated; unset: OpenAI's eleven voices"),
];

/// Variables of the platform the reader also consults (not Colloquy's to document).
const PLATFORM_VARS: &[&str] =
    &["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_LAMBDA_LOG_FORMAT", "COLLOQUY_EMULATOR_CACHE", "HOME"];

/// OpenAI's text-to-speech voices, the default list for OpenAI-compatible speech.
pub const OPENAI_VOICES: [&str; 11] =
    ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"];

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
        raw.parse().map_err(|_| format!("{name}: '{raw}' is not valid"))
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        let raw = self.required(name)?;
        raw.parse().map_err(|_| format!("{name}: '{raw}' is not a number"))
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
        };
        let log = read_log(program, &source)?;
        let models = read_models(&source)?;
        let speech = read_speech(program, &source)?;
        Ok(Self { store, limits, cors, server, log, models, speech })
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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read_as(program: Program, pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::read(program, |name| map.get(name).cloned())
    }

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        read_as(Program::Cli, pairs)
    }

    #[test]
    fn defaults_come_from_the_table() {
        let settings = Settings::defaults();
        assert_eq!(settings.store.kind, StoreKind::Sqlite);
        assert_eq!(settings.store.table, "colloquy");
        assert_eq!((settings.limits.max_body_bytes, settings.limits.max_upload_bytes), (1 << 20, 100 << 20));
        assert_eq!(settings.server.addr.to_string(), "127.0.0.1:5001");
        assert_eq!(settings.server.max_in_flight, 1024);
        assert_eq!(settings.cors, Cors::AnyOrigin);
        assert_eq!(settings.log.format, LogFormat::Text);
        assert_eq!(settings.models.default, "echo");
        assert!(settings.models.openai.is_none() && settings.models.bedrock.is_none());
        assert_eq!((settings.speech.tts.clone(), settings.speech.stt.clone()), (TtsChoice::Auto, SttChoice::Auto));
        // Every default parses as its setting: no other defaults exist.
        for var in VARS {
            assert!(var.name.starts_with("COLLOQUY_"), "{}", var.name);
            assert_eq!(VARS.iter().filter(|v| v.name == var.name).count(), 1, "{} twice", var.name);
        }
    }

    #[test]
    fn one_path_style_rule() {
        assert!(!read(&[]).unwrap().store.s3_path_style);
        assert!(read(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]).unwrap().store.s3_path_style);
        assert!(read(&[("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")]).unwrap().store.s3_path_style);
        assert!(
            !read(&[("AWS_ENDPOINT_URL", "http://x"), ("COLLOQUY_S3_PATH_STYLE", "false")])
                .unwrap()
                .store
                .s3_path_style
        );
        assert!(read(&[("COLLOQUY_S3_PATH_STYLE", "1")]).unwrap().store.s3_path_style);
        assert!(read(&[("COLLOQUY_S3_PATH_STYLE", "maybe")]).is_err());
    }

    #[test]
    fn lambda_needs_its_table_and_bucket_and_has_no_local_engines() {
        let error = read_as(Program::Lambda, &[("COLLOQUY_BUCKET", "b")]).unwrap_err();
        assert!(error.contains("COLLOQUY_TABLE"), "{error}");
        let settings = read_as(
            Program::Lambda,
            &[("COLLOQUY_TABLE", "t"), ("COLLOQUY_BUCKET", "b"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")],
        )
        .unwrap();
        assert_eq!(settings.store.kind, StoreKind::Dynamodb);
        assert_eq!((settings.speech.tts, settings.speech.stt), (TtsChoice::None, SttChoice::None));
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(read(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).unwrap().log.format, LogFormat::Text);
        assert_eq!(read(&[("COLLOQUY_LOG_FORMAT", "json")]).unwrap().log.format, LogFormat::Json);
        assert!(read(&[("COLLOQUY_LOG_FORMAT", "xml")]).is_err());
    }

    #[test]
    fn openai_settings_and_secrets() {
        let settings = read(&[
            ("COLLOQUY_LLM", "openai"),
            ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("COLLOQUY_OPENAI_MODEL", "llama3"),
            ("COLLOQUY_OPENAI_API_KEY", "sk-very-secret"),
        ])
        .unwrap();
        let openai = settings.models.openai.clone().unwrap();
        assert_eq!((openai.base_url.as_str(), openai.model.as_str()), ("http://127.0.0.1:11434/v1", "llama3"));
        assert_eq!(openai.api_key.as_ref().map(Secret::expose), Some("sk-very-secret"));
        let printed = format!("{settings:?} {}", openai.api_key.unwrap());
        assert!(!printed.contains("sk-very-secret") && printed.contains("[redacted]"), "{printed}");
        assert!(read(&[("COLLOQUY_LLM", "gpt")]).is_err());
        assert!(read(&[("COLLOQUY_ECHO_DELAY_MS", "soon")]).is_err());
        assert!(read(&[("COLLOQUY_MAX_BODY_BYTES", "big")]).is_err());
        assert!(read(&[("COLLOQUY_CORS_ORIGINS", "ftp://x")]).is_err());
    }

    #[test]
    fn speech_settings() {
        let settings = read(&[
            ("COLLOQUY_TTS", "openai"),
            ("COLLOQUY_STT", "transcribe"),
            ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"),
            ("COLLOQUY_OPENAI_TTS_VOICES", "a, b,,c"),
            ("COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS", "10"),
        ])
        .unwrap();
        let openai = settings.speech.openai.clone().unwrap();
        assert_eq!(openai.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(openai.voices, vec!["a", "b", "c"]);
        assert!(
            matches!(settings.speech.stt, SttChoice::Transcribe { polling, .. } if polling.deadline.as_secs() == 10)
        );
        assert!(settings.speech.needs_aws());
        assert!(read(&[("COLLOQUY_TTS", "festival")]).is_err());
        assert!(read(&[("COLLOQUY_STT", "whisper")]).is_err());
        assert!(read(&[("COLLOQUY_STT", "transcribe"), ("COLLOQUY_TRANSCRIBE_POLL_MS", "x")]).is_err());
    }

    #[test]
    fn pocketsphinx_is_looked_for_where_the_install_script_puts_it() {
        let found = read(&[("HOME", "/home/u")]).unwrap().speech.pythons;
        assert_eq!(found, [PathBuf::from("/home/u/.cache/colloquy-emulators/speech/bin/python"), "python3".into()]);
        let found = read(&[("HOME", "/home/u"), ("COLLOQUY_EMULATOR_CACHE", "/c")]).unwrap().speech.pythons;
        assert_eq!(found[0], PathBuf::from("/c/speech/bin/python"));
        let found = read(&[("COLLOQUY_POCKETSPHINX_PYTHON", "/opt/py")]).unwrap().speech.pythons;
        assert_eq!(found, [PathBuf::from("/opt/py")]);
    }

    /// README's configuration table lists every setting with its default, and nothing else.
    #[test]
    fn readme_configuration_table_matches() {
        let readme = include_str!("../../../README.md");
        let section = readme.split("### Configuration").nth(1).expect("README has a Configuration section");
        let table: Vec<&str> =
            section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
        let mut documented = Vec::new();
        for row in table.iter().skip(2) {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            let [flag, name, default, ..] = cells.as_slice() else { panic!("short row: {row}") };
            let name = name.trim_matches('`');
            let var = VARS.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("README documents unknown {name}"));
            let expected_flag = var.flag.map_or("—".to_owned(), |f| format!("`--{f}`"));
            assert_eq!(*flag, expected_flag, "flag of {name}");
            let expected_default = var.default.map_or("—".to_owned(), |d| format!("`{d}`"));
            assert_eq!(*default, expected_default, "default of {name}");
            documented.push(name);
        }
        for var in VARS {
            assert!(documented.contains(&var.name), "README's configuration table lacks {}", var.name);
        }
    }
}
