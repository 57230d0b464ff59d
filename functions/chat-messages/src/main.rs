//! `POST /v1/chat-messages (through the HTTP API, buffered)` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(ChatMessages).await
}
