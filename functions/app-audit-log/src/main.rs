//! `GET /v1/app/audit-log` as a Lambda function (a Colloquy extension for operator keys).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(AppAuditLog).await
}
