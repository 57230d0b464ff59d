//! `PUT /v1/apps/annotations/:id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::api::Endpoint::UpdateAnnotation).await
}
