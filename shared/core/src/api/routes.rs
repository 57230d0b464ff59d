//! The route table: every `/v1` route, in one place.

use std::sync::LazyLock;

use http::Method;

use crate::api::error::ApiError;
use crate::domain::{AnnotationId, ConversationId, ErasureId, ExportId, FileId, MessageId, UserRef, VariableId};

/// An operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListConversations,
    CreateConversation,
    AddMessages,
    ForkConversation,
    GetConversation,
    UpdateConversation,
    DeleteConversation,
    RenameConversation,
    ListConversationVariables,
    UpdateConversationVariable,
    ListMessages,
    DeleteMessage,
    MessageFeedback,
    AppFeedbacks,
    AppInfo,
    AppParameters,
    AppMeta,
    AppSite,
    ChatMessages,
    StopChatMessage,
    RegenerateMessage,
    SuggestedQuestions,
    ListAnnotations,
    CreateAnnotation,
    UpdateAnnotation,
    DeleteAnnotation,
    AnnotationReply,
    AnnotationReplyStatus,
    FileUpload,
    FileUploadUrl,
    FilePreview,
    AudioToText,
    TextToAudio,
    AppConversations,
    AppConversationMessages,
    AppDeleteConversation,
    AppFilePreview,
    AppMessageAudio,
    AppMessageFeedback,
    AppAuditLog,
    AppStats,
    CreateExport,
    AppExport,
    DownloadExport,
    EraseEndUser,
    EndUserErasure,
    ExportEndUser,
}

/// What an endpoint needs besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// A language model or an embedder.
    pub models: bool,
    /// A text-to-speech engine (Polly on Lambda).
    pub tts: bool,
    /// A speech-to-text engine (Transcribe on Lambda, which reads the audio from the bucket).
    pub stt: bool,
    /// A multipart body (these get the larger upload limit, and are read as they arrive).
    pub uploads: bool,
    /// The blob store: uploaded files and their URLs (the file routes, a chat message's files)
    /// and the audio given to speech to text. A Lambda function without it builds no S3 client.
    pub blobs: bool,
}

const PLAIN: Needs = Needs { models: false, tts: false, stt: false, uploads: false, blobs: false };
const MODELS: Needs = Needs { models: true, ..PLAIN };
/// A chat message may carry uploaded files, answered with their URLs.
const CHAT: Needs = Needs { models: true, blobs: true, ..PLAIN };
const FILES: Needs = Needs { blobs: true, ..PLAIN };
/// Text to speech synthesises a stored answer or the given text: no file is read or kept.
const TEXT_TO_SPEECH: Needs = Needs { tts: true, ..PLAIN };
const UPLOADS: Needs = Needs { uploads: true, blobs: true, ..PLAIN };
/// Speech to text transcribes an uploaded file (or a multipart part) kept in the blob store.
const SPEECH_TO_TEXT: Needs = Needs { stt: true, uploads: true, blobs: true, ..PLAIN };

/// Which keys may call an endpoint (checked in one place, `auth::authenticate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// App keys only: the endpoint acts for an end user (an operator key never does).
    AppKey,
    /// App and operator keys: app-wide settings and data that app keys already reach in Dify
    /// (app info, the feedback list, annotations).
    AnyKey,
    /// Operator keys only (a Colloquy extension): every end user's data, analytics, exports.
    OperatorKey,
}

/// One endpoint, described once: everything else (the router, the Lambda function's name,
/// which clients it links, the body limit it gets) is derived from this table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub endpoint: Endpoint,
    /// The Lambda function (package and binary) that serves it.
    pub function: &'static str,
    /// (method, path pattern). Path ids must be UUIDs, as Dify's `<uuid:>` converter requires;
    /// anything else does not match the route (404).
    pub routes: &'static [(Method, &'static str)],
    pub needs: Needs,
    pub access: Access,
}

