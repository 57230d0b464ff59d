//! Exporting an app's messages: the rows, as a stream of bytes produced a page at a time (so
//! memory holds one page of messages, not the export), and the job that writes them to the
//! blob store and saves its progress. The API's export routes, the export function on AWS and
//! `colloquy export` all use these.
//!
//! Which messages: those created in the job's range, of every conversation of the app that
//! still exists, conversation after conversation (newest activity first), each conversation's
//! messages oldest first. The conversations are read through the app-wide list, whose order
//! moves as conversations gain messages: the list is read in two passes, first the
//! conversations last active before the export started (a region that only loses entries),
//! then those active since, skipping the ones the first pass wrote — so a conversation that
//! gains a message during the export is written exactly once. Remembering which ones were
//! written costs 16 bytes per conversation; everything else is bounded by a page.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::{
    AppId, ConversationFilter, ConversationId, ConversationSummary, Cursor, EXPORT_COLUMNS, EXPORT_PROGRESS_EVERY,
    ExportFormat, ExportJob, ExportStatus, Granularity, MessageId, TimeRange, Timestamp, csv_fields, export_row,
    jsonl_line,
};
use crate::ports::{BlobStore, BlobStream, Clock, Store, StoreError, StoreResult};

/// Conversations and messages read per request.
const PAGE: usize = 100;
/// Bytes gathered before a chunk is handed on.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reader and the writer.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportSpec {
    pub app: AppId,
    /// Messages created in this range; its end is where the export started at the latest.
    pub range: TimeRange,
    pub format: ExportFormat,
    /// When the export started (the two passes meet there).
    pub started: Timestamp,
}

