//! OpenSSH public keys: validating the engine's key, installing it for the SSH user,
//! and fingerprinting the node's own host key.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use command::CommandExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fsutil::{Dir, create_dir_all, read_optional};
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
///
/// Root does this in a directory the user may change at any moment, so nothing below
/// the home is reached by path: `.ssh` is opened (or created) relative to the home
/// without following a symbolic link and must belong to the user or root;
/// `authorized_keys` is read the same way and must be a regular file with one link;
/// the new file is created exclusively under a random name, given its owner and mode
/// through its descriptor and renamed over the old one. A symbolic link, a file of the
/// wrong kind or a `.ssh` of another user is refused with [`Error::UnsafePath`], and
/// nothing is written, given away or read through it.
pub fn install_authorized_key(
    sysroot: &Sysroot,
    user: &SshUser,
    key: &SshPublicKey,
) -> Result<AuthorizedKeyChange> {
    let node_dir = user.home.join(".ssh");
    let home_path = sysroot.path(&user.home);
    // A missing home is made, owned by root: the user has no say in a path that
    // does not exist yet under directories only root may change.
    create_dir_all(&home_path)?;
    let home = Dir::open(&home_path)?;
    let dir = open_ssh_dir(&home, user)?;

    let existing = dir
        .read_optional("authorized_keys", "add the engine's SSH key to")?
        .unwrap_or_default();
    let present = existing.lines().any(|line| line_has_key(line, key));
    let mut contents = existing;
    if !contents.is_empty() && !contents.ends_with('\n') {
        contents.push('\n');
    }
    if !present {
        contents.push_str(&key.to_line());
        contents.push('\n');
    }
    dir.write_atomic(
        "authorized_keys",
        contents.as_bytes(),
        0o600,
        (user.uid, user.gid),
    )?;
    let relabelled = restore_selinux_label(sysroot, dir.path())?;
    Ok(AuthorizedKeyChange {
        path: node_dir.join("authorized_keys"),
        added: !present,
        relabelled,
    })
}

