//! OpenSSH public keys: validating the engine's key, installing it for the SSH user,
//! and fingerprinting the node's own host key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use command::CommandExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fsutil::{read_optional, write_atomic};
use crate::{Error, Result, Sysroot};

/// Key types an engine may serve and `sshd` accepts in `authorized_keys`.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Host keys in the order the fingerprint is taken from: the engine's SSH client
/// offers ECDSA host-key algorithms before Ed25519 and RSA, so the key it will see
/// on first contact is the first one present in this list.
const HOST_KEYS: &[&str] = &[
    "/etc/ssh/ssh_host_ecdsa_key.pub",
    "/etc/ssh/ssh_host_ed25519_key.pub",
    "/etc/ssh/ssh_host_rsa_key.pub",
];

/// One OpenSSH public key, as found on one `authorized_keys` line without options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey {
    /// The key type, e.g. `ssh-rsa`.
    pub key_type: String,
    /// The decoded key blob.
    pub blob: Vec<u8>,
    /// The comment, e.g. `ovirt-engine`.
    pub comment: Option<String>,
}

impl SshPublicKey {
    /// Parses exactly one OpenSSH public key line; a single trailing newline (what
    /// engines before 4.4.5 send) is allowed, anything else around it is not.
    pub fn parse_line(text: &str) -> Result<Self, String> {
        let line = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if line.trim().is_empty() {
            return Err("the answer is empty".into());
        }
        if line.contains(['\n', '\r']) {
            return Err("the answer has more than one line".into());
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err("the answer has control characters".into());
        }
        let mut fields = line.split_whitespace();
        let key_type = fields.next().unwrap_or_default();
        if !KEY_TYPES.contains(&key_type) {
            return Err(format!("{key_type:?} is not an SSH public key type"));
        }
        let encoded = fields.next().ok_or("the key data is missing")?;
        let blob = STANDARD
            .decode(encoded)
            .map_err(|_| "the key data is not base64".to_string())?;
        let inner_type = read_ssh_string(&blob).ok_or("the key data is truncated")?;
        if inner_type != key_type.as_bytes() {
            return Err("the key data does not match its type".into());
        }
        let comment = fields.collect::<Vec<_>>().join(" ");
        Ok(Self {
            key_type: key_type.to_string(),
            blob,
            comment: (!comment.is_empty()).then_some(comment),
        })
    }

    /// The line to write into `authorized_keys`, without the newline.
    pub fn to_line(&self) -> String {
        let mut line = format!("{} {}", self.key_type, STANDARD.encode(&self.blob));
        if let Some(comment) = &self.comment {
            line.push(' ');
            line.push_str(comment);
        }
        line
    }

    /// The fingerprint `ssh-keygen -l` prints: `SHA256:` and unpadded base64 of the
    /// SHA-256 of the key blob.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }
}

/// The first length-prefixed string of an SSH wire-format blob.
fn read_ssh_string(blob: &[u8]) -> Option<&[u8]> {
    let len_bytes: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    blob.get(4..4usize.checked_add(len)?)
}

/// The fingerprint of the node's SSH host key (see `HOST_KEYS` for which one), or
/// `None` when the node has no host key yet.
pub fn host_key_fingerprint(sysroot: &Sysroot) -> Result<Option<String>> {
    for path in HOST_KEYS {
        let path = sysroot.path(path);
        if let Some(text) = read_optional(&path)? {
            let key =
                SshPublicKey::parse_line(text.trim_end()).map_err(|reason| Error::BadState {
                    path: path.clone(),
                    detail: format!("not an SSH public key: {reason}"),
                })?;
            return Ok(Some(key.fingerprint()));
        }
    }
    Ok(None)
}

/// A user from the node's passwd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory, as on the node.
    pub home: PathBuf,
}

impl SshUser {
    /// Looks `name` up in `SYSROOT/etc/passwd`.
    pub fn lookup(sysroot: &Sysroot, name: &str) -> Result<Self> {
        let passwd = sysroot.path("/etc/passwd");
        let text = read_optional(&passwd)?.unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                match f.as_slice() {
                    [user, _, uid, gid, _, home, ..] if *user == name => Some(Self {
                        name: name.to_string(),
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                        home: PathBuf::from(home),
                    }),
                    _ => None,
                }
            })
            .next()
            .ok_or_else(|| Error::UnknownUser {
                user: name.to_string(),
                passwd,
            })
    }
}

/// What [`install_authorized_key`] did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizedKeyChange {
    /// The `authorized_keys` file, as on the node.
    pub path: PathBuf,
    /// Whether the key was added (false: it was already there).
    pub added: bool,
    /// Whether the SELinux label was restored.
    pub relabelled: bool,
}

