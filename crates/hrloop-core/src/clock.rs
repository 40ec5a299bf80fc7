//! The injected clock: production reads the system time, tests and the simulator move a manual
//! clock forward so months pass in milliseconds.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from. Every component that asks for the time takes a `Clock`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the epoch on the machine's wall clock, for operational timing only: how
/// long a log has been quiet, how old a sealed segment is, the order segment files sort in. It
/// is the one read of the system time outside [`SystemClock`] (a tidy test checks), and it never
/// becomes a time stored with a decision, a row or a record: those come from a [`Clock`], so a
/// simulated month passes in milliseconds without these timers waiting a month.
pub fn wall_clock_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(t0);
        let other = clock.clone();
        assert_eq!(clock.now(), t0);
        other.advance(Duration::days(90));
        assert_eq!(clock.now(), t0 + Duration::days(90));
    }

    /// The Clock invariant, checked: outside this module no library or binary reads the system
    /// time (`Utc::now()`), so the simulator's manual clock governs every time hrloop stores.
    /// Test modules (from a file's `#[cfg(test)]` on) and `tests/` directories may.
    #[test]
    fn no_source_outside_the_clock_module_reads_the_system_time() {
        // The directory cargo runs the test from, not the one it was compiled in: a target
        // directory shared between clones (CI's cache) may hold a binary built elsewhere.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let crates = std::path::Path::new(&manifest).join("..");
        let mut found = Vec::new();
        let mut dirs: Vec<std::path::PathBuf> =
            std::fs::read_dir(&crates).unwrap().map(|e| e.unwrap().path().join("src")).collect();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("hrloop-core/src/clock.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate().take_while(|(_, l)| l.trim() != "#[cfg(test)]") {
                    if line.contains(&format!("Utc::{}()", "now")) {
                        found.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
        assert!(found.is_empty(), "take a Clock (or wall_clock_ms for operational timers): {found:#?}");
    }
}
