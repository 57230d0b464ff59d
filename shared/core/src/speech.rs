//! Which speech engines serve the audio routes: at most one per direction.

use std::sync::Arc;

use crate::ports::{SpeechSynthesizer, Transcriber};

/// The configured text-to-speech and speech-to-text engines; a missing one makes its route
/// answer Dify's "provider not support" error.
#[derive(Clone, Default)]
pub struct Speech {
    pub synthesizer: Option<Arc<dyn SpeechSynthesizer>>,
    pub transcriber: Option<Arc<dyn Transcriber>>,
}

impl Speech {
    /// No engines (functions that serve no audio route).
    pub fn none() -> Self {
        Self::default()
    }

    /// The engines' names, for the start-up log.
    pub fn describe(&self) -> (Option<&'static str>, Option<&'static str>) {
        (self.synthesizer.as_ref().map(|s| s.name()), self.transcriber.as_ref().map(|t| t.name()))
    }
}
