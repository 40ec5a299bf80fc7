//! One module per subcommand.

pub mod audit;
pub mod calibrate;
pub mod demo;
pub mod experiments;
pub mod ingest;
pub mod insights;
pub mod lake;
pub mod milestones;
pub mod models;
pub mod pipelines;
pub mod privacy;
pub mod report;
pub mod serve;
pub mod simulate;
pub mod tokens;
pub mod train;
pub mod up;
pub mod validity;
