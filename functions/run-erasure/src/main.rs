//! The DynamoDB stream consumer that runs erasures (a Colloquy extension): each new erasure
//! job removes everything of one end user.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve_erasures().await
}
