//! The DynamoDB stream consumer that purges tombstoned conversations.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_purge().await
}
