//! Black-box HTTP tests: each module drives one route (or one cross-cutting rule) of the
//! real server started on a random port.

mod annotations;
mod app_feedbacks;
mod app_info;
mod audio;
mod auth;
mod chat;
mod chat_stream;
mod conversations;
mod delete_conversation;
mod delete_message;
mod erasure;
mod exports;
mod faults;
mod files;
mod handoff;
mod idempotency;
mod input;
mod interrupted;
mod inventory;
mod message_feedback;
mod messages;
mod operator;
mod organize;
mod pagination;
mod providers;
mod races;
mod rate_limit;
mod rename_conversation;
mod retention;
mod server;
mod speech_local;
mod stats;
mod suggested;
mod tree;
mod variables;
