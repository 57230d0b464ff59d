//! Colloquy's common crate: a Dify-compatible conversation and message service.
//!
//! - [`domain`]: types that are valid by construction;
//! - [`ports`]: the traits storage, blobs, speech, language models, clock and ids implement;
//! - [`api`]: the framework-neutral HTTP layer with one route table;
//! - [`error`]: the one mapping from failures to Dify's error bodies;
//! - [`admin`]: app and key management used by the command-line program;
//! - [`models`], [`speech`]: which language models and speech engines serve requests;
//! - [`adapters`]: the embedded store, DynamoDB, S3, the model and speech providers.

pub mod adapters;
pub mod admin;
pub mod api;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod models;
pub mod ports;
pub mod speech;
