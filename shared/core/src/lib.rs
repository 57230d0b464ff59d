//! Colloquy's core: a Dify-compatible conversation and message service, without any store,
//! SDK or HTTP client (those live in the adapter crates that depend on this one).
//!
//! - [`domain`]: types that are valid by construction;
//! - [`ports`]: the traits storage, blobs, speech, language models, clock and ids implement;
//! - [`api`]: the framework-neutral HTTP layer with one endpoint table, and
//!   [`api::error`], the one mapping from failures to Dify's error bodies;
//! - [`admin`]: app and key management used by the command-line program;
//! - [`models`], [`speech`]: which language models and speech engines serve requests;
//! - [`settings`]: every setting, read once through one reader;
//! - [`system`]: the real clock and time-ordered ids.

pub mod admin;
pub mod api;
pub mod console;
pub mod domain;
pub mod erasure;
pub mod export;
pub mod logging;
pub mod models;
pub mod ports;
pub mod retention;
pub mod settings;
pub mod speech;
pub mod system;
