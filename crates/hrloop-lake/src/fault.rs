//! Crash points for tests: with `HRLOOP_FAULT=<name>` the process aborts at that point, as a
//! power cut or `kill -9` would stop it. Compiled in always so tests exercise the real binary.

pub fn hit(point: &str) {
    if std::env::var("HRLOOP_FAULT").is_ok_and(|v| v == point) {
        eprintln!("hrloop: injected crash at {point}");
        std::process::abort();
    }
}
