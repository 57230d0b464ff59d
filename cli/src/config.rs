//! All settings of the command-line program, from flags or `COLLOQUY_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::server::ServerLimits;

/// Which store holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded single-file database under `--data-dir`.
    Sqlite,
    /// DynamoDB (`--table`) and S3 (`--bucket`) through the standard AWS environment.
    Dynamodb,
}

/// Where data lives.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// `sqlite` (embedded, the default) or `dynamodb` (DynamoDB and S3).
    #[arg(long, env = "COLLOQUY_STORE", value_enum, default_value = "sqlite", global = true)]
    pub store: StoreKind,
    /// Directory of the embedded database and files (created if missing).
    #[arg(long, env = "COLLOQUY_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The DynamoDB table, with `--store dynamodb`.
    #[arg(long, env = "COLLOQUY_TABLE", default_value = "colloquy", global = true)]
    pub table: String,
    /// The S3 bucket for files and audio, with `--store dynamodb`.
    #[arg(long, env = "COLLOQUY_BUCKET", default_value = "colloquy-files", global = true)]
    pub bucket: String,
}

impl StoreSettings {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("colloquy.db")
    }

    /// Path-style S3 addressing: on when an endpoint override points at an emulator or an
    /// S3-compatible service (`COLLOQUY_S3_PATH_STYLE` decides when set).
    pub fn s3_path_style(&self) -> bool {
        match std::env::var("COLLOQUY_S3_PATH_STYLE") {
            Ok(value) => value == "true" || value == "1",
            Err(_) => std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_ENDPOINT_URL_S3").is_ok(),
        }
    }
}

/// How the server listens and what it accepts.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on.
    #[arg(long, env = "COLLOQUY_ADDR", default_value = "127.0.0.1:5001")]
    pub addr: SocketAddr,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, env = "COLLOQUY_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest accepted file upload in bytes (the app's per-kind limits apply within it).
    #[arg(long, env = "COLLOQUY_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Seconds a client has to send a request's headers (also: to start its next request).
    #[arg(long, env = "COLLOQUY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Longest wait, in seconds, for the next piece of a request body (408 after it).
    #[arg(long, env = "COLLOQUY_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "COLLOQUY_IDLE_TIMEOUT_SECS", default_value_t = 5)]
    pub idle_timeout_secs: u64,
    /// Open connections at most (the oldest idle one is closed to make room); also kept under
    /// the process's open-file limit.
    #[arg(long, env = "COLLOQUY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Requests in flight at most; beyond it 503 with `Retry-After: 1`.
    #[arg(long, env = "COLLOQUY_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Browser origins allowed to call the API: `*` (any), `none`, or a comma-separated list.
    #[arg(long, env = "COLLOQUY_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
}

/// File descriptors kept free for the store, blobs and logs when capping connections.
const RESERVED_FILES: u64 = 256;

impl ServeSettings {
    /// The server's limits; the connection cap stays below `file_limit` (open files allowed).
    pub fn server_limits(&self, file_limit: Option<u64>) -> ServerLimits {
        let room = file_limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX)
        });
        ServerLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_connections: self.max_connections.clamp(1, room),
            max_in_flight: self.max_in_flight.max(1),
        }
    }
}
