//! `POST /v1/apps/annotation-reply/:action` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_models(shared::api::Endpoint::AnnotationReply).await
}
