//! All settings of the command-line program, from flags or `COLLOQUY_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
}
