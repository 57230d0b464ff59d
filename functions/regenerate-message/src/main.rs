//! `POST /v1/messages/:id/regenerate` as a Lambda function (a Colloquy extension; through the
//! HTTP API, buffered, as `chat-messages`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(RegenerateMessage).await
}
