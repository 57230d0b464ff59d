//! `POST /v1/conversations/:id/fork` as a Lambda function (a Colloquy extension).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(ForkConversation).await
}
