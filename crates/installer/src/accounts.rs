//! Users and groups of the installed system, written straight into its
//! `passwd`, `group`, `shadow` and `gshadow`, the way `useradd` and
//! `groupadd` would on Debian (login.defs: users and their private groups
//! from 1000 up, system groups from 999 down).
//!
//! The installer does not run `useradd -R` / `groupadd -R`: under the live
//! system's SELinux policy they run confined (useradd_t, groupadd_t) and
//! may not write the mounted target's `/etc` ("failure while writing
//! changes to /etc/group"). The files are relabelled with the target's
//! policy at the end of the install.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// First and last ID of users and their groups, and of system groups.
const UID_MIN: u32 = 1000;
const UID_MAX: u32 = 60000;
const SYS_GID_MIN: u32 = 100;
const SYS_GID_MAX: u32 = 999;

/// A user to add (the kickstart's `user`).
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub uid: Option<u32>,
    /// The primary group's GID (a private group of the user's name).
    pub gid: Option<u32>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    /// Supplementary groups, which must exist.
    pub groups: Vec<String>,
}

/// The four account files, as lines.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    passwd: Vec<String>,
    group: Vec<String>,
    shadow: Vec<String>,
    gshadow: Vec<String>,
    /// Days since 1970 (the shadow file's "last change").
    today: u64,
}

const FILES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

fn field(line: &str, n: usize) -> Option<&str> {
    line.split(':').nth(n)
}

fn ids(lines: &[String], n: usize) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| field(l, n)?.parse().ok())
        .collect()
}

/// Adds `member` to the member list (field `n`) of group `group`'s line.
fn add_member(lines: &mut [String], group: &str, n: usize, member: &str) -> bool {
    for l in lines.iter_mut() {
        let mut f: Vec<String> = l.split(':').map(String::from).collect();
        if f.first().map(String::as_str) != Some(group) {
            continue;
        }
        while f.len() <= n {
            f.push(String::new());
        }
        let mut members: Vec<&str> = f[n].split(',').filter(|m| !m.is_empty()).collect();
        if !members.contains(&member) {
            members.push(member);
        }
        f[n] = members.join(",");
        *l = f.join(":");
        return true;
    }
    false
}

impl Accounts {
    /// Reads the account files of the system at `root`.
    pub fn load(root: &Path) -> Result<Accounts> {
        let read = |f: &str| -> Result<Vec<String>> {
            let p = root.join(f);
            Ok(fs::read_to_string(&p)
                .with_context(|| format!("reading the installed system's /{f}"))?
                .lines()
                .map(String::from)
                .collect())
        };
        let today = hostinfo::units::days_since_epoch(hostinfo::now_unix());
        Ok(Accounts {
            passwd: read(FILES[0])?,
            group: read(FILES[1])?,
            shadow: read(FILES[2])?,
            gshadow: read(FILES[3])?,
            today,
        })
    }

