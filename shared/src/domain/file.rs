use super::{AppId, FileId, Invalid, Owner, Timestamp};

/// A file an end user uploaded; its bytes live in the blob store under [`UploadFile::blob_key`].
#[derive(Debug, Clone, PartialEq)]
pub struct UploadFile {
    pub id: FileId,
    pub owner: Owner,
    pub name: String,
    pub size: u64,
    pub extension: String,
    pub mime_type: String,
    pub created_at: Timestamp,
}

impl UploadFile {
    pub fn blob_key(&self) -> String {
        Self::key_for(self.owner.app_id, self.id)
    }

    /// Where the bytes of file `id` of `app` live (known before the uploader is).
    pub fn key_for(app: AppId, id: FileId) -> String {
        format!("files/{app}/{id}")
    }

    /// The file's kind, which decides its size limit and how chat messages show it.
    pub fn class(&self) -> FileClass {
        FileClass::of(&self.extension, &self.mime_type)
    }
}

/// Size classes of uploads, as Dify's configuration has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileClass {
    Image,
    Video,
    Audio,
    Document,
}

const IMAGES: [&str; 7] = ["jpg", "jpeg", "png", "webp", "gif", "svg", "bmp"];
const VIDEOS: [&str; 5] = ["mp4", "mov", "mpeg", "mpga", "webm"];
const AUDIOS: [&str; 6] = ["mp3", "m4a", "wav", "amr", "ogg", "flac"];

impl FileClass {
    pub fn of(extension: &str, mime_type: &str) -> Self {
        let extension = extension.to_ascii_lowercase();
        if IMAGES.contains(&extension.as_str()) || mime_type.starts_with("image/") {
            Self::Image
        } else if AUDIOS.contains(&extension.as_str()) || mime_type.starts_with("audio/") {
            Self::Audio
        } else if VIDEOS.contains(&extension.as_str()) || mime_type.starts_with("video/") {
            Self::Video
        } else {
            Self::Document
        }
    }

    /// Dify's `type` of a message file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
        }
    }
}

/// Extensions that are never accepted (executables and scripts).
const BLOCKED: [&str; 12] = ["exe", "dll", "bat", "cmd", "com", "msi", "scr", "ps1", "vbs", "sh", "jar", "app"];
/// Longer names are shortened, keeping the extension (Dify's rule).
const MAX_NAME_CHARS: usize = 200;

/// Why a filename is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNameError {
    Missing,
    Invalid(Invalid),
    Blocked,
}

/// Checks an uploaded file's name and returns it (shortened if needed) with its extension.
pub fn check_filename(raw: &str) -> Result<(String, String), FileNameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FileNameError::Missing);
    }
    if name.contains('/') || name.contains('\\') || name.chars().any(char::is_control) {
        return Err(FileNameError::Invalid(Invalid::new("Filename contains invalid characters")));
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if BLOCKED.contains(&extension.as_str()) {
        return Err(FileNameError::Blocked);
    }
    let name = if name.chars().count() > MAX_NAME_CHARS {
        let keep = MAX_NAME_CHARS - extension.chars().count() - 1;
        format!("{}.{extension}", name.chars().take(keep).collect::<String>())
    } else {
        name.to_owned()
    };
    Ok((name, extension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames() {
        assert_eq!(check_filename(" cat.PNG ").unwrap(), ("cat.PNG".to_owned(), "png".to_owned()));
        assert_eq!(check_filename("README").unwrap().1, "");
        assert_eq!(check_filename(""), Err(FileNameError::Missing));
        assert!(matches!(check_filename("../etc/passwd"), Err(FileNameError::Invalid(_))));
        assert!(matches!(check_filename("a\\\\b.txt"), Err(FileNameError::Invalid(_))));
        assert_eq!(check_filename("setup.EXE"), Err(FileNameError::Blocked));
        let long = format!("{}.pdf", "x".repeat(300));
        let (name, extension) = check_filename(&long).unwrap();
        assert_eq!((name.chars().count(), extension.as_str()), (200, "pdf"));
        assert!(name.ends_with(".pdf"));
    }

    #[test]
    fn classes() {
        assert_eq!(FileClass::of("png", "application/octet-stream"), FileClass::Image);
        assert_eq!(FileClass::of("bin", "audio/mpeg"), FileClass::Audio);
        assert_eq!(FileClass::of("mov", ""), FileClass::Video);
        assert_eq!(FileClass::of("pdf", "application/pdf"), FileClass::Document);
    }
}
