//! The lake's integration tests: several writers at once, on a local store and on a real S3
//! server.

mod common;
mod concurrent_writers;
mod s3;
#[path = "../../../../tests/s3/seaweed.rs"]
mod seaweed;
