//! `PUT /v1/apps/annotations/:id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_models(shared::api::Endpoint::UpdateAnnotation).await
}
