//! `GET /v1/app/conversations/:id/messages/:message_id/audio` as a Lambda function (a Colloquy extension for operator keys).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(AppMessageAudio).await
}
