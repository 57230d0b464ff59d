//! `GET /v1/apps/annotation-reply/:action/status/:job_id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::api::Endpoint::AnnotationReplyStatus).await
}