    /// Writes the four files back, each through a temporary file with the
    /// old file's mode and owner (`shadow` stays root:shadow 0640).
    pub fn save(&self, root: &Path) -> Result<()> {
        for (f, lines) in FILES
            .iter()
            .zip([&self.passwd, &self.group, &self.shadow, &self.gshadow])
        {
            let path = root.join(f);
            let meta = fs::metadata(&path).with_context(|| format!("reading /{f}"))?;
            let tmp = path.with_extension("hvnode-new");
            let mut text = lines.join("\n");
            text.push('\n');
            fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))?;
            fs::rename(&tmp, &path).with_context(|| format!("replacing /{f}"))?;
        }
        Ok(())
    }

    /// `/etc/group` as text (what [`crate::target::missing_groups`] reads).
    pub fn group_lines(&self) -> String {
        self.group.join("\n")
    }

    pub fn has_user(&self, name: &str) -> bool {
        self.passwd.iter().any(|l| field(l, 0) == Some(name))
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.group.iter().any(|l| field(l, 0) == Some(name))
    }

    /// The GID of group `name`.
    pub fn gid(&self, name: &str) -> Option<u32> {
        self.group
            .iter()
            .find(|l| field(l, 0) == Some(name))
            .and_then(|l| field(l, 2)?.parse().ok())
    }

    /// `uid`, `gid` and home of user `name`.
    pub fn user(&self, name: &str) -> Option<(u32, u32, String)> {
        let l = self.passwd.iter().find(|l| field(l, 0) == Some(name))?;
        Some((
            field(l, 2)?.parse().ok()?,
            field(l, 3)?.parse().ok()?,
            field(l, 5)?.to_string(),
        ))
    }

    /// Adds group `name` (GID `gid`, else the next free one: a system
    /// group's from 999 down, another's from 1000 up); returns its GID.
    pub fn add_group(&mut self, name: &str, gid: Option<u32>, system: bool) -> Result<u32> {
        if self.has_group(name) {
            bail!("the group {name} already exists in the image");
        }
        let taken = ids(&self.group, 2);
        let gid = match gid {
            Some(g) if taken.contains(&g) => {
                bail!("GID {g} for the group {name} is already taken in the image")
            }
            Some(g) => g,
            None if system => (SYS_GID_MIN..=SYS_GID_MAX)
                .rev()
                .find(|g| !taken.contains(g))
                .context("no free system GID left (100-999)")?,
            None => (UID_MIN..=UID_MAX)
                .find(|g| !taken.contains(g))
                .context("no free GID left (1000-60000)")?,
        };
        self.group.push(format!("{name}:x:{gid}:"));
        self.gshadow.push(format!("{name}:!::"));
        Ok(gid)
    }

    /// Adds a user with a private group of its name and a locked password
    /// (`!`, as useradd leaves it); returns its UID and GID. Its home is
    /// made by [`make_home`].
    pub fn add_user(&mut self, u: &NewUser) -> Result<(u32, u32)> {
        if self.has_user(&u.name) {
            bail!("the user {} already exists in the image", u.name);
        }
        for g in &u.groups {
            if !self.has_group(g) {
                bail!("user {}: there is no group {g}", u.name);
            }
        }
        let uids = ids(&self.passwd, 2);
        let gids = ids(&self.group, 2);
        let uid = match u.uid {
            Some(id) if uids.contains(&id) => {
                bail!("UID {id} for the user {} is already taken", u.name)
            }
            Some(id) => id,
            // As useradd: the lowest UID free for the user and, when it
            // can, for its group too.
            None => (UID_MIN..=UID_MAX)
                .find(|i| !uids.contains(i) && (u.gid.is_some() || !gids.contains(i)))
                .or_else(|| (UID_MIN..=UID_MAX).find(|i| !uids.contains(i)))
                .context("no free UID left (1000-60000)")?,
        };
        let gid = if self.has_group(&u.name) {
            bail!(
                "a group named {} already exists in the image; choose another user name",
                u.name
            );
        } else {
            let want = u.gid.or((!gids.contains(&uid)).then_some(uid));
            self.add_group(&u.name, want, false)?
        };
        let home = u
            .home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", u.name));
        let shell = u.shell.clone().unwrap_or_else(|| "/bin/bash".into());
        let gecos = u.gecos.clone().unwrap_or_default();
        if [&u.name, &home, &shell, &gecos]
            .iter()
            .any(|s| s.contains([':', '\n']))
        {
            bail!(
                "user {}: a name, home, shell or GECOS field may not hold ':' or a line break",
                u.name
            );
        }
        self.passwd
            .push(format!("{}:x:{uid}:{gid}:{gecos}:{home}:{shell}", u.name));
        self.shadow
            .push(format!("{}:!:{}:0:99999:7:::", u.name, self.today));
        for g in &u.groups {
            add_member(&mut self.group, g, 3, &u.name);
            add_member(&mut self.gshadow, g, 3, &u.name);
        }
        Ok((uid, gid))
    }
}

/// Makes the home `home` (a path in the installed system) of a new user
/// from `/etc/skel`, owned by them, mode 0700.
pub fn make_home(root: &Path, home: &str, uid: u32, gid: u32) -> Result<()> {
    let dir = layers::under(root, home);
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    copy_skel(&root.join("etc/skel"), &dir, uid, gid)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    Ok(())
}

