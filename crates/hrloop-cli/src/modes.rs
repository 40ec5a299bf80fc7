//! Everything hrloop writes under the store is its owner's alone: pseudonyms and features in the
//! decision log, protected attributes, the audit trail, erasure records and the demo's raw exports
//! (names, e-mails, personnummer). The process umask makes every file 0600 and every directory
//! 0700, whichever crate creates it, so no create call can forget; and the first time a command
//! opens a local store it warns about anything in it that others can read.

use std::path::{Path, PathBuf};

/// From here on this process creates files 0600 and directories 0700.
pub fn owner_only() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// The repository's own configuration in its default store (`./data`): inputs under version
/// control, not data about people, so they keep the checkout's modes.
const CONFIG: [&str; 4] = ["README.md", "mappings", "retention.toml", "taxonomy"];

/// Paths the warning names; the rest are counted.
const NAMED: usize = 5;

/// Entries looked at before the walk gives up (a store made by an older hrloop is open to
/// others all the way down; naming a few and counting a good many is enough to act on).
const MOST_VISITED: usize = 20_000;

/// What in a store others can read or enter.
#[derive(Debug, Default)]
pub struct Exposed {
    /// The first few, with their permission bits.
    pub named: Vec<(PathBuf, u32)>,
    /// How many were found.
    pub count: usize,
    /// The walk stopped early: there may be more than `count`.
    pub partial: bool,
}

/// Entries under `root` (not `root` itself, whose mode is the operator's choice, nor the
/// configuration above) with any group or other permission. A directory others cannot enter
/// hides everything below it, so the walk only descends into directories that are open: on a
/// store hrloop created this reads the top level and nothing more, however big the lake.
#[cfg(unix)]
pub fn exposed(root: &Path) -> Exposed {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Exposed::default();
    let mut visited = 0;
    let mut open_dirs = vec![root.to_path_buf()];
    while let Some(dir) = open_dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if dir == root && CONFIG.iter().any(|c| entry.file_name() == *c) {
                continue;
            }
            visited += 1;
            if visited > MOST_VISITED {
                out.partial = true;
                return out;
            }
            // Not followed: a symlink's own mode means nothing and its target is elsewhere.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.count += 1;
                if out.named.len() < NAMED {
                    out.named.push((entry.path(), mode));
                }
            }
            if meta.is_dir() && mode & 0o011 != 0 {
                open_dirs.push(entry.path());
            }
        }
    }
    out
}

/// The warning for what [`exposed`] found, `None` when nothing is.
pub fn warning(root: &Path, exposed: &Exposed) -> Option<String> {
    if exposed.count == 0 {
        return None;
    }
    let mut text = exposed
        .named
        .iter()
        .map(|(path, mode)| format!("{} (mode {mode:o})", path.strip_prefix(root).unwrap_or(path).display()))
        .collect::<Vec<_>>()
        .join(", ");
    let more = exposed.count - exposed.named.len();
    if more > 0 || exposed.partial {
        text.push_str(&format!(" and {more}{} more", if exposed.partial { "+" } else { "" }));
    }
    let root = root.display();
    Some(format!("readable by others in the store {root}: {text}; it holds personal data: run `chmod -R go= {root}`"))
}

/// Warn (like the key check) about anything in the local store at `root` that others can read.
pub fn warn_if_exposed(root: &Path) {
    #[cfg(unix)]
    if let Some(text) = warning(root, &exposed(root)) {
        tracing::warn!("{text}");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn set(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn names_what_others_can_reach_and_skips_what_they_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lake/decisions")).unwrap();
        std::fs::create_dir_all(root.join("mappings")).unwrap();
        std::fs::create_dir_all(root.join("audit")).unwrap();
        for (path, mode) in [
            ("lake/decisions/part-1.parquet", 0o644),
            ("audit/trail.jsonl", 0o644),
            ("mappings/ats.toml", 0o644),
            ("retention.toml", 0o644),
        ] {
            std::fs::write(root.join(path), "x").unwrap();
            set(&root.join(path), mode);
        }
        set(&root.join("lake"), 0o755);
        set(&root.join("lake/decisions"), 0o700);
        // Nobody else can enter audit/: its 0644 file is out of reach.
        set(&root.join("audit"), 0o700);
        set(&root.join("mappings"), 0o755);
        let found = exposed(root);
        let names: Vec<_> = found.named.iter().map(|(p, m)| (p.strip_prefix(root).unwrap().to_owned(), *m)).collect();
        assert_eq!(names, [(PathBuf::from("lake"), 0o755)]);
        assert!(!found.partial);

        set(&root.join("lake/decisions"), 0o750);
        let found = exposed(root);
        assert_eq!(found.count, 3, "{:?}", found.named);
        let text = warning(root, &found).unwrap();
        assert!(text.contains("lake/decisions/part-1.parquet (mode 644)"), "{text}");
        assert!(text.contains("chmod -R go="), "{text}");

        set(&root.join("lake"), 0o700);
        set(&root.join("lake/decisions"), 0o700);
        assert!(warning(root, &exposed(root)).is_none());
    }

    #[test]
    fn the_warning_names_a_few_and_counts_the_rest() {
        let named = (0..NAMED).map(|i| (PathBuf::from(format!("/s/f{i}")), 0o644)).collect();
        let text = warning(Path::new("/s"), &Exposed { named, count: 12, partial: false }).unwrap();
        assert!(
            text.contains("in the store /s: f0 (mode 644), f1") && text.contains("f4 (mode 644) and 7 more"),
            "{text}"
        );
        assert!(warning(Path::new("/s"), &Exposed::default()).is_none());
    }
}