/// The export's bytes as they are produced (a task reads the store; the stream ends with an
/// error if a read fails). `written` counts the messages written so far.
pub fn export_stream(store: Arc<dyn Store>, spec: ExportSpec, written: Arc<AtomicU64>) -> BlobStream {
    let (sender, mut receiver) = mpsc::channel::<StoreResult<Bytes>>(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        let mut out = Output { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK_BYTES), format: spec.format };
        let result = async {
            if spec.format == ExportFormat::Csv {
                out.csv_record(EXPORT_COLUMNS.iter().map(|c| (*c).to_owned()).collect())?;
            }
            write_rows(store.as_ref(), spec, &mut out, &written).await?;
            out.flush().await
        }
        .await;
        if let Err(error) = result {
            // Nothing to report to when the writer went away (it failed, or was dropped).
            let _ = sender.send(Err(error)).await;
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

/// The export's bytes as they are produced, chunk by chunk.
struct Output {
    sender: mpsc::Sender<StoreResult<Bytes>>,
    buffer: Vec<u8>,
    format: ExportFormat,
}

impl Output {
    fn csv_record(&mut self, fields: Vec<String>) -> StoreResult<()> {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(&mut self.buffer);
        writer.write_record(&fields).map_err(|e| StoreError::Failed(format!("csv: {e}")))?;
        writer.flush().map_err(|e| StoreError::Failed(format!("csv: {e}")))
    }

    async fn row(&mut self, row: Vec<serde_json::Value>) -> StoreResult<()> {
        match self.format {
            ExportFormat::Jsonl => self.buffer.extend(jsonl_line(row)),
            ExportFormat::Csv => self.csv_record(csv_fields(&row))?,
        }
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> StoreResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.sender.send(Ok(chunk)).await.map_err(|_| StoreError::Failed("the export's writer stopped".into()))
    }
}

/// Both passes over the app's conversations (see the module's documentation).
async fn write_rows(store: &dyn Store, spec: ExportSpec, out: &mut Output, written: &AtomicU64) -> StoreResult<()> {
    let until = spec.range.until.map_or(spec.started, |until| until.min(spec.started));
    let before_start = ConversationFilter {
        updated: TimeRange::new(spec.range.from, Some(spec.started)),
        created: TimeRange::new(None, Some(until)),
        ..ConversationFilter::default()
    };
    let since_start = ConversationFilter {
        updated: TimeRange::new(Some(spec.started), None),
        created: TimeRange::new(None, Some(until)),
        ..ConversationFilter::default()
    };
    let range = TimeRange::new(spec.range.from, Some(until));
    let mut done: HashSet<ConversationId> = HashSet::new();
    for (filter, first_pass) in [(before_start, true), (since_start, false)] {
        let mut after = None;
        loop {
            let page = store.app_conversations(spec.app, &filter, after, PAGE).await?;
            for summary in &page {
                if first_pass {
                    done.insert(summary.conversation.id);
                } else if done.contains(&summary.conversation.id) {
                    continue;
                }
                // Expired: gone for every read, if not yet removed.
                if summary.conversation.is_expired(spec.started) {
                    continue;
                }
                write_conversation(store, summary, range, out, written).await?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    after = Some(Cursor { at: last.conversation.updated_at, id: last.conversation.id });
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// One conversation's messages created in `range`, oldest first, with their feedback.
async fn write_conversation(
    store: &dyn Store,
    summary: &ConversationSummary,
    range: TimeRange,
    out: &mut Output,
    written: &AtomicU64,
) -> StoreResult<()> {
    let id = summary.conversation.id;
    // Strictly after (a microsecond before the start, the greatest id): from the start on.
    let mut after = range
        .from
        .map(|from| Cursor { at: Timestamp::from_micros(from.micros() - 1), id: MessageId::from_uuid(Uuid::max()) });
    loop {
        let page = store.messages_after(id, after, PAGE).await?;
        let full = page.len() == PAGE;
        let in_range: Vec<_> = page.iter().filter(|m| range.contains(m.created_at)).collect();
        let ids: Vec<MessageId> = in_range.iter().map(|m| m.id).collect();
        let feedbacks =
            if ids.is_empty() { Vec::new() } else { store.feedbacks_on(&summary.conversation, &ids).await? };
        for message in &in_range {
            let on: Vec<_> = feedbacks.iter().filter(|f| f.message_id == message.id).collect();
            out.row(export_row(summary, message, &on)).await?;
            written.fetch_add(1, Ordering::Relaxed);
        }
        let past_end = page.last().is_some_and(|m| range.until.is_some_and(|until| m.created_at >= until));
        match page.last() {
            Some(last) if full && !past_end => after = Some(Cursor { at: last.created_at, id: last.id }),
            _ => return Ok(()),
        }
    }
}

/// How many messages the app's usage counters hold for `range` (what progress is measured
/// against): the hours it overlaps, whole.
pub async fn expected_messages(store: &dyn Store, app: AppId, range: TimeRange, now: Timestamp) -> StoreResult<u64> {
    let hour = Granularity::Hour;
    let from = range.from.map_or(0, |from| hour.bucket_of(from));
    let until = hour.bucket_of(range.until.unwrap_or(now)) + hour.seconds();
    let tallies = store.tallies(app, hour, from, until).await?;
    Ok(tallies.iter().map(|(_, t)| t.messages.max(0) as u64).sum())
}

/// Runs an export job to its end: writes the file to the blob store, saving the job's progress
/// every [`EXPORT_PROGRESS_EVERY`], and saves how it ended. A failure is stored on the job in
/// words fit for the API (the details go to the log).
pub async fn run_export(
    store: Arc<dyn Store>,
    blobs: &dyn BlobStore,
    clock: &dyn Clock,
    mut job: ExportJob,
) -> ExportJob {
    job.status = ExportStatus::Running;
    job.updated_at = clock.now();
    if let Err(error) = store.save_export(&job).await {
        tracing::warn!(%error, export = %job.id, "could not mark an export running");
    }
    let written = Arc::new(AtomicU64::new(0));
    let spec = ExportSpec { app: job.app_id, range: job.range, format: job.format, started: job.created_at };
    let body = export_stream(store.clone(), spec, written.clone());
    let key = job.blob_key();
    let upload = blobs.put_blob_stream(&key, job.format.content_type(), body);
    tokio::pin!(upload);
    let mut tick = tokio::time::interval(EXPORT_PROGRESS_EVERY);
    tick.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut upload => break outcome,
            _ = tick.tick() => {
                job.exported = written.load(Ordering::Relaxed);
                job.updated_at = clock.now();
                if let Err(error) = store.save_export(&job).await {
                    tracing::warn!(%error, export = %job.id, "could not save an export's progress");
                }
            }
        }
    };
    job.exported = written.load(Ordering::Relaxed);
    job.updated_at = clock.now();
    match outcome {
        Ok(size) => {
            job.status = ExportStatus::Done;
            job.size = Some(size);
        }
        Err(error) => {
            tracing::error!(%error, export = %job.id, "an export failed");
            job.status = ExportStatus::Failed;
            job.error = Some("The export failed: storage was unavailable. Start a new export.".into());
        }
    }
    if let Err(error) = store.save_export(&job).await {
        tracing::error!(%error, export = %job.id, "could not save how an export ended");
    }
    job
}
