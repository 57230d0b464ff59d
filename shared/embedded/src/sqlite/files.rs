//! Uploaded files' metadata (table `upload_files`); their bytes live in the blob store.

use async_trait::async_trait;
use rusqlite::Row;

use colloquy_core::domain::{FileId, Owner, UploadFile};
use colloquy_core::ports::{FileStore, StoreResult};

use super::codec::{Fields, args};
use super::{SqliteStore, insert_sql};

pub(super) const COLUMNS: &str = "id, app_id, end_user_id, name, size, extension, mime_type, created_at, expires_at";

pub(super) fn file_from_row(row: &Row<'_>) -> rusqlite::Result<UploadFile> {
    let f = Fields::of("upload_files", row);
    Ok(UploadFile {
        id: f.parse("id")?,
        owner: Owner { app_id: f.parse("app_id")?, end_user_id: f.parse("end_user_id")? },
        name: f.get("name")?,
        size: f.count("size")?,
        extension: f.get("extension")?,
        mime_type: f.get("mime_type")?,
        created_at: f.time("created_at")?,
        // Nullable by design: a file of an app that keeps them.
        expires_at: f.time_opt("expires_at")?,
    })
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn insert_file(&self, f: &UploadFile) -> StoreResult<()> {
        let values = args![
            f.id,
            f.owner.app_id,
            f.owner.end_user_id,
            f.name.as_str(),
            // No file reaches 2^63 bytes; a size beyond it is stored as the largest SQLite holds.
            i64::try_from(f.size).unwrap_or(i64::MAX),
            f.extension.as_str(),
            f.mime_type.as_str(),
            f.created_at,
            f.expires_at
        ];
        self.execute(insert_sql("upload_files", COLUMNS), values).await.map(drop)
    }

    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>> {
        let sql = format!("SELECT {COLUMNS} FROM upload_files WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], file_from_row).await
    }

    /// Through `files_by_owner`.
    async fn files_of(&self, owner: Owner) -> StoreResult<Vec<UploadFile>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM upload_files WHERE app_id = ?1 AND end_user_id = ?2 ORDER BY created_at, id"
        );
        self.all(sql, args![owner.app_id, owner.end_user_id], file_from_row).await
    }

    async fn delete_file(&self, owner: Owner, id: FileId) -> StoreResult<bool> {
        let sql = "DELETE FROM upload_files WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3";
        Ok(self.execute(sql.into(), args![id, owner.app_id, owner.end_user_id]).await? == 1)
    }
}