fn copy_skel(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<()> {
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for e in entries {
        let e = e?;
        let dest = to.join(e.file_name());
        let kind = e.file_type()?;
        if kind.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_skel(&e.path(), &dest, uid, gid)?;
        } else if kind.is_file() {
            fs::copy(e.path(), &dest).with_context(|| format!("copying {}", e.path().display()))?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dest, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let etc = t.path().join("etc");
        fs::create_dir_all(etc.join("skel")).unwrap();
        fs::write(etc.join("skel/.bashrc"), "# bash\n").unwrap();
        fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n",
        )
        .unwrap();
        fs::write(
            etc.join("group"),
            "root:x:0:\nsudo:x:27:\nkvm:x:108:libvirt-qemu\nlibvirt:x:999:\n",
        )
        .unwrap();
        fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        fs::write(
            etc.join("gshadow"),
            "root:*::\nsudo:*::\nkvm:*::libvirt-qemu\nlibvirt:!::\n",
        )
        .unwrap();
        fs::set_permissions(etc.join("shadow"), fs::Permissions::from_mode(0o640)).unwrap();
        t
    }

    fn read(t: &tempfile::TempDir, f: &str) -> String {
        fs::read_to_string(t.path().join(f)).unwrap()
    }

    #[test]
    fn an_admin_gets_a_private_group_the_next_ids_and_wheel() {
        let t = sample();
        let mut a = Accounts::load(t.path()).unwrap();
        let wheel = a.add_group("wheel", None, true).unwrap();
        assert_eq!(wheel, 998, "system groups count down from 999 (taken)");
        let (uid, gid) = a
            .add_user(&NewUser {
                name: "admin".into(),
                groups: vec!["wheel".into(), "kvm".into()],
                ..NewUser::default()
            })
            .unwrap();
        assert_eq!((uid, gid), (1000, 1000));
        a.save(t.path()).unwrap();
        assert!(read(&t, "etc/passwd").ends_with("admin:x:1000:1000::/home/admin:/bin/bash\n"));
        let group = read(&t, "etc/group");
        assert!(group.contains("\nwheel:x:998:admin\n"), "{group}");
        assert!(
            group.contains("\nkvm:x:108:libvirt-qemu,admin\n"),
            "{group}"
        );
        assert!(group.ends_with("\nadmin:x:1000:\n"), "{group}");
        let gshadow = read(&t, "etc/gshadow");
        assert!(gshadow.contains("\nwheel:!::admin\n"), "{gshadow}");
        assert!(read(&t, "etc/shadow").contains("\nadmin:!:"));
        let mode = fs::metadata(t.path().join("etc/shadow")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640, "the shadow file keeps its mode");
    }

    #[test]
    fn asked_ids_are_kept_and_taken_ones_refused() {
        let t = sample();
        let mut a = Accounts::load(t.path()).unwrap();
        assert_eq!(a.add_group("ops", Some(2000), false).unwrap(), 2000);
        let e = a
            .add_group("ops2", Some(27), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("GID 27"), "{e}");
        let (uid, gid) = a
            .add_user(&NewUser {
                name: "alice".into(),
                uid: Some(1500),
                shell: Some("/bin/sh".into()),
                home: Some("/srv/alice".into()),
                gecos: Some("Alice".into()),
                ..NewUser::default()
            })
            .unwrap();
        assert_eq!((uid, gid), (1500, 1500));
        assert!(
            a.add_user(&NewUser {
                name: "alice".into(),
                ..NewUser::default()
            })
            .is_err()
        );
        let e = a
            .add_user(&NewUser {
                name: "bob".into(),
                groups: vec!["nosuch".into()],
                ..NewUser::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("no group nosuch"), "{e}");
        let e = a
            .add_user(&NewUser {
                name: "eve".into(),
                gecos: Some("a:b".into()),
                ..NewUser::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("may not hold ':'"), "{e}");
        assert_eq!(a.user("alice"), Some((1500, 1500, "/srv/alice".into())));
    }

    #[test]
    fn a_home_is_made_from_skel_and_private() {
        let t = sample();
        make_home(t.path(), "/home/admin", 1000, 1000).unwrap();
        let home = t.path().join("home/admin");
        assert_eq!(
            fs::read_to_string(home.join(".bashrc")).unwrap(),
            "# bash\n"
        );
        assert_eq!(fs::metadata(&home).unwrap().mode() & 0o777, 0o700);
        // Only root can give the home to its owner: without root the owner
        // check is skipped (reported; a failure in CI), the rest holds.
        if hvnode_testutil::require_root() {
            assert_eq!(fs::metadata(&home).unwrap().uid(), 1000);
        }
    }
}