/// Opens `~/.ssh` of `user` through `home`, creating it when missing, and makes it
/// the user's with mode 0700. Refuses a symbolic link, anything but a directory and a
/// directory owned by anyone but the user or root.
fn open_ssh_dir(home: &Dir, user: &SshUser) -> Result<Dir> {
    const ACTION: &str = "install the engine's SSH key in";
    home.create_dir(".ssh", 0o700)?;
    let dir = home.open_dir(".ssh", ACTION)?;
    let owner = dir.metadata()?.uid();
    if owner != user.uid && owner != 0 {
        return Err(Error::UnsafePath {
            action: ACTION,
            path: dir.path().to_path_buf(),
            problem: format!(
                "it belongs to uid {owner}, neither to {} (uid {}) nor to root",
                user.name, user.uid
            ),
            remedy: format!(
                "check who made it; if it is {0}'s, give it to them (chown -R {0}: {1}), \
                 otherwise move it away; then register again",
                user.name,
                dir.path().display()
            ),
        });
    }
    dir.set_owner_and_mode((user.uid, user.gid), 0o700)?;
    Ok(dir)
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
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

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

    /// A scratch sysroot whose SSH user `admin` is uid and gid 4242 when the tests run
    /// as root (as in CI), so that giving the files away is checked, and the runner's
    /// own ids otherwise (only root may give files away).
    fn scratch_with_other_user() -> (tempfile::TempDir, Sysroot, SshUser) {
        use std::os::unix::fs::MetadataExt;
        let probe = tempfile::tempdir().unwrap();
        let me = fs::metadata(probe.path()).unwrap();
        if me.uid() == 0 {
            scratch_with_user(4242)
        } else {
            let (d, root, mut user) = scratch_with_user(me.uid());
            user.gid = me.gid();
            (d, root, user)
        }
    }

    /// A root-only file with a secret, standing for `/etc/shadow`.
    fn plant_victim_file(root: &Sysroot) -> PathBuf {
        let victim = root.path("/etc/shadow");
        fs::write(&victim, "root:$6$secret$hash:19000:0:99999:7:::\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o640)).unwrap();
        victim
    }

    /// Contents, mode and owner of a file, or names, mode and owner of a directory,
    /// without following a symbolic link at `path`.
    fn snapshot(path: &Path) -> (Vec<String>, u32, u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(path).unwrap();
        let contents = if meta.is_dir() {
            let mut names: Vec<String> = fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        } else if meta.file_type().is_symlink() {
            vec![fs::read_link(path).unwrap().display().to_string()]
        } else {
            vec![fs::read_to_string(path).unwrap()]
        };
        (contents, meta.mode(), meta.uid(), meta.gid())
    }

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        snapshot(dir).0
    }

    fn engine_key() -> SshPublicKey {
        SshPublicKey::parse_line(&ed25519_line(3, "ovirt-engine")).unwrap()
    }

    #[test]
    fn installs_for_the_user_with_modes_owner_and_other_keys_kept() {
        use std::os::unix::fs::MetadataExt;
        let (_d, root, user) = scratch_with_other_user();
        let home = root.path("/home/admin");
        fs::create_dir_all(&home).unwrap();
        let dir = home.join(".ssh");
        let file = dir.join("authorized_keys");
        let key = engine_key();

        // Nothing there yet: `.ssh` and the file are made.
        let change = install_authorized_key(&root, &user, &key).unwrap();
        assert!(change.added);
        assert_eq!(
            change.path,
            PathBuf::from("/home/admin/.ssh/authorized_keys")
        );
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            format!("{}\n", key.to_line())
        );
        for (path, mode) in [(&dir, 0o700), (&file, 0o600)] {
            let meta = fs::symlink_metadata(path).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{}", path.display());
            assert_eq!(
                (meta.uid(), meta.gid()),
                (user.uid, user.gid),
                "{}",
                path.display()
            );
        }

        // The user's own keys, the last without a newline, and a too open `.ssh`.
        let other = ed25519_line(9, "laptop");
        fs::write(&file, format!("{}\nno-pty {other}", key.to_line())).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let again = install_authorized_key(&root, &user, &key).unwrap();
        assert!(!again.added);
        let third = SshPublicKey::parse_line(&ed25519_line(4, "engine-2")).unwrap();
        assert!(install_authorized_key(&root, &user, &third).unwrap().added);

        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            format!("{}\nno-pty {other}\n{}\n", key.to_line(), third.to_line())
        );
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(names_in(&dir), ["authorized_keys"], "nothing left behind");
    }

    #[test]
    fn installs_for_root_in_its_own_home() {
        use std::os::unix::fs::MetadataExt;
        // The files go to uid 0.
        if !hvnode_testutil::require_root() {
            return;
        }
        let (_d, root, _user) = scratch_with_user(4242);
        let user = SshUser::lookup(&root, "root").unwrap();
        install_authorized_key(&root, &user, &engine_key()).unwrap();
        let file = root.path("/root/.ssh/authorized_keys");
        let meta = fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file());
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
        let dir = fs::symlink_metadata(root.path("/root/.ssh")).unwrap();
        assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o700));
    }

    #[test]
    fn refuses_an_ssh_dir_that_is_a_symbolic_link_and_leaves_its_target_alone() {
        let (_d, root, user) = scratch_with_other_user();
        let etc = root.path("/etc");
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o755)).unwrap();
        let before = snapshot(&etc);
        fs::create_dir_all(root.path("/home/admin")).unwrap();
        let link = root.path("/home/admin/.ssh");
        symlink(&etc, &link).unwrap();

        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Local);
        let text = err.to_string();
        for part in [
            format!(
                "refusing to install the engine's SSH key in {}",
                link.display()
            ),
            format!(
                "it is a symbolic link to {}, not a directory",
                etc.display()
            ),
            format!(
                "remove the symbolic link {} and register again",
                link.display()
            ),
        ] {
            assert!(text.contains(&part), "{text:?} lacks {part:?}");
        }
        assert_eq!(snapshot(&etc), before, "the link's target is untouched");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn refuses_an_ssh_dir_that_is_not_a_directory() {
        let (_d, root, user) = scratch_with_other_user();
        fs::create_dir_all(root.path("/home/admin")).unwrap();
        let path = root.path("/home/admin/.ssh");
        fs::write(&path, "not a directory").unwrap();
        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("it is a regular file, not a directory"),
            "{text}"
        );
        assert!(
            text.contains(&format!("move {} away", path.display())),
            "{text}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a directory");
    }

    #[test]
    fn refuses_an_ssh_dir_owned_by_another_user() {
        use std::os::unix::fs::MetadataExt;
        // Making a directory another user's needs root.
        if !hvnode_testutil::require_root() {
            return;
        }
        let (_d, root, user) = scratch_with_user(4242);
        let dir = root.path("/home/admin/.ssh");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(4343), Some(4343)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let before = snapshot(&dir);

        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("it belongs to uid 4343"), "{text}");
        assert!(text.contains("chown -R admin:"), "{text}");
        assert_eq!(snapshot(&dir), before, "owner, mode and entries unchanged");
        assert_eq!(fs::metadata(&dir).unwrap().uid(), 4343);
    }

    #[test]
    fn refuses_an_authorized_keys_that_is_a_symbolic_link_and_leaves_its_target_alone() {
        let (_d, root, user) = scratch_with_other_user();
        let victim = plant_victim_file(&root);
        let before = snapshot(&victim);
        let dir = root.path("/home/admin/.ssh");
        fs::create_dir_all(&dir).unwrap();
        let link = dir.join("authorized_keys");
        symlink(&victim, &link).unwrap();

        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        let text = err.to_string();
        for part in [
            format!("refusing to add the engine's SSH key to {}", link.display()),
            format!(
                "it is a symbolic link to {}, not a regular file",
                victim.display()
            ),
            format!(
                "remove the symbolic link {} and register again",
                link.display()
            ),
        ] {
            assert!(text.contains(&part), "{text:?} lacks {part:?}");
        }
        assert_eq!(snapshot(&victim), before, "the link's target is untouched");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(names_in(&dir), ["authorized_keys"], "no copy of the target");
    }

    #[test]
    fn refuses_an_authorized_keys_with_another_hard_link() {
        let (_d, root, user) = scratch_with_other_user();
        let victim = plant_victim_file(&root);
        let before = snapshot(&victim);
        let dir = root.path("/home/admin/.ssh");
        fs::create_dir_all(&dir).unwrap();
        fs::hard_link(&victim, dir.join("authorized_keys")).unwrap();

        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert!(err.to_string().contains("it has 2 hard links"), "{err}");
        assert_eq!(snapshot(&victim), before);
        assert_eq!(
            names_in(&dir),
            ["authorized_keys"],
            "no copy of its contents"
        );
    }

    #[test]
    fn refuses_an_authorized_keys_that_is_not_a_regular_file() {
        let (_d, root, user) = scratch_with_other_user();
        let dir = root.path("/home/admin/.ssh");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("authorized_keys");
        // A named pipe is refused without waiting for a writer.
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(
            err.to_string()
                .contains("it is a named pipe, not a regular file"),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let err = install_authorized_key(&root, &user, &engine_key()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("it is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn a_link_planted_at_a_temporary_name_is_never_followed() {
        // Earlier versions wrote through `.authorized_keys.partial<pid>`, opened
        // without O_EXCL: a link planted there, to an existing file or to a file
        // yet to be made, was followed, and the target given the user's contents
        // and ownership.
        for existing in [true, false] {
            let (_d, root, user) = scratch_with_other_user();
            let victim = if existing {
                plant_victim_file(&root)
            } else {
                root.path("/etc/cron.d/planted")
            };
            fs::create_dir_all(root.path("/etc/cron.d")).unwrap();
            let cron_before = snapshot(&root.path("/etc/cron.d"));
            let victim_before = existing.then(|| snapshot(&victim));
            let dir = root.path("/home/admin/.ssh");
            fs::create_dir_all(&dir).unwrap();
            let own = ed25519_line(9, "laptop");
            fs::write(dir.join("authorized_keys"), format!("{own}\n")).unwrap();
            let planted = format!(".authorized_keys.partial{}", std::process::id());
            symlink(&victim, dir.join(&planted)).unwrap();

            let key = engine_key();
            install_authorized_key(&root, &user, &key).unwrap();

            if let Some(before) = victim_before {
                assert_eq!(snapshot(&victim), before, "the link's target is untouched");
            } else {
                assert!(fs::symlink_metadata(&victim).is_err(), "no file was made");
            }
            assert_eq!(snapshot(&root.path("/etc/cron.d")), cron_before);
            let link = fs::symlink_metadata(dir.join(&planted)).unwrap();
            assert!(
                link.file_type().is_symlink(),
                "the planted link is left as is"
            );
            let file = dir.join("authorized_keys");
            assert!(fs::symlink_metadata(&file).unwrap().is_file());
            assert_eq!(
                fs::read_to_string(&file).unwrap(),
                format!("{own}\n{}\n", key.to_line())
            );
            let mut expected = vec!["authorized_keys".to_string(), planted];
            expected.sort();
            assert_eq!(names_in(&dir), expected, "nothing else left behind");
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
