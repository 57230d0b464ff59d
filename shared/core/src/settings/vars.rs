//! The table of settings: each one's variable, flag, one default and meaning.

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
        "COLLOQUY_SWEEP_INTERVAL_SECS",
        "sweep-interval-secs",
        FlagScope::Serve,
        Some("3600"),
        "how often the server removes conversations and files past their app's `retention` (also at start-up); 0 turns the sweeper off (reads hide expired data either way)",
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
    env(
        "COLLOQUY_KEY_CACHE_SECONDS",
        Some("0"),
        "how long an instance may serve the app behind a key from memory (0 to 10); a revoked key or a changed app is seen within it; on Lambda 10 unless set (saves two store reads per request)",
    ),
    // Logs.
    env(
        "COLLOQUY_LOG",
        Some("info"),
        "log filter: a level (`debug`), or targets with levels (`colloquy_core=debug,info`)",
    ),
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
pub(super) const PLATFORM_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_REGION",
    "COLLOQUY_EMULATOR_CACHE",
    "AWS_SECRET_ACCESS_KEY",
    "HOME",
    "SSL_CERT_FILE",
];

/// OpenAI's text-to-speech voices, the default list for OpenAI-compatible speech.
pub const OPENAI_VOICES: [&str; 11] =
    ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"];
