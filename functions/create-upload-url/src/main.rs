//! `POST /v1/files/upload-url` as a Lambda function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve(shared::api::Endpoint::FileUploadUrl).await
}
