//! Adapters: implementations of the ports.

#[cfg(any(feature = "aws", feature = "bedrock"))]
pub mod aws_clients;
#[cfg(any(feature = "bedrock", feature = "aws-speech"))]
mod aws_errors;
#[cfg(feature = "bedrock")]
pub mod bedrock;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod echo;
pub mod fs_blobs;
pub mod local_speech;
pub mod openai;
pub mod openai_speech;
#[cfg(feature = "aws-speech")]
pub mod polly;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod system;
#[cfg(feature = "aws-speech")]
pub mod transcribe;
