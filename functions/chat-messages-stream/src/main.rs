//! `POST /v1/chat-messages (through a streaming Function URL)` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve_streaming!(ChatMessages).await
}
