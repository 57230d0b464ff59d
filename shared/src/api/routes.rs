//! The route table: every `/v1` route, in one place.

use std::sync::LazyLock;

use http::Method;

use crate::domain::{AnnotationId, ConversationId, FileId, MessageId, VariableId};
use crate::error::ApiError;

/// An operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListConversations,
    DeleteConversation,
    RenameConversation,
    ListConversationVariables,
    UpdateConversationVariable,
    ListMessages,
    MessageFeedback,
    AppFeedbacks,
    AppInfo,
    AppParameters,
    AppMeta,
    AppSite,
    ChatMessages,
    StopChatMessage,
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
}

impl Endpoint {
    /// Every endpoint, in route-table order.
    pub fn all() -> impl Iterator<Item = Endpoint> {
        ROUTES
            .iter()
            .flat_map(|(_, methods)| methods.iter().map(|(_, e)| *e))
            .scan(Vec::new(), |seen, e| {
                let new = !seen.contains(&e);
                seen.push(e);
                Some(new.then_some(e))
            })
            .flatten()
    }

    /// The routes (method, path pattern) that lead to this endpoint.
    pub fn routes(self) -> Vec<(Method, &'static str)> {
        ROUTES
            .iter()
            .flat_map(|(path, methods)| {
                methods.iter().filter(move |(_, e)| *e == self).map(move |(m, _)| (m.clone(), *path))
            })
            .collect()
    }

    /// The Lambda function (package and binary) that serves this endpoint.
    pub fn function_name(self) -> &'static str {
        match self {
            Self::ListConversations => "list-conversations",
            Self::DeleteConversation => "delete-conversation",
            Self::RenameConversation => "rename-conversation",
            Self::ListConversationVariables => "list-conversation-variables",
            Self::UpdateConversationVariable => "update-conversation-variable",
            Self::ListMessages => "list-messages",
            Self::MessageFeedback => "message-feedback",
            Self::AppFeedbacks => "app-feedbacks",
            Self::AppInfo => "app-info",
            Self::AppParameters => "app-parameters",
            Self::AppMeta => "app-meta",
            Self::AppSite => "app-site",
            Self::ChatMessages => "chat-messages",
            Self::StopChatMessage => "stop-chat-message",
            Self::SuggestedQuestions => "suggested-questions",
            Self::ListAnnotations => "list-annotations",
            Self::CreateAnnotation => "create-annotation",
            Self::UpdateAnnotation => "update-annotation",
            Self::DeleteAnnotation => "delete-annotation",
            Self::AnnotationReply => "annotation-reply",
            Self::AnnotationReplyStatus => "annotation-reply-status",
            Self::FileUpload => "upload-file",
            Self::FileUploadUrl => "create-upload-url",
            Self::FilePreview => "preview-file",
            Self::AudioToText => "audio-to-text",
            Self::TextToAudio => "text-to-audio",
        }
    }

    /// Whether the endpoint calls a language model or an embedder.
    pub fn uses_models(self) -> bool {
        matches!(
            self,
            Self::ChatMessages
                | Self::SuggestedQuestions
                | Self::RenameConversation
                | Self::CreateAnnotation
                | Self::UpdateAnnotation
                | Self::AnnotationReply
        )
    }

    /// Whether the endpoint uses a speech engine.
    pub fn uses_speech(self) -> bool {
        matches!(self, Self::AudioToText | Self::TextToAudio)
    }

    /// Whether the endpoint takes a multipart body (these get the larger upload limit).
    pub fn takes_uploads(self) -> bool {
        matches!(self, Self::FileUpload | Self::AudioToText)
    }
}

