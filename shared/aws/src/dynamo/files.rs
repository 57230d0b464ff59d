//! Uploaded files (`FileStore`): one item per file, its metadata (the bytes are in S3), and a
//! copy in its end user's partition (`OWN#…`, sort key `FILE#<id>`), written together, so an
//! end user's files can be listed (files stored before the copy was kept are not).

use async_trait::async_trait;

use colloquy_core::domain::{FileId, Owner, UploadFile};
use colloquy_core::ports::{FileStore, StoreResult};

use super::DynamoStore;
use super::items::{file_from, file_item};
use super::keys::{FILE_SK, OWNER_FILE_PREFIX, file_pk, key, owner_file_sk, owner_pk};

#[async_trait]
impl FileStore for DynamoStore {
    /// One transaction: the file's item and its owner's copy.
    async fn insert_file(&self, f: &UploadFile) -> StoreResult<()> {
        let mut copy = file_item(f);
        copy.extend(key(owner_pk(f.owner), owner_file_sk(f.id)));
        self.transact(vec![self.put_item(file_item(f), None)?, self.put_item(copy, None)?]).await
    }

    /// One Query of the owner's partition (by file id: UUIDv7, so in upload order).
    async fn files_of(&self, owner: Owner) -> StoreResult<Vec<UploadFile>> {
        let items = self.partition(owner_pk(owner), Some(OWNER_FILE_PREFIX)).await?;
        items.iter().map(file_from).collect()
    }

    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>> {
        let Some(item) = self.get(file_pk(id), FILE_SK).await? else { return Ok(None) };
        let file = file_from(&item)?;
        Ok((file.owner == owner).then_some(file))
    }

    /// One transaction: the file's item (if it is the owner's) and its owner's copy.
    async fn delete_file(&self, owner: Owner, id: FileId) -> StoreResult<bool> {
        let Some(_) = self.file(owner, id).await? else {
            // A copy left by a crash between the two deletes of an earlier run.
            self.delete(owner_pk(owner), owner_file_sk(id)).await?;
            return Ok(false);
        };
        self.transact(vec![
            self.delete_item(file_pk(id), FILE_SK)?,
            self.delete_item(owner_pk(owner), owner_file_sk(id))?,
        ])
        .await?;
        Ok(true)
    }
}