/// An endpoint that acts for an end user (app keys only).
const fn spec(
    endpoint: Endpoint,
    function: &'static str,
    routes: &'static [(Method, &'static str)],
    needs: Needs,
) -> Spec {
    Spec { endpoint, function, routes, needs, access: Access::AppKey }
}

/// An app-wide endpoint that app and operator keys may call.
const fn app_wide(
    endpoint: Endpoint,
    function: &'static str,
    routes: &'static [(Method, &'static str)],
    needs: Needs,
) -> Spec {
    Spec { access: Access::AnyKey, ..spec(endpoint, function, routes, needs) }
}

/// An operator endpoint (operator keys only).
const fn operator(
    endpoint: Endpoint,
    function: &'static str,
    routes: &'static [(Method, &'static str)],
    needs: Needs,
) -> Spec {
    Spec { access: Access::OperatorKey, ..spec(endpoint, function, routes, needs) }
}

/// Every endpoint of the API, in route-table order.
pub const SPECS: &[Spec] = &[
    spec(Endpoint::ListConversations, "list-conversations", &[(Method::GET, "/v1/conversations")], PLAIN),
    // Colloquy extensions: conversations and messages written without the model.
    spec(Endpoint::CreateConversation, "create-conversation", &[(Method::POST, "/v1/conversations")], PLAIN),
    spec(
        Endpoint::AddMessages,
        "add-messages",
        &[(Method::POST, "/v1/conversations/{conversation_id}/messages")],
        PLAIN,
    ),
    spec(
        Endpoint::ForkConversation,
        "fork-conversation",
        &[(Method::POST, "/v1/conversations/{conversation_id}/fork")],
        PLAIN,
    ),
    // Colloquy extensions: one conversation, and its metadata, pinned and archived.
    spec(Endpoint::GetConversation, "get-conversation", &[(Method::GET, "/v1/conversations/{conversation_id}")], PLAIN),
    spec(
        Endpoint::UpdateConversation,
        "update-conversation",
        &[(Method::PATCH, "/v1/conversations/{conversation_id}")],
        PLAIN,
    ),
    spec(
        Endpoint::DeleteConversation,
        "delete-conversation",
        &[(Method::DELETE, "/v1/conversations/{conversation_id}")],
        PLAIN,
    ),
    spec(
        Endpoint::RenameConversation,
        "rename-conversation",
        &[(Method::POST, "/v1/conversations/{conversation_id}/name")],
        MODELS,
    ),
    spec(
        Endpoint::ListConversationVariables,
        "list-conversation-variables",
        &[(Method::GET, "/v1/conversations/{conversation_id}/variables")],
        PLAIN,
    ),
    spec(
        Endpoint::UpdateConversationVariable,
        "update-conversation-variable",
        // PATCH too: one release of the Python SDK sends it.
        &[
            (Method::PUT, "/v1/conversations/{conversation_id}/variables/{variable_id}"),
            (Method::PATCH, "/v1/conversations/{conversation_id}/variables/{variable_id}"),
        ],
        PLAIN,
    ),
    spec(Endpoint::ListMessages, "list-messages", &[(Method::GET, "/v1/messages")], PLAIN),
    // A Colloquy extension: one message and what descends from it.
    spec(Endpoint::DeleteMessage, "delete-message", &[(Method::DELETE, "/v1/messages/{message_id}")], PLAIN),
    spec(
        Endpoint::MessageFeedback,
        "message-feedback",
        &[(Method::POST, "/v1/messages/{message_id}/feedbacks")],
        PLAIN,
    ),
    app_wide(Endpoint::AppFeedbacks, "app-feedbacks", &[(Method::GET, "/v1/app/feedbacks")], PLAIN),
    app_wide(Endpoint::AppInfo, "app-info", &[(Method::GET, "/v1/info")], PLAIN),
    app_wide(Endpoint::AppParameters, "app-parameters", &[(Method::GET, "/v1/parameters")], PLAIN),
    app_wide(Endpoint::AppMeta, "app-meta", &[(Method::GET, "/v1/meta")], PLAIN),
    app_wide(Endpoint::AppSite, "app-site", &[(Method::GET, "/v1/site")], PLAIN),
    spec(Endpoint::ChatMessages, "chat-messages", &[(Method::POST, "/v1/chat-messages")], CHAT),
    spec(Endpoint::StopChatMessage, "stop-chat-message", &[(Method::POST, "/v1/chat-messages/{task_id}/stop")], PLAIN),
    // A Colloquy extension: a message's query answered again, as a sibling.
    spec(
        Endpoint::RegenerateMessage,
        "regenerate-message",
        &[(Method::POST, "/v1/messages/{message_id}/regenerate")],
        CHAT,
    ),
    spec(
        Endpoint::SuggestedQuestions,
        "suggested-questions",
        &[(Method::GET, "/v1/messages/{message_id}/suggested")],
        MODELS,
    ),
    app_wide(Endpoint::ListAnnotations, "list-annotations", &[(Method::GET, "/v1/apps/annotations")], PLAIN),
    app_wide(Endpoint::CreateAnnotation, "create-annotation", &[(Method::POST, "/v1/apps/annotations")], MODELS),
    app_wide(
        Endpoint::UpdateAnnotation,
        "update-annotation",
        &[(Method::PUT, "/v1/apps/annotations/{annotation_id}")],
        MODELS,
    ),
    app_wide(
        Endpoint::DeleteAnnotation,
        "delete-annotation",
        &[(Method::DELETE, "/v1/apps/annotations/{annotation_id}")],
        PLAIN,
    ),
    app_wide(
        Endpoint::AnnotationReply,
        "annotation-reply",
        &[(Method::POST, "/v1/apps/annotation-reply/{action}")],
        MODELS,
    ),
    app_wide(
        Endpoint::AnnotationReplyStatus,
        "annotation-reply-status",
        &[(Method::GET, "/v1/apps/annotation-reply/{action}/status/{job_id}")],
        PLAIN,
    ),
    spec(Endpoint::FileUpload, "upload-file", &[(Method::POST, "/v1/files/upload")], UPLOADS),
    // Our extension: a presigned URL for files larger than a Lambda request may carry.
    spec(Endpoint::FileUploadUrl, "create-upload-url", &[(Method::POST, "/v1/files/upload-url")], FILES),
    spec(Endpoint::FilePreview, "preview-file", &[(Method::GET, "/v1/files/{file_id}/preview")], FILES),
    spec(Endpoint::AudioToText, "audio-to-text", &[(Method::POST, "/v1/audio-to-text")], SPEECH_TO_TEXT),
    spec(Endpoint::TextToAudio, "text-to-audio", &[(Method::POST, "/v1/text-to-audio")], TEXT_TO_SPEECH),
    // Colloquy extensions for the people who run the app (operator keys).
    operator(Endpoint::AppConversations, "app-conversations", &[(Method::GET, "/v1/app/conversations")], PLAIN),
    operator(
        Endpoint::AppConversationMessages,
        "app-conversation-messages",
        &[(Method::GET, "/v1/app/conversations/{conversation_id}/messages")],
        PLAIN,
    ),
    operator(
        Endpoint::AppDeleteConversation,
        "app-delete-conversation",
        &[(Method::DELETE, "/v1/app/conversations/{conversation_id}")],
        PLAIN,
    ),
    operator(
        Endpoint::AppFilePreview,
        "app-file-preview",
        &[(Method::GET, "/v1/app/conversations/{conversation_id}/files/{file_id}/preview")],
        FILES,
    ),
    operator(
        Endpoint::AppMessageAudio,
        "app-message-audio",
        &[(Method::GET, "/v1/app/conversations/{conversation_id}/messages/{message_id}/audio")],
        TEXT_TO_SPEECH,
    ),
    operator(
        Endpoint::AppMessageFeedback,
        "app-message-feedback",
        &[(Method::POST, "/v1/app/messages/{message_id}/feedbacks")],
        PLAIN,
    ),
    operator(Endpoint::AppAuditLog, "app-audit-log", &[(Method::GET, "/v1/app/audit-log")], PLAIN),
    operator(Endpoint::AppStats, "app-stats", &[(Method::GET, "/v1/app/stats")], PLAIN),
    operator(Endpoint::CreateExport, "create-export", &[(Method::POST, "/v1/app/exports")], PLAIN),
    operator(Endpoint::AppExport, "app-export", &[(Method::GET, "/v1/app/exports/{export_id}")], FILES),
    operator(
        Endpoint::DownloadExport,
        "download-export",
        &[(Method::GET, "/v1/app/exports/{export_id}/download")],
        FILES,
    ),
    // Colloquy extensions for one end user's data (app keys relay the user's own request).
    app_wide(Endpoint::EraseEndUser, "erase-end-user", &[(Method::DELETE, "/v1/end-users/{user}")], PLAIN),
    app_wide(
        Endpoint::EndUserErasure,
        "end-user-erasure",
        &[(Method::GET, "/v1/end-users/{user}/erasures/{erasure_id}")],
        PLAIN,
    ),
    app_wide(Endpoint::ExportEndUser, "export-end-user", &[(Method::GET, "/v1/end-users/{user}/export")], PLAIN),
];

