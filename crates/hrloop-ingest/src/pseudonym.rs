//! Keyed HMAC-SHA256 pseudonyms. Without the key, a pseudonym cannot be linked back to the
//! person; with it, the same person always gets the same pseudonym (so outcomes join decisions),
//! and erasure can find every row about a person from their external id.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Error, Result, parse};

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Where the pseudonymisation key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A file holding the key as hex (or raw bytes), readable by its owner only.
    File(PathBuf),
    /// The key itself, hex, e.g. from `HRLOOP_PSEUDONYM_KEY`.
    Hex(String),
    /// Demo mode: use the key file, creating a random one (mode 0600) if it does not exist.
    DemoFile(PathBuf),
}

#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(<key>)")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::Key(format!(
                "pseudonymisation key is {} bytes; at least {MIN_KEY_BYTES} are required",
                key.len()
            )));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| Error::Key(e.to_string()))?;
        Ok(Self { mac })
    }

    pub fn load(source: &KeySource) -> Result<Self> {
        match source {
            KeySource::Hex(hex_key) => {
                let key = hex::decode(hex_key.trim())
                    .map_err(|_| Error::Key("HRLOOP_PSEUDONYM_KEY must be hex (e.g. `openssl rand -hex 32`)".into()))?;
                Self::new(&key)
            }
            KeySource::File(path) => Self::new(&read_key_file(path)?),
            KeySource::DemoFile(path) => {
                if !path.exists() {
                    create_demo_key(path)?;
                }
                Self::new(&read_key_file(path)?)
            }
        }
    }

    /// The pseudonym of `value` in `namespace` (candidate, employee, ...): `p` + 32 hex digits
    /// (the first 128 bits of HMAC-SHA256(key, namespace 0x1f value)). Surrounding white space
    /// and byte-order marks are ignored ([`parse::clean`]) so " E123" and "E123" are the same
    /// person.
    pub fn pseudonym(&self, namespace: &str, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(namespace.as_bytes());
        mac.update(&[0x1f]);
        mac.update(parse::clean(value).as_bytes());
        let out = mac.finalize().into_bytes();
        let mut s = String::with_capacity(33);
        s.push('p');
        s.push_str(&hex::encode(&out[..16]));
        s
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| Error::Key(format!("cannot read key file {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Key(format!(
                "key file {} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
    }
    let raw = std::fs::read(path).map_err(|e| Error::Key(format!("cannot read key file {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&raw);
    match hex::decode(text.trim()) {
        Ok(k) => Ok(k),
        Err(_) => Ok(raw),
    }
}

fn create_demo_key(path: &Path) -> Result<()> {
    use rand::Rng;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Key(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => {
            return Err(Error::Key(format!("cannot create demo key {}: {e}", path.display())));
        }
    };
    use std::io::Write;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::Key(format!("cannot write demo key {}: {e}", path.display())))?;
    tracing::warn!(path = %path.display(), "created a demo pseudonymisation key; production needs a managed key");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_namespaced() {
        let a = Pseudonymiser::new(&[7u8; 32]).unwrap();
        let b = Pseudonymiser::new(&[8u8; 32]).unwrap();
        assert_eq!(a.pseudonym("employee", "E1001"), a.pseudonym("employee", " E1001 "));
        assert_ne!(a.pseudonym("employee", "E1001"), b.pseudonym("employee", "E1001"));
        assert_ne!(a.pseudonym("employee", "E1001"), a.pseudonym("candidate", "E1001"));
        let p = a.pseudonym("employee", "E1001");
        assert_eq!(p.len(), 33);
        assert!(!p.contains("E1001"));
    }

    #[test]
    fn short_keys_and_missing_files_are_refused() {
        assert!(Pseudonymiser::new(b"short").is_err());
        let err = Pseudonymiser::load(&KeySource::File("/nonexistent/key".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key"), "{err}");
        assert!(Pseudonymiser::load(&KeySource::Hex("zz".into())).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn demo_key_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/pseudonym.key");
        let p1 = Pseudonymiser::load(&KeySource::DemoFile(path.clone())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let p2 = Pseudonymiser::load(&KeySource::File(path.clone())).unwrap();
        assert_eq!(p1.pseudonym("x", "1"), p2.pseudonym("x", "1"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Pseudonymiser::load(&KeySource::File(path)).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
