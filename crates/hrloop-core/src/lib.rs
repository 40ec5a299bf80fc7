//! Domain types shared by every hrloop crate: people, decisions, hires, outcomes at their
//! milestones, and the injected [`Clock`]. No IO lives here.

pub mod clock;
pub mod domain;
pub mod milestones;

pub use clock::{Clock, ManualClock, SystemClock, wall_clock_ms};
pub use domain::*;
