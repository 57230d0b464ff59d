//! `POST /v1/conversations/:id/name` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(RenameConversation).await
}
