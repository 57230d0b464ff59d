//! Audio for the speech routes: which uploads are speech, how long texts are cut for a
//! synthesizer, and reading WAV for the local recogniser.

/// Dify's limit on audio sent to `audio-to-text` (`FILE_SIZE = 30`, in MiB).
pub const AUDIO_LIMIT_BYTES: u64 = 30 * 1024 * 1024;

/// A container format `audio-to-text` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Mp3,
    Mp4,
    M4a,
    Wav,
    Webm,
    Amr,
}

impl AudioFormat {
    /// The format of an upload, from its MIME type as Dify checks it (`audio/{mp3,mp4,mpeg,mpga,
    /// m4a,wav,webm,amr}`, plus the common browser aliases `audio/x-wav`, `audio/wave` and
    /// `audio/x-m4a`), or from the file name's extension when the client sent no specific type
    /// (`application/octet-stream` or nothing).
    pub fn of_upload(mime_type: &str, file_name: &str) -> Option<Self> {
        let mime = mime_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "" | "application/octet-stream" => {
                let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
                Self::from_name(&extension)
            }
            other => Self::from_name(other.strip_prefix("audio/")?),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mp3" | "mpeg" | "mpga" => Self::Mp3,
            "mp4" => Self::Mp4,
            "m4a" | "x-m4a" => Self::M4a,
            "wav" | "x-wav" | "wave" => Self::Wav,
            "webm" => Self::Webm,
            "amr" => Self::Amr,
            _ => return None,
        })
    }

    /// The file extension (also Amazon Transcribe's `MediaFormat` value).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Mp4 => "mp4",
            Self::M4a => "m4a",
            Self::Wav => "wav",
            Self::Webm => "webm",
            Self::Amr => "amr",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Mp4 => "audio/mp4",
            Self::M4a => "audio/m4a",
            Self::Wav => "audio/wav",
            Self::Webm => "audio/webm",
            Self::Amr => "audio/amr",
        }
    }
}

/// A voice a speech synthesizer offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// What `voice` in a request names.
    pub id: String,
    pub name: String,
    /// BCP 47 tag, e.g. `en-US`.
    pub language: String,
}

/// Cuts `text` into pieces of at most `max_chars` characters, at sentence ends where it can,
/// else at spaces, else anywhere. Pieces without a letter or digit are dropped; joined, the pieces give back the
/// text's words in order.
pub fn split_for_speech(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut pieces = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        for part in bounded(sentence, max_chars) {
            if !current.is_empty() && current.chars().count() + part.chars().count() > max_chars {
                pieces.push(std::mem::take(&mut current).trim().to_owned());
            }
            current.push_str(part);
        }
    }
    pieces.push(current.trim().to_owned());
    // A piece of punctuation alone has nothing to say.
    pieces.retain(|piece| piece.chars().any(char::is_alphanumeric));
    pieces
}

