//! `PUT|PATCH /v1/conversations/:id/variables/:variable_id` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::api::Endpoint::UpdateConversationVariable).await
}
