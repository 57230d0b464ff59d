//! `PUT|PATCH /v1/conversations/:id/variables/:variable_id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(UpdateConversationVariable).await
}