/// Path pattern and the methods it answers. Path ids must be UUIDs, as Dify's `<uuid:>`
/// converter requires; anything else does not match the route (404).
pub const ROUTES: &[(&str, &[(Method, Endpoint)])] = &[
    ("/v1/conversations", &[(Method::GET, Endpoint::ListConversations)]),
    ("/v1/conversations/{conversation_id}", &[(Method::DELETE, Endpoint::DeleteConversation)]),
    ("/v1/conversations/{conversation_id}/name", &[(Method::POST, Endpoint::RenameConversation)]),
    ("/v1/conversations/{conversation_id}/variables", &[(Method::GET, Endpoint::ListConversationVariables)]),
    (
        "/v1/conversations/{conversation_id}/variables/{variable_id}",
        // PATCH too: one release of the Python SDK sends it.
        &[(Method::PUT, Endpoint::UpdateConversationVariable), (Method::PATCH, Endpoint::UpdateConversationVariable)],
    ),
    ("/v1/messages", &[(Method::GET, Endpoint::ListMessages)]),
    ("/v1/messages/{message_id}/feedbacks", &[(Method::POST, Endpoint::MessageFeedback)]),
    ("/v1/app/feedbacks", &[(Method::GET, Endpoint::AppFeedbacks)]),
    ("/v1/info", &[(Method::GET, Endpoint::AppInfo)]),
    ("/v1/parameters", &[(Method::GET, Endpoint::AppParameters)]),
    ("/v1/meta", &[(Method::GET, Endpoint::AppMeta)]),
    ("/v1/site", &[(Method::GET, Endpoint::AppSite)]),
    ("/v1/chat-messages", &[(Method::POST, Endpoint::ChatMessages)]),
    ("/v1/chat-messages/{task_id}/stop", &[(Method::POST, Endpoint::StopChatMessage)]),
    ("/v1/messages/{message_id}/suggested", &[(Method::GET, Endpoint::SuggestedQuestions)]),
    ("/v1/apps/annotations", &[(Method::GET, Endpoint::ListAnnotations), (Method::POST, Endpoint::CreateAnnotation)]),
    (
        "/v1/apps/annotations/{annotation_id}",
        &[(Method::PUT, Endpoint::UpdateAnnotation), (Method::DELETE, Endpoint::DeleteAnnotation)],
    ),
    ("/v1/apps/annotation-reply/{action}", &[(Method::POST, Endpoint::AnnotationReply)]),
    ("/v1/apps/annotation-reply/{action}/status/{job_id}", &[(Method::GET, Endpoint::AnnotationReplyStatus)]),
    ("/v1/files/upload", &[(Method::POST, Endpoint::FileUpload)]),
    // Our extension: a presigned URL for files larger than a Lambda request may carry.
    ("/v1/files/upload-url", &[(Method::POST, Endpoint::FileUploadUrl)]),
    ("/v1/files/{file_id}/preview", &[(Method::GET, Endpoint::FilePreview)]),
    ("/v1/audio-to-text", &[(Method::POST, Endpoint::AudioToText)]),
    ("/v1/text-to-audio", &[(Method::POST, Endpoint::TextToAudio)]),
];

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
            "task_id" => ids.task = Some(raw.to_owned()),
            "action" => ids.action = Some(raw.to_owned()),
            "job_id" => ids.job = Some(raw.to_owned()),
            _ => {}
        }
    }
    let (_, methods) = ROUTES[*matched.value];
    // HEAD is served wherever GET is (the body is dropped on the way out).
    let wanted = if method == Method::HEAD { &Method::GET } else { method };
    let endpoint = methods
        .iter()
        .find(|(allowed, _)| allowed == wanted)
        .map(|(_, endpoint)| *endpoint)
        .ok_or_else(|| ApiError::MethodNotAllowed(allowed_methods(methods)))?;
    Ok((endpoint, ids))
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
    Some(allowed_methods(ROUTES[*matched.value].1))
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
    fn bad_ids_and_methods() {
        assert!(matches!(resolve(&Method::DELETE, "/v1/conversations/not-a-uuid"), Err(ApiError::RouteNotFound)));
        assert!(matches!(resolve(&Method::GET, "/v2/conversations"), Err(ApiError::RouteNotFound)));
        assert!(
            matches!(resolve(&Method::POST, "/v1/conversations"), Err(ApiError::MethodNotAllowed(allowed)) if allowed == "GET, HEAD, OPTIONS")
        );
        assert_eq!(resolve(&Method::HEAD, "/v1/conversations").unwrap().0, Endpoint::ListConversations);
        assert!(matches!(resolve(&Method::HEAD, "/v1/chat-messages"), Err(ApiError::MethodNotAllowed(_))));
    }
}
