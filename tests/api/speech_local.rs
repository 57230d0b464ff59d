//! The embedded default's speech engines, for real: espeak-ng speaks, PocketSphinx listens.
//! `scripts/test.sh` installs both (Debian `espeak-ng lame`, PyPI `pocketsphinx` in a venv
//! where the settings look for it without any variable).

use std::sync::Arc;

use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_core::ports::SpeechSynthesizer;
use colloquy_core::settings::{Program, Settings};
use colloquy_core::speech::Speech;
use colloquy_embedded::local_speech::{Espeak, PocketSphinx, find_program};
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

const SENTENCE: &str = "The weather today is sunny this morning.";

async fn local_engines() -> Speech {
    let espeak = Espeak::find().expect("espeak-ng and lame are installed (apt-get install espeak-ng lame)");
    // Found as `colloquy serve` finds it: where scripts/speech-engines.sh installs it.
    let pythons = Settings::from_env(Program::Cli).expect("the settings are valid").speech.pythons;
    let sphinx = PocketSphinx::find_any(&pythons)
        .await
        .unwrap_or_else(|| panic!("none of {pythons:?} can import pocketsphinx (run scripts/speech-engines.sh)"));
    Speech { synthesizer: Some(Arc::new(espeak)), transcriber: Some(Arc::new(sphinx)) }
}

/// espeak-ng's own WAV of `text`, as a recording to send.
async fn recording(text: &str) -> Vec<u8> {
    let output =
        tokio::process::Command::new("espeak-ng").args(["-v", "en-us", "--stdout", text]).output().await.unwrap();
    assert!(output.status.success());
    output.stdout
}

/// The header of the first MPEG audio frame (after an ID3v2 tag, if any): (version, layer,
/// bitrate kbps, sample rate Hz).
fn mp3_frame_header(bytes: &[u8]) -> Option<(u8, u8, u32, u32)> {
    let mut start = 0;
    if bytes.starts_with(b"ID3") && bytes.len() > 10 {
        let size = bytes[6..10].iter().fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
        start = 10 + size;
    }
    let frame = bytes.get(start..start + 4)?;
    if frame[0] != 0xff || frame[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (frame[1] >> 3) & 0b11; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (frame[1] >> 1) & 0b11; // 1 = Layer III
    let bitrate_index = usize::from(frame[2] >> 4);
    let rate_index = usize::from((frame[2] >> 2) & 0b11);
    let (bitrates, rates): ([u32; 15], [u32; 3]) = match version {
        3 => ([0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], [44100, 48000, 32000]),
        2 => ([0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], [22050, 24000, 16000]),
        0 => ([0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], [11025, 12000, 8000]),
        _ => return None,
    };
    Some((version, layer, *bitrates.get(bitrate_index)?, *rates.get(rate_index)?))
}

#[tokio::test]
async fn espeak_speaks_and_pocketsphinx_hears_it_through_the_api() {
    let app = spawn_app_with_speech(local_engines().await).await;
    let config =
        AppConfig::from_json(r#"{"text_to_speech": {"enabled": true}, "speech_to_text": {"enabled": true}}"#).unwrap();
    let key = app.create_app(AppMode::Chat, config).await;

    let form = Form::new()
        .part("file", Part::bytes(recording(SENTENCE).await).file_name("speech.wav").mime_str("audio/wav").unwrap())
        .text("user", "alice");
    let (status, body) =
        send(app.client.post(app.url("/v1/audio-to-text")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 200, "{body}");
    let heard = body["text"].as_str().unwrap().to_lowercase();
    // PocketSphinx is rough on synthetic speech ("whether they use on the morning"), but the
    // sentence's distinctive word comes through.
    assert!(heard.contains("morning"), "heard: {heard}");

    // A format the local recogniser cannot decode is refused clearly, not mangled.
    let form = Form::new()
        .part("file", Part::bytes(vec![0xff, 0xfb, 0x90, 0]).file_name("a.mp3").mime_str("audio/mpeg").unwrap());
    let (status, body) =
        send(app.client.post(app.url("/v1/audio-to-text")).bearer_auth(&key.key).multipart(form)).await;
    assert_error(&(status, body), 415, "unsupported_audio_type");

    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "the forecast").await;
    let response = app
        .post(&key, "/v1/text-to-audio", json!({"message_id": message.id.to_string(), "user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    let audio = response.bytes().await.unwrap();
    let (version, layer, bitrate, rate) = mp3_frame_header(&audio).expect("an MPEG audio frame");
    assert_eq!(layer, 1, "Layer III (MP3), version {version}");
    assert!(bitrate > 0 && rate >= 8000, "{bitrate} kbps at {rate} Hz");
    assert!(audio.len() > 2000, "a second of speech, not a stub: {} bytes", audio.len());

    // Voices are espeak-ng's languages; an unknown one is a clear 400.
    let response = app
        .post(&key, "/v1/text-to-audio", json!({"text": "Hi", "voice": "klingon", "user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_error(&read(response).await, 400, "invalid_param");
}

#[tokio::test]
async fn without_lame_espeak_answers_wav() {
    let espeak = Espeak::new(find_program("espeak-ng").expect("espeak-ng is installed"), None);
    let voices = espeak.voices().await.unwrap();
    assert_eq!(voices[0].id, "en-us", "American English is the default voice");
    let audio = espeak.synthesize(SENTENCE, "en-us").await.unwrap();
    assert_eq!(audio.content_type, "audio/wav");
    let reader = hound::WavReader::new(std::io::Cursor::new(audio.bytes.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
    let seconds = reader.duration() as f64 / f64::from(spec.sample_rate);
    assert!((1.0..10.0).contains(&seconds), "{seconds} s of speech");
}