impl Endpoint {
    /// Whether the endpoint creates something and so takes an `Idempotency-Key` (a Colloquy
    /// extension): chat messages (both modes, and regenerated), feedback, uploads, transcripts,
    /// conversations, added messages and forks.
    pub fn idempotent(self) -> bool {
        matches!(
            self,
            Self::ChatMessages
                | Self::RegenerateMessage
                | Self::MessageFeedback
                | Self::FileUpload
                | Self::AudioToText
                | Self::CreateConversation
                | Self::AddMessages
                | Self::ForkConversation
        )
    }

    /// Every endpoint, in route-table order.
    pub fn all() -> impl Iterator<Item = Endpoint> {
        SPECS.iter().map(|spec| spec.endpoint)
    }

    /// This endpoint's description.
    pub fn spec(self) -> &'static Spec {
        SPECS.iter().find(|spec| spec.endpoint == self).expect("every endpoint has a spec")
    }

    /// The routes (method, path pattern) that lead to this endpoint.
    pub fn routes(self) -> Vec<(Method, &'static str)> {
        self.spec().routes.to_vec()
    }

    /// The Lambda function (package and binary) that serves this endpoint.
    pub fn function_name(self) -> &'static str {
        self.spec().function
    }

    /// What the endpoint needs, at compile time: a Lambda function links only the clients
    /// its endpoint uses (the glue takes these as const generics).
    pub const fn needs(self) -> Needs {
        let mut i = 0;
        while i < SPECS.len() {
            if SPECS[i].endpoint as u8 == self as u8 {
                return SPECS[i].needs;
            }
            i += 1;
        }
        panic!("every endpoint has a spec")
    }

    /// Whether the endpoint calls a language model or an embedder.
    pub fn uses_models(self) -> bool {
        self.needs().models
    }

    /// Whether the endpoint uses a text-to-speech engine.
    pub fn uses_text_to_speech(self) -> bool {
        self.needs().tts
    }

    /// Whether the endpoint uses a speech-to-text engine.
    pub fn uses_speech_to_text(self) -> bool {
        self.needs().stt
    }

    /// Which keys may call the endpoint.
    pub fn access(self) -> Access {
        self.spec().access
    }

    /// Whether the endpoint's requests are recorded in the app's audit log: every operator
    /// endpoint, and the erasure and export of an end user's data whoever asks.
    pub fn audited(self) -> bool {
        self.access() == Access::OperatorKey
            || matches!(self, Self::EraseEndUser | Self::EndUserErasure | Self::ExportEndUser)
    }

    /// Whether the endpoint takes a multipart body (these get the larger upload limit).
    pub fn takes_uploads(self) -> bool {
        self.spec().needs.uploads
    }
}

