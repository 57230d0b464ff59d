//! Speech engines that run on this machine, for the embedded default: espeak-ng speaks
//! (MP3 through `lame` when it is installed, else WAV) and PocketSphinx (PyPI `pocketsphinx`
//! 5.x, which ships its English model) listens. Both run as child processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::OnceCell;

use colloquy_core::domain::{AudioFormat, Pcm, Voice, repair_wav_sizes};
use colloquy_core::ports::{ProviderError, SpeechAudio, SpeechSynthesizer, Transcriber};

/// Longest a local engine may take for one request.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(120);

/// The first executable called `name` on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program` with `args`, feeding `input` on stdin; its stdout, or why it failed.
async fn run(program: &Path, args: &[&str], input: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let name = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProviderError::NotInitialized(format!("cannot start {name}: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| ProviderError::Failed(format!("{name} has no stdin")))?;
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        let written = stdin.write_all(&input).await;
        drop(stdin);
        written
    });
    let output = tokio::time::timeout(ENGINE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| ProviderError::Failed(format!("{name} took longer than {} s", ENGINE_TIMEOUT.as_secs())))?
        .map_err(|e| ProviderError::Failed(format!("{name} failed: {e}")))?;
    if let Ok(Err(error)) = writer.await {
        return Err(ProviderError::Failed(format!("cannot write to {name}: {error}")));
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ProviderError::Failed(format!("{name} failed ({}): {}", output.status, stderr.trim())));
    }
    Ok(output.stdout)
}

/// espeak-ng, with `lame` for MP3 when present.
#[derive(Debug)]
pub struct Espeak {
    program: PathBuf,
    lame: Option<PathBuf>,
    voices: OnceCell<Vec<Voice>>,
}

impl Espeak {
    pub fn new(program: PathBuf, lame: Option<PathBuf>) -> Self {
        Self { program, lame, voices: OnceCell::new() }
    }

    /// espeak-ng (and lame) from `PATH`, when installed.
    pub fn find() -> Option<Self> {
        find_program("espeak-ng").map(|program| Self::new(program, find_program("lame")))
    }

    async fn list_voices(&self) -> Result<Vec<Voice>, ProviderError> {
        let listing = run(&self.program, &["--voices"], b"").await?;
        let mut voices = parse_voices(&String::from_utf8_lossy(&listing));
        // American English first: it is the default voice.
        voices.sort_by_key(|v| (v.id != "en-us", v.id != "en", v.id.clone()));
        if voices.is_empty() {
            return Err(ProviderError::NotInitialized("espeak-ng lists no voices".into()));
        }
        Ok(voices)
    }
}

/// Voices from `espeak-ng --voices` (columns: Pty Language Age/Gender VoiceName File Other),
/// one per language.
fn parse_voices(listing: &str) -> Vec<Voice> {
    let mut voices: Vec<Voice> = Vec::new();
    for line in listing.lines().skip(1) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let [_, language, _, name, ..] = columns.as_slice() else { continue };
        if voices.iter().all(|v| v.id != *language) {
            voices.push(Voice {
                id: (*language).to_owned(),
                name: name.replace('_', " "),
                language: (*language).to_owned(),
            });
        }
    }
    voices
}

#[async_trait]
impl SpeechSynthesizer for Espeak {
    fn name(&self) -> &'static str {
        "espeak"
    }

    async fn voices(&self) -> Result<Vec<Voice>, ProviderError> {
        self.voices.get_or_try_init(|| self.list_voices()).await.cloned()
    }

    fn max_chars(&self) -> usize {
        // espeak-ng reads any length; WAV output could not be joined anyway.
        usize::MAX
    }

    async fn synthesize(&self, text: &str, voice: &str) -> Result<SpeechAudio, ProviderError> {
        let mut wav = run(&self.program, &["-v", voice, "--stdin", "--stdout"], text.as_bytes()).await?;
        repair_wav_sizes(&mut wav);
        if wav.is_empty() {
            return Err(ProviderError::Failed("espeak-ng produced no audio".into()));
        }
        match &self.lame {
            Some(lame) => {
                let mp3 = run(lame, &["--quiet", "-", "-"], &wav).await?;
                Ok(SpeechAudio { bytes: Bytes::from(mp3), content_type: "audio/mpeg" })
            }
            None => Ok(SpeechAudio { bytes: Bytes::from(wav), content_type: "audio/wav" }),
        }
    }
}

