//! `GET /v1/end-users/{user}/export` as a Lambda function (a Colloquy extension): the document
//! is buffered, up to what a Lambda response carries.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(ExportEndUser).await
}
