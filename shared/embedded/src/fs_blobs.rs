//! Blobs as files under a directory: the embedded store's blob storage.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use colloquy_core::ports::{Blob, BlobRange, BlobStore, BlobStream, StoreError, StoreResult};

/// Stores each blob as a file, with its content type in a `.type` file beside it.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

const CHUNK: usize = 64 * 1024;

impl FsBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file of a key. Keys are ours, but a key that could leave the root is refused.
    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'));
        if !safe {
            return Err(StoreError::Conflict(format!("invalid blob key '{key}'")));
        }
        Ok(self.root.join(key))
    }

    fn type_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".type");
        PathBuf::from(name)
    }

    async fn content_type(path: &Path) -> StoreResult<String> {
        match tokio::fs::read_to_string(Self::type_path(path)).await {
            Ok(content_type) => Ok(content_type),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("application/octet-stream".into()),
            Err(e) => Err(io(e)),
        }
    }

    async fn open(&self, key: &str) -> StoreResult<Option<(tokio::fs::File, PathBuf, u64)>> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => {
                let size = file.metadata().await.map_err(io)?.len();
                Ok(Some((file, path, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}

fn io(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put_blob(&self, key: &str, content_type: &str, bytes: Bytes) -> StoreResult<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Written aside and renamed, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, &bytes).await.map_err(io)?;
        tokio::fs::write(Self::type_path(&path), content_type).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)
    }

    async fn put_blob_stream(&self, key: &str, content_type: &str, mut body: BlobStream) -> StoreResult<u64> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Written aside, chunk by chunk, and renamed once complete; removed on any failure.
        let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
        let written = async {
            let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            tokio::fs::write(Self::type_path(&path), content_type).await.map_err(io)?;
            tokio::fs::rename(&partial, &path).await.map_err(io)?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written
    }

    async fn get_blob(&self, key: &str, range: Option<BlobRange>) -> StoreResult<Option<Blob>> {
        let Some((mut file, path, size)) = self.open(key).await? else { return Ok(None) };
        let (start, end) = match range {
            None => (0, size.saturating_sub(1)),
            Some(r) => (r.start.min(size), r.end.unwrap_or(u64::MAX).min(size.saturating_sub(1))),
        };
        let length = if size == 0 || start > end { 0 } else { end - start + 1 };
        file.seek(SeekFrom::Start(start)).await.map_err(io)?;
        let mut buffer =
            vec![0; usize::try_from(length).map_err(|_| StoreError::Unavailable("range too large".into()))?];
        file.read_exact(&mut buffer).await.map_err(io)?;
        Ok(Some(Blob { bytes: Bytes::from(buffer), content_type: Self::content_type(&path).await?, total_size: size }))
    }

    async fn stream_blob(&self, key: &str) -> StoreResult<Option<(BlobStream, String, u64)>> {
        let Some((file, path, size)) = self.open(key).await? else { return Ok(None) };
        let chunks = futures_util::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buffer = vec![0; CHUNK];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(read) => {
                    buffer.truncate(read);
                    Some((Ok(Bytes::from(buffer)), Some(file)))
                }
                Err(e) => Some((Err(io(e)), None)),
            }
        });
        Ok(Some((Box::pin(chunks), Self::content_type(&path).await?, size)))
    }

    async fn presign_get(
        &self,
        _key: &str,
        _expires: Duration,
        _headers: &colloquy_core::domain::DownloadHeaders,
    ) -> StoreResult<Option<String>> {
        Ok(None)
    }

    async fn presign_put(
        &self,
        _key: &str,
        _content_type: &str,
        _size: u64,
        _expires: Duration,
    ) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Walks the prefix's folder: blobs, not their content types nor unfinished writes.
    async fn count_blobs(&self, prefix: &str) -> StoreResult<u64> {
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        let root = self.root.clone();
        let start = if folder.is_empty() { root.clone() } else { self.path(folder)? };
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut count = 0;
            let mut folders = vec![start];
            while let Some(folder) = folders.pop() {
                let entries = match std::fs::read_dir(&folder) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(e)),
                };
                for entry in entries {
                    let path = entry.map_err(io)?.path();
                    if path.is_dir() {
                        folders.push(path);
                        continue;
                    }
                    let key =
                        path.strip_prefix(&root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
                    let blob = !key.ends_with(".type") && !key.contains(".partial-");
                    if blob && key.starts_with(&prefix) {
                        count += 1;
                    }
                }
            }
            Ok(count)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("counting blobs: {e}")))?
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<()> {
        let path = self.path(key)?;
        for file in [Self::type_path(&path), path] {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }
}