/// The recogniser script: raw 16 kHz mono 16-bit PCM on stdin, the hypothesis on stdout.
const POCKETSPHINX_SCRIPT: &str = "\
import sys
from pocketsphinx import Decoder
decoder = Decoder(samprate=16000, logfn='/dev/null')
decoder.start_utt()
decoder.process_raw(sys.stdin.buffer.read(), full_utt=True)
decoder.end_utt()
hypothesis = decoder.hyp()
print(hypothesis.hypstr if hypothesis else '')
";

/// PocketSphinx through a Python interpreter that has the `pocketsphinx` package.
#[derive(Debug, Clone)]
pub struct PocketSphinx {
    python: PathBuf,
}

impl PocketSphinx {
    pub fn new(python: PathBuf) -> Self {
        Self { python }
    }

    /// The recogniser, when `python` can import `pocketsphinx`.
    pub async fn find(python: &Path) -> Option<Self> {
        run(python, &["-c", "import pocketsphinx"], b"").await.ok().map(|_| Self::new(python.to_owned()))
    }

    /// The first of `pythons` that can import `pocketsphinx`.
    pub async fn find_any(pythons: &[PathBuf]) -> Option<Self> {
        for python in pythons {
            if let Some(found) = Self::find(python).await {
                return Some(found);
            }
        }
        None
    }
}

#[async_trait]
impl Transcriber for PocketSphinx {
    fn name(&self) -> &'static str {
        "pocketsphinx"
    }

    async fn transcribe(&self, audio: Bytes, format: AudioFormat) -> Result<String, ProviderError> {
        if format != AudioFormat::Wav {
            return Err(ProviderError::UnsupportedInput(format!(
                "The local speech recogniser reads WAV audio only, not {}. Send WAV, or configure \
                 COLLOQUY_STT=openai or transcribe.",
                format.extension()
            )));
        }
        let pcm = Pcm::from_wav(&audio).map_err(ProviderError::UnsupportedInput)?.resampled(16_000);
        let text = run(&self.python, &["-c", POCKETSPHINX_SCRIPT], &pcm.to_le_bytes()).await?;
        Ok(String::from_utf8_lossy(&text).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_are_read_from_the_listing() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
            2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n \
            2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n \
            5  en-us           --/F      us-mbrola-1        mb/mb-us1            (en 8)\n";
        let voices = parse_voices(listing);
        assert_eq!(voices.len(), 2);
        assert_eq!(voices[1], Voice { id: "en-us".into(), name: "English (America)".into(), language: "en-us".into() });
    }

    #[tokio::test]
    async fn a_missing_program_is_not_initialized() {
        let error = run(Path::new("/nonexistent/espeak-ng"), &[], b"").await.unwrap_err();
        assert!(matches!(error, ProviderError::NotInitialized(_)), "{error:?}");
        let error = run(Path::new("/bin/sh"), &["-c", "echo broken >&2; exit 3"], b"").await.unwrap_err();
        assert!(matches!(&error, ProviderError::Failed(m) if m.contains("broken")), "{error:?}");
    }

    #[tokio::test]
    async fn pocketsphinx_refuses_what_it_cannot_decode() {
        let engine = PocketSphinx::new(PathBuf::from("/bin/false"));
        let error = engine.transcribe(Bytes::from_static(b"ID3"), AudioFormat::Mp3).await.unwrap_err();
        assert!(matches!(error, ProviderError::UnsupportedInput(_)));
        let error = engine.transcribe(Bytes::from_static(b"RIFF...."), AudioFormat::Wav).await.unwrap_err();
        assert!(matches!(error, ProviderError::UnsupportedInput(_)));
    }
}
