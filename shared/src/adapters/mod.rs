//! Adapters: implementations of the ports.

#[cfg(feature = "bedrock")]
pub mod bedrock;
pub mod echo;
pub mod openai;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod system;
