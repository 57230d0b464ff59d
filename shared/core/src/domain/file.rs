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
    /// When it expires (its app's retention); `None`: kept.
    pub expires_at: Option<Timestamp>,
}

impl UploadFile {
    /// Whether it has expired at `now` (reads treat it as gone).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        super::expired(self.expires_at, now)
    }

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

/// The lowercased text after a name's last dot (empty without one).
fn extension_of(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// A name without the trailing dots and spaces Windows drops (`a.exe.` and `a.exe ` are `a.exe` there).
fn without_trailing_dots(name: &str) -> &str {
    name.trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

/// Characters that reorder how a name is displayed (`invoice\u{202E}fdp.html` shows as
/// `invoicelmth.pdf`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks an uploaded file's name and returns it (shortened if needed) with its extension.
///
/// The block-list sees the name as Windows would open it: without trailing dots and spaces,
/// without an NTFS stream suffix (`a.exe::$DATA`, `a.exe:x` open `a.exe`), in any case.
pub fn check_filename(raw: &str) -> Result<(String, String), FileNameError> {
    let name = without_trailing_dots(raw.trim());
    if name.is_empty() {
        return Err(FileNameError::Missing);
    }
    if name.contains('/') || name.contains('\\') || name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(FileNameError::Invalid(Invalid::new("Filename contains invalid characters")));
    }
    let extension = extension_of(name);
    let windows_name = without_trailing_dots(name.split(':').next().unwrap_or(name));
    if BLOCKED.contains(&extension.as_str()) || BLOCKED.contains(&extension_of(windows_name).as_str()) {
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

/// Types a browser displays without running anything the file contains: the type served, the
/// extensions it may have, and other names clients declare it by. Everything else — HTML, SVG,
/// XML, JavaScript, PDF (viewers run its scripts), and every type not listed — is only ever
/// served as a download.
const INERT: &[(&str, &[&str], &[&str])] = &[
    ("image/png", &["png"], &["image/x-png"]),
    ("image/jpeg", &["jpg", "jpeg", "jpe"], &["image/jpg", "image/pjpeg"]),
    ("image/gif", &["gif"], &[]),
    ("image/webp", &["webp"], &[]),
    ("image/bmp", &["bmp"], &["image/x-bmp", "image/x-ms-bmp"]),
    ("image/avif", &["avif"], &[]),
    ("video/mp4", &["mp4", "m4v"], &[]),
    ("video/webm", &["webm"], &[]),
    ("video/ogg", &["ogv"], &[]),
    ("video/quicktime", &["mov"], &[]),
    ("video/mpeg", &["mpeg", "mpg"], &[]),
    ("audio/mpeg", &["mp3", "mpga"], &["audio/mp3", "audio/mpga", "audio/mpeg3", "audio/x-mpeg-3"]),
    ("audio/wav", &["wav"], &["audio/x-wav", "audio/wave", "audio/vnd.wave"]),
    ("audio/mp4", &["m4a", "mp4"], &["audio/m4a", "audio/x-m4a"]),
    ("audio/webm", &["weba", "webm"], &[]),
    ("audio/ogg", &["ogg", "oga", "opus"], &["audio/opus"]),
    ("audio/flac", &["flac"], &["audio/x-flac"]),
    ("audio/aac", &["aac"], &["audio/x-aac"]),
    ("audio/amr", &["amr"], &[]),
    ("text/plain", &["txt"], &[]),
];

/// Declared types that say nothing: the extension alone decides.
const UNTYPED: [&str; 2] = ["", "application/octet-stream"];

/// The type a file may be shown inline with, or `None` when it must be a download.
///
/// The extension and the declared type must agree on an inert type (a `.png` declared
/// `text/html` is not shown); a file declared without a real type goes by its extension. The
/// answer is always one of [`INERT`]'s types, never the client's text.
pub fn inline_type(extension: &str, declared: &str) -> Option<&'static str> {
    let extension = extension.trim().to_ascii_lowercase();
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let candidates = || INERT.iter().filter(|(_, extensions, _)| extensions.contains(&extension.as_str()));
    candidates()
        .find(|(mime, _, aliases)| *mime == declared || aliases.contains(&declared.as_str()))
        .or_else(|| candidates().next().filter(|_| UNTYPED.contains(&declared.as_str())))
        .map(|(mime, _, _)| *mime)
}

/// Lets caches other than the client's own keep nothing: previews are owner-only.
const PRIVATE_CACHE: &str = "private, max-age=3600";

/// The headers a file is served with, by the preview route and through a blob store's own URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadHeaders {
    pub content_type: String,
    pub content_disposition: String,
    pub cache_control: String,
}

impl UploadFile {
    /// Inline with its vetted inert type, or else (and whenever `as_attachment`) a download of
    /// `application/octet-stream`, so that no upload runs as active content.
    pub fn download_headers(&self, as_attachment: bool) -> DownloadHeaders {
        let inline = if as_attachment { None } else { inline_type(&self.extension, &self.mime_type) };
        let (content_type, disposition) = match inline {
            // Text without a charset is decoded by guesswork; uploads are UTF-8 far more often.
            Some("text/plain") => ("text/plain; charset=utf-8", "inline"),
            Some(mime) => (mime, "inline"),
            None => ("application/octet-stream", "attachment"),
        };
        DownloadHeaders {
            content_type: content_type.to_owned(),
            content_disposition: format!("{disposition}; filename*=UTF-8''{}", encode_filename(&self.name)),
            cache_control: PRIVATE_CACHE.to_owned(),
        }
    }
}

/// RFC 5987 encoding of a filename for `Content-Disposition`.
fn encode_filename(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'!'
            | b'#'
            | b'$'
            | b'&'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{AppId, EndUserId};

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
    fn blocked_extensions_are_seen_as_windows_opens_the_name() {
        for name in [
            "a.exe.",
            "a.EXE",
            "a.exe ",
            "a.exe. . ",
            "a.exe::$DATA",
            "a.exe:stream",
            "a.Exe.:x",
            ".bat",
            "x.sh\u{3000}",
        ] {
            assert_eq!(check_filename(name), Err(FileNameError::Blocked), "{name:?}");
        }
        // What Windows keeps of the name is what is stored, with its extension.
        assert_eq!(check_filename("report.pdf. ").unwrap(), ("report.pdf".to_owned(), "pdf".to_owned()));
        assert_eq!(check_filename("Minutes: 1 May.txt").unwrap().1, "txt");
        assert_eq!(check_filename(" . "), Err(FileNameError::Missing));
        assert!(matches!(check_filename("a\u{202E}fdp.exe.txt"), Err(FileNameError::Invalid(_))));
        assert!(matches!(check_filename("a\u{2066}b.txt"), Err(FileNameError::Invalid(_))));
    }

    proptest::proptest! {
        #[test]
        fn no_spelling_of_a_blocked_extension_passes(
            stem in "[a-zA-Z0-9 _.-]{0,12}",
            blocked in proptest::sample::select(BLOCKED.to_vec()),
            upper in proptest::collection::vec(proptest::bool::ANY, 3),
            tail in "[. ]{0,4}",
            stream in proptest::option::of("[a-zA-Z0-9$:.]{0,8}"),
        ) {
            let extension: String = blocked
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            let stream = stream.map(|s| format!(":{s}")).unwrap_or_default();
            let name = format!("{stem}.{extension}{tail}{stream}");
            proptest::prop_assert_eq!(check_filename(&name), Err(FileNameError::Blocked), "{:?}", name);
        }
    }

    #[test]
    fn only_inert_types_that_match_their_extension_are_inline() {
        for (extension, declared, served) in [
            ("png", "image/png", "image/png"),
            ("PNG", "Image/PNG; charset=x", "image/png"),
            ("jpg", "image/jpeg", "image/jpeg"),
            ("jpeg", "image/jpg", "image/jpeg"),
            ("mp3", "audio/mpeg", "audio/mpeg"),
            ("mp3", "audio/mp3", "audio/mpeg"),
            ("wav", "audio/x-wav", "audio/wav"),
            ("webm", "audio/webm", "audio/webm"),
            ("webm", "video/webm", "video/webm"),
            ("mp4", "video/mp4", "video/mp4"),
            ("txt", "text/plain", "text/plain"),
            // No real type declared: the extension decides.
            ("png", "application/octet-stream", "image/png"),
            ("webm", "application/octet-stream", "video/webm"),
        ] {
            assert_eq!(inline_type(extension, declared), Some(served), "{extension} {declared}");
        }
        for (extension, declared) in [
            ("html", "text/html"),
            ("htm", "text/html"),
            ("svg", "image/svg+xml"),
            ("xhtml", "application/xhtml+xml"),
            ("js", "text/javascript"),
            ("js", "application/javascript"),
            ("xml", "text/xml"),
            ("xml", "application/xml"),
            ("pdf", "application/pdf"),
            ("png", "text/html"),
            ("png", "image/svg+xml"),
            ("txt", "text/html"),
            ("html", "text/plain"),
            ("html", "image/png"),
            ("", "image/png"),
            ("bin", "application/octet-stream"),
            ("mp3", "video/mp4"),
        ] {
            assert_eq!(inline_type(extension, declared), None, "{extension} {declared}");
        }
    }

    fn upload(name: &str, extension: &str, mime_type: &str) -> UploadFile {
        UploadFile {
            id: FileId::from_uuid(Uuid::nil()),
            owner: Owner { app_id: AppId::from_uuid(Uuid::nil()), end_user_id: EndUserId::from_uuid(Uuid::nil()) },
            name: name.into(),
            size: 1,
            extension: extension.into(),
            mime_type: mime_type.into(),
            created_at: Timestamp::from_micros(0),
            expires_at: None,
        }
    }

    #[test]
    fn download_headers() {
        let png = upload("cat 1.png", "png", "image/png");
        let inline = png.download_headers(false);
        assert_eq!(
            (inline.content_type.as_str(), inline.content_disposition.as_str(), inline.cache_control.as_str()),
            ("image/png", "inline; filename*=UTF-8''cat%201.png", "private, max-age=3600")
        );
        let attached = png.download_headers(true);
        assert_eq!(
            (attached.content_type.as_str(), attached.content_disposition.as_str()),
            ("application/octet-stream", "attachment; filename*=UTF-8''cat%201.png")
        );
        assert_eq!(png.download_headers(true).cache_control, "private, max-age=3600");
        let page = upload("x.html", "html", "text/html").download_headers(false);
        assert_eq!(
            (page.content_type.as_str(), page.content_disposition.as_str()),
            ("application/octet-stream", "attachment; filename*=UTF-8''x.html")
        );
        assert_eq!(
            upload("a.txt", "txt", "text/plain").download_headers(false).content_type,
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn filenames_are_encoded_for_headers() {
        assert_eq!(encode_filename("report 1.pdf"), "report%201.pdf");
        assert_eq!(encode_filename("é.txt"), "%C3%A9.txt");
        assert_eq!(encode_filename("a\"b;c.txt"), "a%22b%3Bc.txt");
    }

    #[test]
    fn classes() {
        assert_eq!(FileClass::of("png", "application/octet-stream"), FileClass::Image);
        assert_eq!(FileClass::of("bin", "audio/mpeg"), FileClass::Audio);
        assert_eq!(FileClass::of("mov", ""), FileClass::Video);
        assert_eq!(FileClass::of("pdf", "application/pdf"), FileClass::Document);
    }
}
