//! `GET /v1/messages/:id/suggested` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve_with_models(shared::api::Endpoint::SuggestedQuestions).await
}
