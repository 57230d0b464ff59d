//! Adapters: implementations of the ports.

#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod system;
