//! `POST /v1/conversations/:id/name` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_models(shared::api::Endpoint::RenameConversation).await
}
