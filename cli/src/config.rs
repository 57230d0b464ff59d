//! All settings of the command-line program, from flags or `COLLOQUY_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where data lives.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "COLLOQUY_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
}

impl StoreSettings {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("colloquy.db")
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
}