/// Adds `key` once to the `authorized_keys` of `user`: `~/.ssh` is made 0700 and the file
/// 0600, both owned by the user; an existing line with the same key is kept and no
/// duplicate is added; the file always ends with a newline. When SELinux is enabled and
/// `restorecon` exists, the labels of `~/.ssh` are restored.
pub fn install_authorized_key(
    sysroot: &Sysroot,
    user: &SshUser,
    key: &SshPublicKey,
) -> Result<AuthorizedKeyChange> {
    let node_dir = user.home.join(".ssh");
    let dir = sysroot.path(&node_dir);
    let file = dir.join("authorized_keys");
    let owner = Some((user.uid, user.gid));

    fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("setting the mode of", &dir, e))?;
    std::os::unix::fs::chown(&dir, owner.map(|o| o.0), owner.map(|o| o.1))
        .map_err(|e| Error::io("changing the owner of", &dir, e))?;

    let existing = read_optional(&file)?.unwrap_or_default();
    let present = existing.lines().any(|line| line_has_key(line, key));
    let mut contents = existing.clone();
    if !contents.is_empty() && !contents.ends_with('\n') {
        contents.push('\n');
    }
    if !present {
        contents.push_str(&key.to_line());
        contents.push('\n');
    }
    write_atomic(&file, contents.as_bytes(), 0o600, owner)?;
    let relabelled = restore_selinux_label(sysroot, &dir)?;
    Ok(AuthorizedKeyChange {
        path: node_dir.join("authorized_keys"),
        added: !present,
        relabelled,
    })
}

/// Whether an `authorized_keys` line (possibly with options) carries `key`.
fn line_has_key(line: &str, key: &SshPublicKey) -> bool {
    let encoded = STANDARD.encode(&key.blob);
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields
        .windows(2)
        .any(|w| w[0] == key.key_type && w[1] == encoded)
}

/// Runs `restorecon -R` on `dir` when SELinux is enabled on the node and the program
/// exists; returns whether it ran.
fn restore_selinux_label(sysroot: &Sysroot, dir: &Path) -> Result<bool> {
    if !sysroot.path("/sys/fs/selinux/enforce").exists() {
        return Ok(false);
    }
    let Some(program) = find_program(sysroot, "restorecon") else {
        return Ok(false);
    };
    Command::new(program)
        .arg("-R")
        .arg(dir)
        .stdin_closed()
        .c_locale()
        .run()?;
    Ok(true)
}