/// A path pattern with the methods it answers and where each leads.
pub type Route = (&'static str, Vec<(Method, Endpoint)>);

/// Every path pattern with the methods it answers, derived from [`SPECS`].
pub static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let mut routes: Vec<Route> = Vec::new();
    for spec in SPECS {
        for (method, path) in spec.routes {
            match routes.iter_mut().find(|(known, _)| known == path) {
                Some((_, methods)) => methods.push((method.clone(), spec.endpoint)),
                None => routes.push((*path, vec![(method.clone(), spec.endpoint)])),
            }
        }
    }
    routes
});

static ROUTER: LazyLock<matchit::Router<usize>> = LazyLock::new(|| {
    let mut router = matchit::Router::new();
    for (index, (pattern, _)) in ROUTES.iter().enumerate() {
        router.insert(*pattern, index).expect("route patterns are distinct");
    }
    router
});

/// The ids a path carries, already parsed and canonicalised.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathIds {
    pub conversation: Option<ConversationId>,
    pub message: Option<MessageId>,
    pub variable: Option<VariableId>,
    pub annotation: Option<AnnotationId>,
    pub file: Option<FileId>,
    pub export: Option<ExportId>,
    pub erasure: Option<ErasureId>,
    /// An end user's `user` string (percent-decoded, checked as `user` bodies are).
    pub user: Option<UserRef>,
    /// Free strings, checked by their endpoints (Dify answers these without a 404).
    pub task: Option<String>,
    pub action: Option<String>,
    pub job: Option<String>,
}

