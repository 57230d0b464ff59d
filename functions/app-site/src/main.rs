//! `GET /v1/site` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(AppSite).await
}
