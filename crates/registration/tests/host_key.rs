//! The `sshKeyFingerprint` sent is what `ssh-keygen -l` prints for the node's host key,
//! for every host key type a node has. Skipped where `ssh-keygen` is missing, a
//! failure in CI (`hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::process::Command;

use command::CommandExt;
use registration::{Sysroot, host_key_fingerprint};

#[test]
fn matches_ssh_keygen_for_each_key_type_in_preference_order() {
    if !hvnode_testutil::require_tool("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Sysroot::new(dir.path());
    let ssh = root.path("/etc/ssh");
    fs::create_dir_all(&ssh).unwrap();
    // Added in reverse preference order: each new key must take over.
    for (kind, bits) in [("rsa", "3072"), ("ed25519", "256"), ("ecdsa", "256")] {
        let key = ssh.join(format!("ssh_host_{kind}_key"));
        Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-t", kind, "-b", bits, "-f"])
            .arg(&key)
            .run()
            .unwrap();
        let listed = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .run_capture()
            .unwrap();
        let expected = listed.split_whitespace().nth(1).unwrap().to_string();
        assert!(expected.starts_with("SHA256:"), "{listed}");
        assert_eq!(
            host_key_fingerprint(&root).unwrap(),
            Some(expected),
            "{kind}"
        );
    }
}
