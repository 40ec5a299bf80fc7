//! The store holds personal data, so nothing in it is for other users: hrloop creates files
//! 0600 and directories 0700, and says at start-up when something there is readable by others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{SMALL_DEMO, assert_owner_only, hrloop, run_ok};

#[test]
fn the_demo_leaves_nothing_in_the_store_that_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    // hrloop inherits the usual umask (022), whatever the test runner's.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let out = run_ok(hrloop(&store).args(SMALL_DEMO));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("readable by others"));
    // The decision log, protected attributes, the demo's raw exports and its key.
    for path in ["lake/decisions", "lake/protected_attributes", "inbox/sim-seed7/ats_applications.csv", "secrets"] {
        assert!(store.join(path).exists(), "{path}");
    }
    assert_owner_only(&store);
}

#[test]
fn a_store_others_can_read_is_named_when_a_command_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let export = store.join("inbox/sim/ats_applications.csv");
    std::fs::create_dir_all(export.parent().unwrap()).unwrap();
    std::fs::write(&export, "name;email\nAnna Svensson;anna@example.se\n").unwrap();
    let chmod = |path: &Path, mode: u32| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    for (path, mode) in
        [(&store, 0o755), (&store.join("inbox"), 0o755), (&store.join("inbox/sim"), 0o755), (&export, 0o644)]
    {
        chmod(path, mode);
    }
    let warning = || {
        let out = run_ok(hrloop(&store).args(["lake", "stats", "--json"]));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = warning();
    let root = store.canonicalize().unwrap();
    assert!(err.contains(&format!("readable by others in the store {}: ", root.display())), "{err}");
    assert!(err.contains("inbox/sim/ats_applications.csv (mode 644)"), "{err}");
    assert!(err.contains(&format!("chmod -R go= {}", root.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "one warning: {err}");

    for path in [store.join("inbox"), store.join("inbox/sim")] {
        chmod(&path, 0o700);
    }
    chmod(&export, 0o600);
    let err = warning();
    assert!(!err.contains("readable by others"), "{err}");
}
