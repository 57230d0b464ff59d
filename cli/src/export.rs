//! `colloquy export`: an app's messages written straight from the store, as the API's export
//! writes them, with a progress bar when standard error is a terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use colloquy_core::domain::{AppId, AuditAction, AuditEntry, AuditId, ExportFormat, TimeRange, parse_time};
use colloquy_core::export::{ExportSpec, expected_messages, export_stream};
use colloquy_core::ports::{Clock, IdGenerator, Store};
use colloquy_core::system::{SystemClock, TimeOrderedIds};

/// How often progress is printed as a plain line when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Request {
    pub app: AppId,
    pub start: Option<String>,
    pub end: Option<String>,
    pub format: String,
    pub output: Option<PathBuf>,
}

pub async fn run(store: Arc<dyn Store>, request: Request) -> Result<(), String> {
    let format = ExportFormat::parse(&request.format).map_err(|e| e.to_string())?;
    let bound = |name: &str, raw: &Option<String>| raw.as_deref().map(|raw| parse_time(name, raw)).transpose();
    let (start, end) = (
        bound("--start", &request.start).map_err(|e| e.to_string())?,
        bound("--end", &request.end).map_err(|e| e.to_string())?,
    );
    let app =
        store.app(request.app).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("no app {}", request.app))?;
    let now = SystemClock.now();
    let range = TimeRange::new(start, Some(end.map_or(now, |end| end.min(now))));
    let detail = format!("format={} (colloquy export)", format.as_str());
    let entry = AuditEntry::new(
        AuditId::from_uuid(TimeOrderedIds.new_id()),
        (app.id, now),
        "cli".into(),
        AuditAction::CreateExport,
        None,
        Some(&detail),
    );
    store.record(&entry).await.map_err(|e| format!("cannot write the audit log: {e}"))?;

    let expected = expected_messages(store.as_ref(), app.id, range, now).await.map_err(|e| e.to_string())?;
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        let bar = ProgressBar::with_draw_target(Some(expected), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {msg} bytes ({elapsed})")
            .map_err(|e| e.to_string())?;
        bar.set_style(style);
        bar
    } else {
        ProgressBar::hidden()
    };
    let written = Arc::new(AtomicU64::new(0));
    let spec = ExportSpec { app: app.id, range, format, started: now };
    let mut body = export_stream(store, spec, written.clone());

    // A file is written aside and renamed once complete: a stopped export leaves no file that
    // reads as whole.
    let (mut out, partial): (Box<dyn Write>, Option<PathBuf>) = match &request.output {
        Some(path) => {
            let partial = path.with_extension("partial");
            let file =
                std::fs::File::create(&partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            (Box::new(std::io::BufWriter::new(file)), Some(partial))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let mut size = 0u64;
    let mut reported = std::time::Instant::now();
    let result: Result<(), String> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("the export failed: {e}"))?;
            size += chunk.len() as u64;
            out.write_all(&chunk).map_err(|e| format!("cannot write the export: {e}"))?;
            let messages = written.load(Ordering::Relaxed);
            bar.set_position(messages);
            bar.set_message(size.to_string());
            // Not a terminal (a log, a pipe): a plain line every few seconds.
            if !terminal && reported.elapsed() >= PLAIN_PROGRESS_EVERY {
                eprintln!("exported {messages} of about {expected} messages ({size} bytes)");
                reported = std::time::Instant::now();
            }
        }
        out.flush().map_err(|e| format!("cannot write the export: {e}"))
    }
    .await;
    drop(out);
    bar.finish_and_clear();
    match (&result, partial, &request.output) {
        (Ok(()), Some(partial), Some(path)) => {
            std::fs::rename(&partial, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        (Err(_), Some(partial), _) => {
            let _ = std::fs::remove_file(partial);
        }
        _ => {}
    }
    result?;
    let messages = written.load(Ordering::Relaxed);
    let target = request.output.as_ref().map_or("standard output".into(), |p| p.display().to_string());
    eprintln!("exported {messages} messages ({size} bytes) of app {} to {target}", app.id);
    Ok(())
}
