//! `GET /v1/apps/annotation-reply/:action/status/:job_id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(AnnotationReplyStatus).await
}