/// Sentences with their closing punctuation and following whitespace.
fn sentences(text: &str) -> Vec<&str> {
    const ENDS: [char; 8] = ['.', '!', '?', '\n', '。', '！', '？', '…'];
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if ENDS.contains(&c) {
            // Keep runs of closing punctuation and the whitespace after them with this sentence.
            let mut end = i + c.len_utf8();
            while let Some(&(j, next)) = chars.peek() {
                if ENDS.contains(&next) || next.is_whitespace() || next == '"' || next == '\'' || next == ')' {
                    end = j + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// `sentence` in parts of at most `max_chars` characters: at spaces where possible.
fn bounded(sentence: &str, max_chars: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = sentence;
    while rest.chars().count() > max_chars {
        let limit = rest.char_indices().nth(max_chars).map_or(rest.len(), |(i, _)| i);
        let cut = match rest[..limit].rfind(char::is_whitespace) {
            Some(space) if space > 0 => space + rest[space..].chars().next().map_or(1, char::len_utf8),
            _ => limit,
        };
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

/// Sets the RIFF and `data` chunk sizes of a WAV file to what it really holds. Programs that
/// write WAV to a pipe (espeak-ng `--stdout`) cannot seek back, so they leave placeholder
/// sizes that strict readers refuse.
pub fn repair_wav_sizes(wav: &mut [u8]) {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return;
    }
    let riff_size = u32::try_from(wav.len() - 8).unwrap_or(u32::MAX);
    wav[4..8].copy_from_slice(&riff_size.to_le_bytes());
    let mut offset = 12;
    while offset + 8 <= wav.len() {
        let id = [wav[offset], wav[offset + 1], wav[offset + 2], wav[offset + 3]];
        let size = u32::from_le_bytes([wav[offset + 4], wav[offset + 5], wav[offset + 6], wav[offset + 7]]) as usize;
        let body = offset + 8;
        if &id == b"data" {
            let available = u32::try_from(wav.len() - body).unwrap_or(u32::MAX);
            if size > available as usize {
                wav[offset + 4..offset + 8].copy_from_slice(&available.to_le_bytes());
            }
            return;
        }
        offset = body.saturating_add(size).saturating_add(size % 2);
    }
}

/// Mono 16-bit samples at `rate` Hz, decoded from a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Decodes integer or float PCM WAV of any channel count; channels are averaged.
    pub fn from_wav(bytes: &[u8]) -> Result<Self, String> {
        let mut repaired = bytes.to_vec();
        repair_wav_sizes(&mut repaired);
        let mut reader =
            hound::WavReader::new(repaired.as_slice()).map_err(|e| format!("not a readable WAV file: {e}"))?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let frames: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Int => {
                let scale = (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 / scale))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("broken WAV samples: {e}"))?
            }
            hound::SampleFormat::Float => {
                reader.samples::<f32>().collect::<Result<_, _>>().map_err(|e| format!("broken WAV samples: {e}"))?
            }
        };
        let samples = frames
            .chunks(channels)
            .map(|frame| {
                let mean = frame.iter().sum::<f32>() / frame.len() as f32;
                (mean.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
            })
            .collect();
        Ok(Self { rate: spec.sample_rate, samples })
    }

    /// The same sound at `rate` Hz (linear interpolation; enough for speech recognition).
    pub fn resampled(&self, rate: u32) -> Self {
        if rate == self.rate || self.samples.is_empty() || self.rate == 0 {
            return Self { rate, samples: self.samples.clone() };
        }
        let ratio = f64::from(self.rate) / f64::from(rate);
        let len = (self.samples.len() as f64 / ratio).floor() as usize;
        let last = self.samples.len() - 1;
        let samples = (0..len)
            .map(|i| {
                let position = i as f64 * ratio;
                let index = (position.floor() as usize).min(last);
                let next = (index + 1).min(last);
                let fraction = position - index as f64;
                let value =
                    f64::from(self.samples[index]) * (1.0 - fraction) + f64::from(self.samples[next]) * fraction;
                value.round() as i16
            })
            .collect();
        Self { rate, samples }
    }

    /// Little-endian bytes of the samples (raw PCM).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_mime_type_then_extension() {
        assert_eq!(AudioFormat::of_upload("audio/mpeg", "x.bin"), Some(AudioFormat::Mp3));
        assert_eq!(AudioFormat::of_upload("audio/mpga", ""), Some(AudioFormat::Mp3));
        assert_eq!(AudioFormat::of_upload("audio/wav; codecs=1", ""), Some(AudioFormat::Wav));
        assert_eq!(AudioFormat::of_upload("audio/x-wav", ""), Some(AudioFormat::Wav));
        assert_eq!(AudioFormat::of_upload("application/octet-stream", "a.WEBM"), Some(AudioFormat::Webm));
        assert_eq!(AudioFormat::of_upload("", "voice.m4a"), Some(AudioFormat::M4a));
        assert_eq!(AudioFormat::of_upload("audio/ogg", "a.wav"), None);
        assert_eq!(AudioFormat::of_upload("text/plain", "a.mp3"), None);
        assert_eq!(AudioFormat::of_upload("application/octet-stream", "noextension"), None);
    }

    #[test]
    fn texts_split_at_sentences_within_the_limit() {
        let text = "One two three. Four five! Six seven eight nine ten? Eleven.";
        let pieces = split_for_speech(text, 30);
        assert_eq!(pieces, vec!["One two three. Four five!", "Six seven eight nine ten?", "Eleven."]);
        assert!(pieces.iter().all(|p| p.chars().count() <= 30));
        assert_eq!(split_for_speech(text, 1000), vec![text]);
        assert!(split_for_speech("   ", 10).is_empty());
    }

    #[test]
    fn long_sentences_split_at_spaces_then_anywhere() {
        let pieces = split_for_speech("aaaa bbbb cccc dddd", 9);
        assert_eq!(pieces, vec!["aaaa", "bbbb", "cccc dddd"]);
        let pieces = split_for_speech("abcdefghijkl", 5);
        assert_eq!(pieces, vec!["abcde", "fghij", "kl"]);
        let pieces = split_for_speech("你好世界。今天天气很好。", 6);
        assert_eq!(pieces, vec!["你好世界。", "今天天气很好"]);
    }

    #[test]
    fn split_keeps_every_letter_in_order() {
        let text = "The quick brown fox. Jumps over the lazy dog! Again and again, until the end? Yes.";
        let letters = |t: &str| t.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
        for limit in [3, 7, 12, 20, 40] {
            let pieces = split_for_speech(text, limit);
            assert!(pieces.iter().all(|p| p.chars().count() <= limit), "{limit}: {pieces:?}");
            assert_eq!(letters(&pieces.concat()), letters(text), "{limit}");
        }
    }

    #[test]
    fn wav_is_decoded_mixed_and_resampled() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 32000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..3200i16 {
            writer.write_sample(i).unwrap();
            writer.write_sample(i).unwrap();
        }
        writer.finalize().unwrap();
        let pcm = Pcm::from_wav(cursor.get_ref()).unwrap();
        assert_eq!(pcm.rate, 32000);
        assert_eq!(pcm.samples.len(), 3200);
        assert!((i32::from(pcm.samples[100]) - 100).abs() <= 1);
        let down = pcm.resampled(16000);
        assert_eq!(down.samples.len(), 1600);
        assert!((i32::from(down.samples[50]) - 100).abs() <= 1);
        assert_eq!(down.to_le_bytes().len(), 3200);
        assert!(Pcm::from_wav(b"not a wav").is_err());

        // As a pipe writes it: placeholder sizes.
        let mut streamed = cursor.into_inner();
        streamed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let data = streamed.windows(4).position(|w| w == b"data").unwrap();
        streamed[data + 4..data + 8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert_eq!(Pcm::from_wav(&streamed).unwrap().samples.len(), 3200);
        repair_wav_sizes(&mut streamed);
        assert_eq!(u32::from_le_bytes(streamed[4..8].try_into().unwrap()) as usize, streamed.len() - 8);
    }
}
