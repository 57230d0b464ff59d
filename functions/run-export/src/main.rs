//! The DynamoDB stream consumer that runs exports (a Colloquy extension): each new export job
//! is written to S3.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve_exports().await
}
