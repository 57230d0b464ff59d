//! The console's page and files (`GET /console/…`, a Colloquy extension): compiled in, served
//! without settings, a store or any AWS client.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve_console().await
}