/// Finds the endpoint for a method and path.
pub(crate) fn resolve(method: &Method, path: &str) -> Result<(Endpoint, PathIds), ApiError> {
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let matched = ROUTER.at(path).map_err(|_| ApiError::RouteNotFound)?;
    let mut ids = PathIds::default();
    for (name, raw) in matched.params.iter() {
        let not_found = |_| ApiError::RouteNotFound;
        match name {
            "conversation_id" => ids.conversation = Some(raw.parse().map_err(not_found)?),
            "message_id" => ids.message = Some(raw.parse().map_err(not_found)?),
            "variable_id" => ids.variable = Some(raw.parse().map_err(not_found)?),
            "annotation_id" => ids.annotation = Some(raw.parse().map_err(not_found)?),
            "file_id" => ids.file = Some(raw.parse().map_err(not_found)?),
            "export_id" => ids.export = Some(raw.parse().map_err(not_found)?),
            "erasure_id" => ids.erasure = Some(raw.parse().map_err(not_found)?),
            "user" => ids.user = Some(path_user(raw)?),
            "task_id" => ids.task = Some(raw.to_owned()),
            "action" => ids.action = Some(raw.to_owned()),
            "job_id" => ids.job = Some(raw.to_owned()),
            _ => {}
        }
    }
    let (_, methods) = &ROUTES[*matched.value];
    // HEAD is served wherever GET is (the body is dropped on the way out).
    let wanted = if method == Method::HEAD { &Method::GET } else { method };
    let endpoint = methods
        .iter()
        .find(|(allowed, _)| allowed == wanted)
        .map(|(_, endpoint)| *endpoint)
        .ok_or_else(|| ApiError::MethodNotAllowed(allowed_methods(methods)))?;
    Ok((endpoint, ids))
}

/// A `user` path segment: percent-decoded UTF-8, then checked as a `user` field is (400 when
/// it is not one).
fn path_user(raw: &str) -> Result<UserRef, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::InvalidParam("user: not UTF-8 once percent-decoded".into()))?;
    Ok(UserRef::parse(&decoded)?)
}

