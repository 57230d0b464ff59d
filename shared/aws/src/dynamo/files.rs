//! Uploaded files (`FileStore`): one item per file, its metadata (the bytes are in S3).

use async_trait::async_trait;

use colloquy_core::domain::{FileId, Owner, UploadFile};
use colloquy_core::ports::{FileStore, StoreResult};

use super::DynamoStore;
use super::items::{file_from, file_item};
use super::keys::{FILE_SK, file_pk};

#[async_trait]
impl FileStore for DynamoStore {
    async fn insert_file(&self, f: &UploadFile) -> StoreResult<()> {
        self.put(file_item(f)).await
    }

    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>> {
        let Some(item) = self.get(file_pk(id), FILE_SK).await? else { return Ok(None) };
        let file = file_from(&item)?;
        Ok((file.owner == owner).then_some(file))
    }
}
