//! `POST /v1/chat-messages/:task_id/stop` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::api::Endpoint::StopChatMessage).await
}