/// The `Allow` list of a route: its methods, HEAD with GET, and OPTIONS (CORS preflight).
fn allowed_methods(methods: &[(Method, Endpoint)]) -> String {
    let mut allowed: Vec<&str> = Vec::new();
    for (method, _) in methods {
        if !allowed.contains(&method.as_str()) {
            allowed.push(method.as_str());
        }
        if method == Method::GET {
            allowed.push("HEAD");
        }
    }
    allowed.push("OPTIONS");
    allowed.join(", ")
}

/// The `Allow` list of the route at `path`, if there is one (whatever the method).
pub(crate) fn allowed_at(path: &str) -> Option<String> {
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let matched = ROUTER.at(path).ok()?;
    Some(allowed_methods(&ROUTES[*matched.value].1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2b9c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f";

    #[test]
    fn routes_resolve_with_canonical_ids() {
        let (endpoint, ids) = resolve(&Method::DELETE, &format!("/v1/conversations/{}", ID.to_uppercase())).unwrap();
        assert_eq!(endpoint, Endpoint::DeleteConversation);
        assert_eq!(ids.conversation.unwrap().to_string(), ID);
        let (endpoint, ids) = resolve(&Method::PATCH, &format!("/v1/conversations/{ID}/variables/{ID}")).unwrap();
        assert_eq!(endpoint, Endpoint::UpdateConversationVariable);
        assert!(ids.variable.is_some());
        assert_eq!(resolve(&Method::GET, "/v1/conversations/").unwrap().0, Endpoint::ListConversations);
    }

    #[test]
    fn every_endpoint_is_described_once_with_distinct_functions_and_routes() {
        let mut functions: Vec<&str> = SPECS.iter().map(|s| s.function).collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(functions.len(), SPECS.len());
        let mut routes: Vec<(Method, &str)> = SPECS.iter().flat_map(|s| s.routes.iter().cloned()).collect();
        let count = routes.len();
        routes.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
        routes.dedup();
        assert_eq!(routes.len(), count, "no route leads to two endpoints");
        for spec in SPECS {
            assert_eq!(spec.endpoint.spec().function, spec.function);
        }
    }

    #[test]
    fn the_blob_store_is_there_for_every_endpoint_that_keeps_or_reads_files() {
        for spec in SPECS {
            let Needs { stt, uploads, blobs, .. } = spec.needs;
            // Speech to text reads (and Transcribe writes) audio in the blob store; uploads
            // are kept there.
            assert!(blobs || !(stt || uploads), "{}", spec.function);
        }
        let with_blobs: Vec<&str> = SPECS.iter().filter(|s| s.needs.blobs).map(|s| s.function).collect();
        // And the exports' status (which signs the file's link) and download.
        let expected = [
            "chat-messages",
            "regenerate-message",
            "upload-file",
            "create-upload-url",
            "preview-file",
            "audio-to-text",
            "app-file-preview",
            "app-export",
            "download-export",
        ];
        assert_eq!(with_blobs, expected);
    }

    #[test]
    fn bad_ids_and_methods() {
        assert!(matches!(resolve(&Method::DELETE, "/v1/conversations/not-a-uuid"), Err(ApiError::RouteNotFound)));
        assert!(matches!(resolve(&Method::GET, "/v2/conversations"), Err(ApiError::RouteNotFound)));
        assert!(
            matches!(resolve(&Method::PUT, "/v1/conversations"), Err(ApiError::MethodNotAllowed(allowed)) if allowed == "GET, HEAD, POST, OPTIONS")
        );
        assert_eq!(resolve(&Method::HEAD, "/v1/conversations").unwrap().0, Endpoint::ListConversations);
        assert!(matches!(resolve(&Method::HEAD, "/v1/chat-messages"), Err(ApiError::MethodNotAllowed(_))));
    }
}
