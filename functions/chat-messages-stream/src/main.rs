//! `POST /v1/chat-messages (through a streaming Function URL)` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_streaming(shared::api::Endpoint::ChatMessages).await
}
