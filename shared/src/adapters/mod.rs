//! Adapters: implementations of the ports.

#[cfg(feature = "bedrock")]
pub mod bedrock;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod echo;
pub mod fs_blobs;
pub mod openai;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod system;
