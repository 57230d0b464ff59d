//! `DELETE /v1/app/conversations/{conversation_id}` as a Lambda function (a Colloquy extension
//! for operator keys): any conversation of the app, deleted as its end user would.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(AppDeleteConversation).await
}
