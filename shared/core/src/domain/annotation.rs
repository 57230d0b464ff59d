use super::{AnnotationId, AppId, Invalid, JobId, Timestamp};

/// A question with the answer to give when a chat query matches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub id: AnnotationId,
    pub app_id: AppId,
    pub question: String,
    pub answer: String,
    pub hit_count: u64,
    /// The question's embedding under the app's reply settings, once computed.
    pub embedding: Option<Vec<f32>>,
    pub created_at: Timestamp,
}

impl Annotation {
    /// Both texts are required and must not be blank.
    pub fn check_texts(question: &str, answer: &str) -> Result<(), Invalid> {
        for (name, text) in [("question", question), ("answer", answer)] {
            if text.trim().is_empty() {
                return Err(Invalid(format!("{name}: must not be empty")));
            }
        }
        Ok(())
    }
}

/// How annotation reply matches queries, when it is enabled for an app.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationSettings {
    /// Minimum similarity (0..=1) for an annotation to answer.
    pub score_threshold: f32,
    pub embedding_provider: String,
    pub embedding_model: String,
}

impl AnnotationSettings {
    pub fn new(score_threshold: f64, embedding_provider: &str, embedding_model: &str) -> Result<Self, Invalid> {
        if !(0.0..=1.0).contains(&score_threshold) {
            return Err(Invalid("score_threshold: must be between 0 and 1".into()));
        }
        for (name, value) in
            [("embedding_provider_name", embedding_provider), ("embedding_model_name", embedding_model)]
        {
            if value.trim().is_empty() {
                return Err(Invalid(format!("{name}: must not be empty")));
            }
        }
        Ok(Self {
            score_threshold: score_threshold as f32,
            embedding_provider: embedding_provider.trim().to_owned(),
            embedding_model: embedding_model.trim().to_owned(),
        })
    }
}

/// `enable` or `disable` of `/apps/annotation-reply/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyAction {
    Enable,
    Disable,
}

impl ReplyAction {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "enable" => Ok(Self::Enable),
            "disable" => Ok(Self::Disable),
            _ => Err(Invalid(format!("action: must be 'enable' or 'disable', got '{raw}'"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// Where an annotation-reply job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Waiting,
    Processing,
    Completed,
    Error,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        [Self::Waiting, Self::Processing, Self::Completed, Self::Error]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| Invalid(format!("unknown job status '{raw}'")))
    }
}

/// An enable/disable job of annotation reply.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationJob {
    pub id: JobId,
    pub app_id: AppId,
    pub action: ReplyAction,
    pub status: JobStatus,
    pub error: String,
    pub created_at: Timestamp,
}

/// Cosine similarity of two vectors (0 when either is zero or they differ in length).
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert!(AnnotationSettings::new(0.8, "echo", "lexical").is_ok());
        assert!(AnnotationSettings::new(1.5, "echo", "lexical").is_err());
        assert!(AnnotationSettings::new(0.5, " ", "lexical").is_err());
        assert!(ReplyAction::parse("enable").is_ok());
        assert!(ReplyAction::parse("Enable").is_err());
        assert!(Annotation::check_texts("q", " ").is_err());
    }

    #[test]
    fn cosine() {
        assert!((cosine_similarity(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine_similarity(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }
}
