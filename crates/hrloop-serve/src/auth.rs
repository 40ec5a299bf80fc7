//! Bearer tokens and roles. `hrloop tokens add NAME --role ROLE` prints a token once; the
//! token file (`<store>/secrets/tokens.json`, mode 0600) keeps only its SHA-256.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Recruiter,
    HrViewer,
    DataTeam,
    OnCall,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Recruiter, Role::HrViewer, Role::DataTeam, Role::OnCall, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Recruiter => "recruiter",
            Role::HrViewer => "hr_viewer",
            Role::DataTeam => "data_team",
            Role::OnCall => "on_call",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use recruiter, hr_viewer, data_team, on_call or admin"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

/// The token file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    pub fn in_store(root: &Path) -> Self {
        Self { path: root.join("secrets").join("tokens.json") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn list(&self) -> std::io::Result<Vec<TokenEntry>> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn save(&self, entries: &[TokenEntry]) -> std::io::Result<()> {
        let dir = self.path.parent().expect("has a parent");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tokens-{}.json", uuid::Uuid::new_v4()));
        {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp)?;
            std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }

    /// Create a token; returns it (shown once, never stored).
    pub fn add(&self, name: &str, role: Role, now: DateTime<Utc>) -> std::io::Result<String> {
        let mut entries = self.list()?;
        if entries.iter().any(|e| e.name == name && !e.revoked) {
            return Err(std::io::Error::other(format!("a token named {name:?} exists; revoke it first")));
        }
        let mut raw = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut raw);
        let token = format!("hrl_{}", hex::encode(raw));
        entries.push(TokenEntry { name: name.into(), role, sha256: digest(&token), created_at: now, revoked: false });
        self.save(&entries)?;
        Ok(token)
    }

    pub fn revoke(&self, name: &str) -> std::io::Result<bool> {
        let mut entries = self.list()?;
        let mut hit = false;
        for e in entries.iter_mut().filter(|e| e.name == name && !e.revoked) {
            e.revoked = true;
            hit = true;
        }
        self.save(&entries)?;
        Ok(hit)
    }

    pub fn load(&self) -> std::io::Result<Tokens> {
        Ok(Tokens(self.list()?.into_iter().filter(|e| !e.revoked).map(|e| (e.sha256, (e.name, e.role))).collect()))
    }
}

/// The token file as the server sees it: re-read whenever the file changed, checked on every
/// request (a `stat`, no file descriptor), so `hrloop tokens add` and `revoke` take effect
/// at the next request, not at some later poll.
#[derive(Debug)]
pub struct LiveTokens {
    store: TokenStore,
    /// The file's identity when last read (inode, modification time, size), and its tokens.
    seen: arc_swap::ArcSwap<(Option<FileStamp>, Tokens)>,
    reload: std::sync::Mutex<()>,
}

/// What changes when the token file is replaced (every save writes a new file and renames it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

fn stamp(path: &Path) -> std::io::Result<Option<FileStamp>> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileStamp {
            ino: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            len: m.len(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LiveTokens {
    pub fn open(store: TokenStore) -> std::io::Result<LiveTokens> {
        let seen = (stamp(store.path())?, store.load()?);
        Ok(LiveTokens { store, seen: arc_swap::ArcSwap::from_pointee(seen), reload: std::sync::Mutex::new(()) })
    }

    /// The tokens valid now. If the file cannot be read (mid-replacement it always can: the
    /// rename is atomic), the last tokens read stay in force and the error is logged.
    fn current(&self) -> Arc<(Option<FileStamp>, Tokens)> {
        let seen = self.seen.load_full();
        let now = match stamp(self.store.path()) {
            Ok(now) if now == seen.0 => return seen,
            Ok(now) => now,
            Err(e) => {
                tracing::error!(error = %e, "cannot check the token file; the tokens read before stay in force");
                return seen;
            }
        };
        let _one_reload = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        let again = self.seen.load_full();
        if again.0 == now {
            return again;
        }
        match self.store.load() {
            Ok(tokens) => {
                let fresh = Arc::new((now, tokens));
                self.seen.store(fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the token file; the tokens read before stay in force");
                again
            }
        }
    }

    /// Who an `Authorization` header belongs to, by the token file as it is now.
    pub fn identify(&self, header: Option<&str>) -> Option<(String, Role)> {
        self.current().1.identify(header)
    }
}

/// Valid tokens by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<String, (String, Role)>);

impl Tokens {
    /// Who an `Authorization` header belongs to.
    pub fn identify(&self, header: Option<&str>) -> Option<(String, Role)> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        self.0.get(&digest(token)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_and_revoked_tokens_take_effect_at_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_store(dir.path());
        let live = LiveTokens::open(store.clone()).unwrap();
        let header = |t: &str| format!("Bearer {t}");
        let at = DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z").unwrap().with_timezone(&Utc);
        // Many times in a row, with no pause: never a window where the change is not seen.
        for i in 0..50 {
            let name = format!("ats-{i}");
            let t = store.add(&name, Role::Recruiter, at).unwrap();
            assert_eq!(live.identify(Some(&header(&t))), Some((name.clone(), Role::Recruiter)), "added #{i}");
            assert!(store.revoke(&name).unwrap());
            assert_eq!(live.identify(Some(&header(&t))), None, "revoked #{i}");
        }
    }

    #[test]
    fn tokens_are_shown_once_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_store(dir.path());
        let t = store.add("ats", Role::Recruiter, Utc::now()).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&t), "the file keeps only the hash");
        let tokens = store.load().unwrap();
        assert_eq!(tokens.identify(Some(&format!("Bearer {t}"))), Some(("ats".into(), Role::Recruiter)));
        assert_eq!(tokens.identify(Some("Bearer nope")), None);
        assert_eq!(tokens.identify(None), None);
        assert!(store.add("ats", Role::Admin, Utc::now()).is_err());
        assert!(store.revoke("ats").unwrap());
        assert_eq!(store.load().unwrap().identify(Some(&format!("Bearer {t}"))), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
