//! Logs: one subscriber for every program, as text or as one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, LogSettings};

/// Installs the process's log subscriber (to stderr). Colour codes only for a person at a
/// terminal, never in files or log collectors. Keeps a subscriber installed earlier.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    // A target filter (`debug`, `colloquy_core=debug,info`) rather than a full `EnvFilter`:
    // no regular expressions, which keeps them out of every Lambda binary.
    let filter: Targets = settings.filter.parse().map_err(|e| format!("COLLOQUY_LOG: {e}"))?;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match settings.format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_current_span(false).with_filter(filter))
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(std::io::stderr().is_terminal()).with_filter(filter))
            .try_init(),
    };
    drop(installed);
    Ok(())
}
