//! Uploaded files and speech-to-text results.

use serde::Serialize;

use crate::domain::{EndUserId, FileId, UploadFile};

/// Dify's fields of an uploaded file. The fields Dify fills for console uploads are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedFile {
    pub id: FileId,
    pub name: String,
    pub size: u64,
    pub extension: String,
    pub mime_type: String,
    pub created_by: EndUserId,
    pub created_at: i64,
    pub preview_url: Option<String>,
    /// Where clients fetch the file: a presigned URL, or this API's preview route.
    pub source_url: String,
    pub original_url: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub conversation_id: Option<String>,
    pub file_key: Option<String>,
}

impl UploadedFile {
    pub fn new(file: UploadFile, source_url: String) -> Self {
        Self {
            id: file.id,
            name: file.name,
            size: file.size,
            extension: file.extension,
            mime_type: file.mime_type,
            created_by: file.owner.end_user_id,
            created_at: file.created_at.unix_seconds(),
            preview_url: None,
            source_url,
            original_url: None,
            user_id: None,
            tenant_id: None,
            conversation_id: None,
            file_key: None,
        }
    }
}

/// Our `POST /files/upload-url`: the file's record, and where and how to PUT its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadUrl {
    #[serde(flatten)]
    pub file: UploadedFile,
    pub upload_url: String,
    /// Always `PUT`.
    pub upload_method: &'static str,
    pub upload_headers: UploadHeaders,
    /// When the URL stops working, in Unix seconds.
    pub upload_expires_at: i64,
}

/// The headers the PUT of an upload URL must send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadHeaders {
    #[serde(rename = "Content-Type")]
    pub content_type: String,
}

/// `POST /audio-to-text`: the words heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioText {
    pub text: String,
}
