//! `POST /v1/text-to-audio` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_speech(shared::api::Endpoint::TextToAudio).await
}
