//! Amazon Polly and Amazon Transcribe adapters against moto. moto's Polly answers 8 zero bytes
//! of "audio" and its Transcribe recognises nothing, so a stand-in task writes each job's
//! transcript where the real service would (see `local-emulators.md`).

use std::time::Duration;

use bytes::Bytes;
use colloquy_aws::polly::Polly;
use colloquy_aws::transcribe::{AwsTranscribe, Polling};
use colloquy_core::domain::AudioFormat;
use colloquy_core::ports::{BlobStore, ProviderError, SpeechSynthesizer, Transcriber};
use colloquy_tests::aws::{polly_client, s3_blobs, s3_client, stand_in_transcripts, transcribe_client};

fn fast(deadline: Duration) -> Polling {
    Polling { deadline, first_interval: Duration::from_millis(30), max_interval: Duration::from_millis(100) }
}

#[tokio::test]
async fn polly_lists_voices_and_synthesizes_mp3() {
    let polly = Polly::new(polly_client().await, "standard");
    let voices = polly.voices().await.unwrap();
    assert!(voices.len() > 10, "{} voices", voices.len());
    assert_eq!(voices[0].language, "en-US", "American English first");
    assert!(voices.iter().any(|v| v.id == "Joanna"));
    assert_eq!(polly.max_chars(), 3000);
    let audio = polly.synthesize("Hello from Polly.", "Joanna").await.unwrap();
    assert_eq!(audio.content_type, "audio/mpeg");
    assert_eq!(audio.bytes, Bytes::from_static(&[0; 8]), "moto's stand-in audio");

    let error = polly.synthesize(&"x".repeat(3001), "Joanna").await.unwrap_err();
    assert!(matches!(&error, ProviderError::Failed(m) if m.contains("TextLengthExceeded")), "{error:?}");
    let error = polly.synthesize("Hi", "Nobody").await.unwrap_err();
    assert!(matches!(error, ProviderError::Failed(_)), "{error:?}");
}

/// One test, because the stand-in answers every job moto has: the failure cases below must
/// run after it has stopped.
#[tokio::test]
async fn transcribe_runs_a_job_reads_its_transcript_cleans_up_and_fails_clearly() {
    let stand_in = stand_in_transcripts("hello world").await;
    let blobs = s3_blobs().await;
    let transcribe = AwsTranscribe::new(transcribe_client().await, blobs.clone(), None, fast(Duration::from_secs(20)));
    let text = transcribe.transcribe(Bytes::from_static(b"RIFF fake wav"), AudioFormat::Wav).await.unwrap();
    assert_eq!(text, "hello world");

    // Audio already in the bucket is read where it is, and left there.
    blobs.put_blob("files/stored.mp3", "audio/mpeg", Bytes::from_static(b"ID3 fake")).await.unwrap();
    let text = transcribe.transcribe_stored("files/stored.mp3", AudioFormat::Mp3).await.unwrap().unwrap();
    assert_eq!(text, "hello world");
    assert!(blobs.get_blob("files/stored.mp3", None).await.unwrap().is_some());

    // Neither the uploaded audio nor the transcripts are left behind, and the jobs are deleted.
    let listing =
        s3_client().await.list_objects_v2().bucket(blobs.bucket()).prefix("scratch/transcribe/").send().await.unwrap();
    assert_eq!(listing.key_count(), Some(0), "{:?}", listing.contents());
    assert!(
        transcribe_client()
            .await
            .list_transcription_jobs()
            .send()
            .await
            .unwrap()
            .transcription_job_summaries()
            .is_empty()
    );

    // Without the stand-in, moto completes jobs but writes no transcript.
    drop(stand_in);
    let transcribe = AwsTranscribe::new(
        transcribe_client().await,
        blobs.clone(),
        Some("en-US".into()),
        fast(Duration::from_secs(20)),
    );
    let error = transcribe.transcribe(Bytes::from_static(b"RIFF"), AudioFormat::Wav).await.unwrap_err();
    assert!(matches!(&error, ProviderError::Failed(m) if m.contains("without a transcript")), "{error:?}");

    let slow = Polling {
        deadline: Duration::from_millis(200),
        first_interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(5),
    };
    let transcribe = AwsTranscribe::new(transcribe_client().await, blobs, None, slow);
    let started = std::time::Instant::now();
    let error = transcribe.transcribe(Bytes::from_static(b"RIFF"), AudioFormat::Wav).await.unwrap_err();
    assert!(matches!(&error, ProviderError::Failed(m) if m.contains("did not finish within")), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "gave up at the deadline, not after a poll");
}