fn find_program(sysroot: &Sysroot, name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| sysroot.path(d).join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syntactically valid Ed25519 public key line with `seed` as key bytes.
    pub(crate) fn ed25519_line(seed: u8, comment: &str) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[seed; 32]);
        format!("ssh-ed25519 {} {comment}", STANDARD.encode(blob))
    }

    #[test]
    fn accepts_one_key_line_with_or_without_newline() {
        let line = ed25519_line(1, "ovirt-engine");
        for text in [line.clone(), format!("{line}\n"), format!("{line}\r\n")] {
            let key = SshPublicKey::parse_line(&text).unwrap();
            assert_eq!(key.key_type, "ssh-ed25519");
            assert_eq!(key.comment.as_deref(), Some("ovirt-engine"));
            assert_eq!(key.to_line(), line);
        }
    }

    #[test]
    fn rejects_what_is_not_one_key_line() {
        let line = ed25519_line(1, "ovirt-engine");
        let two = format!("{line}\n{line}\n");
        let html = "<html><head><title>Error</title></head><body>boom</body></html>".to_string();
        let mismatched = line.replacen("ssh-ed25519", "ssh-rsa", 1);
        let truncated = "ssh-ed25519 AAAA ovirt-engine".to_string();
        for bad in [
            String::new(),
            "\n".into(),
            two,
            html,
            mismatched,
            truncated,
            "ssh-ed25519".into(),
            "ssh-ed25519 !!notbase64!! x".into(),
            format!("command=\"/bin/sh\" {line}"),
        ] {
            assert!(SshPublicKey::parse_line(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fingerprint_matches_ssh_keygen_format() {
        let key = SshPublicKey::parse_line(&ed25519_line(7, "x")).unwrap();
        let fp = key.fingerprint();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), 7 + 43, "unpadded base64 of 32 bytes");
    }

    fn scratch_with_user(uid: u32) -> (tempfile::TempDir, Sysroot, SshUser) {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        fs::create_dir_all(root.path("/etc")).unwrap();
        fs::write(
            root.path("/etc/passwd"),
            format!("root:x:0:0:root:/root:/bin/bash\nadmin:x:{uid}:{uid}::/home/admin:/bin/sh\n"),
        )
        .unwrap();
        let user = SshUser::lookup(&root, "admin").unwrap();
        (dir, root, user)
    }

    #[test]
    fn looks_users_up_in_the_sysroot_passwd() {
        let (_d, root, user) = scratch_with_user(1000);
        assert_eq!(user.uid, 1000);
        assert_eq!(user.home, PathBuf::from("/home/admin"));
        assert!(matches!(
            SshUser::lookup(&root, "nobody"),
            Err(Error::UnknownUser { .. })
        ));
    }

    #[test]
    fn installs_once_with_modes_and_trailing_newline() {
        // Own the files as whoever runs the tests, so chown is permitted.
        use std::os::unix::fs::MetadataExt;
        let probe = tempfile::tempdir().unwrap();
        let mine = fs::metadata(probe.path()).unwrap();
        let (_d, root, mut user) = scratch_with_user(mine.uid());
        user.gid = mine.gid();
        let key = SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap();
        let dir = root.path("/home/admin/.ssh");
        fs::create_dir_all(&dir).unwrap();
        // An existing file without a final newline.
        fs::write(dir.join("authorized_keys"), ed25519_line(9, "other")).unwrap();

        let first = install_authorized_key(&root, &user, &key).unwrap();
        assert!(first.added);
        let second = install_authorized_key(&root, &user, &key).unwrap();
        assert!(!second.added);

        let text = fs::read_to_string(dir.join("authorized_keys")).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(text.matches(&key.to_line()).count(), 1);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("authorized_keys")), 0o600);
    }

    /// A sysroot with SELinux "enabled" and a stand-in `restorecon` that records its
    /// arguments, or fails when `fail` is set.
    fn selinux_scratch(fail: bool) -> (tempfile::TempDir, Sysroot, SshUser, PathBuf) {
        use std::os::unix::fs::MetadataExt;
        let (dir, root, mut user) = scratch_with_user(0);
        let me = fs::metadata(dir.path()).unwrap();
        (user.uid, user.gid) = (me.uid(), me.gid());
        fs::create_dir_all(root.path("/sys/fs/selinux")).unwrap();
        fs::write(root.path("/sys/fs/selinux/enforce"), "1").unwrap();
        let log = dir.path().join("restorecon.log");
        let script = if fail {
            "#!/bin/sh\necho \"restorecon: no policy loaded\" >&2\nexit 255\n".to_string()
        } else {
            format!("#!/bin/sh\necho \"$@\" > {}\n", log.display())
        };
        let program = root.path("/usr/sbin/restorecon");
        fs::create_dir_all(program.parent().unwrap()).unwrap();
        fs::write(&program, script).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        (dir, root, user, log)
    }

    #[test]
    fn restores_the_selinux_label_when_enabled() {
        let (_d, root, user, log) = selinux_scratch(false);
        let key = SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap();
        let change = install_authorized_key(&root, &user, &key).unwrap();
        assert!(change.relabelled);
        let args = fs::read_to_string(log).unwrap();
        assert_eq!(
            args.trim(),
            format!("-R {}", root.path("/home/admin/.ssh").display())
        );
    }

    #[test]
    fn a_failing_restorecon_names_its_command_line_and_stderr() {
        let (_d, root, user, _log) = selinux_scratch(true);
        let key = SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap();
        let err = install_authorized_key(&root, &user, &key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("restorecon -R"), "{err}");
        assert!(err.contains("no policy loaded"), "{err}");
    }

    #[test]
    fn no_relabel_without_selinux() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        assert!(!restore_selinux_label(&root, dir.path()).unwrap());
    }

    #[test]
    fn files_are_owned_by_the_ssh_user() {
        use std::os::unix::fs::MetadataExt;
        // Changing owners needs root.
        if !hvnode_testutil::require_root() {
            return;
        }
        let (_d, root, user) = scratch_with_user(4242);
        let key = SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap();
        install_authorized_key(&root, &user, &key).unwrap();
        for path in ["/home/admin/.ssh", "/home/admin/.ssh/authorized_keys"] {
            let meta = fs::metadata(root.path(path)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4242, 4242), "{path}");
        }
    }

    #[test]
    fn a_key_with_options_or_another_comment_counts_as_present() {
        let key = SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap();
        let other_comment = ed25519_line(3, "renamed");
        assert!(line_has_key(&other_comment, &key));
        assert!(line_has_key(&format!("no-pty {other_comment}"), &key));
        assert!(!line_has_key(&ed25519_line(4, "ovirt-engine"), &key));
    }

    #[test]
    fn host_key_fingerprint_prefers_ecdsa_then_ed25519() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        assert_eq!(host_key_fingerprint(&root).unwrap(), None);
        fs::create_dir_all(root.path("/etc/ssh")).unwrap();
        let line = ed25519_line(5, "root@node");
        fs::write(
            root.path("/etc/ssh/ssh_host_ed25519_key.pub"),
            format!("{line}\n"),
        )
        .unwrap();
        let expected = SshPublicKey::parse_line(&line).unwrap().fingerprint();
        assert_eq!(host_key_fingerprint(&root).unwrap(), Some(expected));
    }
}
