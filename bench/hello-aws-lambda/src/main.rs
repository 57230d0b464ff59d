//! The hello-world function with an AWS SDK configuration and a DynamoDB client built at start,
//! with the SDK's defaults: its TLS roots are the host's trust store, read at start. The
//! functions build the same on compiled-in roots (`colloquy_aws::trust`), so this is the
//! reference for what the host's store costs, not their floor any more.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let client = &client;
    lambda_http::run(service_fn(move |_: Request| async move {
        let region = client.config().region().map(ToString::to_string).unwrap_or_default();
        Ok::<_, Error>(Response::new(Body::Text(format!("hello from {region}"))))
    }))
    .await
}
