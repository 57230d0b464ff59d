//! `POST /v1/chat-messages (through the HTTP API, buffered)` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_models(shared::api::Endpoint::ChatMessages).await
}
