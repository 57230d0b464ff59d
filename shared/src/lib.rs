//! Colloquy's common crate: a Dify-compatible conversation and message service.
//!
//! - [`domain`]: types that are valid by construction;
//! - [`ports`]: the traits storage, blobs, speech, language models, clock and ids implement;
//! - [`api`]: the framework-neutral HTTP layer with one route table;
//! - [`error`]: the one mapping from failures to Dify's error bodies;
//! - [`admin`]: app and key management used by the command-line program;
//! - [`adapters`]: the embedded store, the system clock, and (later) AWS services.

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
