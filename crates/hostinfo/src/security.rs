//! SELinux state and SSH host key fingerprints.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// SELinux as the kernel runs it and as it is configured for the next boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selinux {
    /// `enforcing`, `permissive` or `disabled` (no selinuxfs mounted).
    pub mode: String,
    /// `SELINUX=` of `/etc/selinux/config`, if present.
    pub configured_mode: Option<String>,
    /// `SELINUXTYPE=`, the policy name (`default`, `targeted`).
    pub policy: Option<String>,
}

/// The SELinux policy of a system tree: its binary policy and file
/// contexts, what `setfiles -r ROOT -c POLICY FILE_CONTEXTS` labels it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFiles {
    /// The newest `policy.N` of the configured policy.
    pub policy: std::path::PathBuf,
    pub file_contexts: std::path::PathBuf,
}

/// The policy of the tree at `root` (`SELINUXTYPE=` of its
/// `/etc/selinux/config`, else `default`); `None` when it has no binary
/// policy or no file contexts.
pub fn policy_files(root: &Path) -> Option<PolicyFiles> {
    let config = std::fs::read_to_string(root.join("etc/selinux/config")).unwrap_or_default();
    let name = parse_selinux(None, &config)
        .policy
        .unwrap_or_else(|| "default".into());
    let dir = root.join("etc/selinux").join(name);
    let policy = std::fs::read_dir(dir.join("policy"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e
                .file_name()
                .to_str()?
                .strip_prefix("policy.")?
                .parse()
                .ok()?;
            Some((v, e.path()))
        })
        .max_by_key(|(v, _)| *v)?
        .1;
    let file_contexts = dir.join("contexts/files/file_contexts");
    file_contexts.is_file().then_some(PolicyFiles {
        policy,
        file_contexts,
    })
}

/// Builds [`Selinux`] from the contents of selinuxfs's `enforce` (None when not
/// mounted) and of `/etc/selinux/config`.
pub fn parse_selinux(enforce: Option<&str>, config: &str) -> Selinux {
    let mode = match enforce.map(str::trim) {
        Some("1") => "enforcing",
        Some("0") => "permissive",
        _ => "disabled",
    };
    let value = |key: &str| {
        config
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
    };
    Selinux {
        mode: mode.to_string(),
        configured_mode: value("SELINUX"),
        policy: value("SELINUXTYPE"),
    }
}

/// Reads SELinux state of the running host.
pub fn selinux() -> Selinux {
    let enforce = std::fs::read_to_string("/sys/fs/selinux/enforce").ok();
    let config = std::fs::read_to_string("/etc/selinux/config").unwrap_or_default();
    parse_selinux(enforce.as_deref(), &config)
}

/// The fingerprint of an SSH host key, as `ssh-keygen -l` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostKey {
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`.
    pub algorithm: String,
    /// `SHA256:…` (unpadded base64 of the SHA-256 of the key blob).
    pub fingerprint: String,
}

/// Parses one public key line (`TYPE BASE64 [COMMENT]`); None if it is not one.
pub fn parse_public_key(line: &str) -> Option<HostKey> {
    let mut f = line.split_whitespace();
    let algorithm = f.next()?;
    let blob = STANDARD.decode(f.next()?).ok()?;
    // The blob starts with the algorithm name as an SSH string; check it matches.
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    if blob.get(4..4 + len)? != algorithm.as_bytes() {
        return None;
    }
    let digest = Sha256::digest(&blob);
    Some(HostKey {
        algorithm: algorithm.to_string(),
        fingerprint: format!("SHA256:{}", STANDARD_NO_PAD.encode(digest)),
    })
}

/// Fingerprints of the host keys in `dir` (`ssh_host_*_key.pub`). Only public key
/// files are ever opened.
pub fn host_key_fingerprints(dir: &Path) -> Vec<HostKey> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key.pub"))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| parse_public_key(t.lines().next()?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_policy_of_the_configured_type_is_found() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        assert_eq!(policy_files(root), None);
        let t = root.join("etc/selinux/mls");
        std::fs::create_dir_all(t.join("policy")).unwrap();
        std::fs::create_dir_all(t.join("contexts/files")).unwrap();
        std::fs::write(
            root.join("etc/selinux/config"),
            "SELINUX=enforcing\nSELINUXTYPE=mls\n",
        )
        .unwrap();
        for f in ["policy/policy.9", "policy/policy.33", "policy/policy.x"] {
            std::fs::write(t.join(f), "").unwrap();
        }
        assert_eq!(policy_files(root), None, "no file contexts");
        std::fs::write(t.join("contexts/files/file_contexts"), "").unwrap();
        let p = policy_files(root).unwrap();
        assert_eq!(p.policy, t.join("policy/policy.33"));
        assert_eq!(p.file_contexts, t.join("contexts/files/file_contexts"));
    }

    #[test]
    fn selinux_modes() {
        let config = "# comment\nSELINUX=enforcing\nSELINUXTYPE=default\n";
        let s = parse_selinux(Some("1\n"), config);
        assert_eq!(s.mode, "enforcing");
        assert_eq!(s.configured_mode.as_deref(), Some("enforcing"));
        assert_eq!(s.policy.as_deref(), Some("default"));
        assert_eq!(parse_selinux(Some("0"), "").mode, "permissive");
        let off = parse_selinux(None, "");
        assert_eq!(off.mode, "disabled");
        assert_eq!(off.policy, None);
    }

    #[test]
    fn ed25519_fingerprint_matches_ssh_keygen() {
        // `ssh-keygen -lf` of this key printed SHA256:+nVJUuXssc/22U2JHeuCabcKKKgtUglq0bIvkxqd9RY
        let k =
            parse_public_key(include_str!("../tests/fixtures/ssh_host_ed25519_key.pub")).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(
            k.fingerprint,
            "SHA256:+nVJUuXssc/22U2JHeuCabcKKKgtUglq0bIvkxqd9RY"
        );
    }

    #[test]
    fn not_a_public_key() {
        for line in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 !!!notbase64",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKeBjJ1I6XJmlQ1ngudovUKM9WNS9TvzhEMGWCNaqepe",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ] {
            assert!(parse_public_key(line).is_none(), "{line}");
        }
    }

    #[test]
    fn only_public_key_files_are_read() {
        let dir = std::env::temp_dir().join(format!("hostinfo-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = include_str!("../tests/fixtures/ssh_host_ed25519_key.pub");
        std::fs::write(dir.join("ssh_host_ed25519_key.pub"), key).unwrap();
        std::fs::write(dir.join("ssh_host_ed25519_key"), key).unwrap();
        let keys = host_key_fingerprints(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(keys.len(), 1);
    }
}
