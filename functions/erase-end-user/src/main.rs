//! `DELETE /v1/end-users/{user}` as a Lambda function (a Colloquy extension): hides the end
//! user's conversations and stores the erasure, whose insert reaches `run-erasure`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), colloquy_lambda::Error> {
    colloquy_lambda::serve!(EraseEndUser).await
}
