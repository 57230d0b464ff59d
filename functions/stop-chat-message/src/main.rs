//! `POST /v1/chat-messages/:task_id/stop` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(StopChatMessage).await
}
