//! The DynamoDB stream consumer that purges tombstoned conversations.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve_purge().await
}
