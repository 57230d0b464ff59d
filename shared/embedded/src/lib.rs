//! The embedded store of the local server: SQLite for data, a directory for files and
//! audio, and the speech engines that run on this machine. Implements the core's ports.

pub mod fs_blobs;
pub mod local_speech;
pub mod sqlite;
