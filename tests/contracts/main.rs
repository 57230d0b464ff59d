//! Contract suites: one per port, each run against every adapter of that port — the embedded
//! store and DynamoDB Local for storage, the filesystem and moto's S3 for blobs — plus the
//! DynamoDB-only guarantees (request counts per page, tombstone delete and purge), and the AWS
//! speech adapters (Polly, Transcribe) on moto.

mod blobs;
mod dynamo;
mod speech;
mod store;
