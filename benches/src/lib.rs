//! Shared helpers for hrloop's benchmarks: child-process measurement (wall time and peak
//! resident memory via `wait4`) so every contender is measured the same way.

use std::process::Command;
use std::time::{Duration, Instant};

/// What one run of a contender cost.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
}

/// Run `cmd` to completion and measure it. Fails if it exits unsuccessfully.
#[allow(unsafe_code)]
pub fn measure(cmd: &mut Command) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, status and usage point to live locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    anyhow::ensure!(rc == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    anyhow::ensure!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed with status {status}");
    std::mem::forget(child);
    Ok(Measured { wall, max_rss: usage.ru_maxrss as u64 * 1024 })
}
