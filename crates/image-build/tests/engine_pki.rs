//! The folders the engine's certificate enrolment writes into are made at boot
//! by `usr/lib/tmpfiles.d/hvnode-engine-pki.conf`, each with the owner and mode
//! oVirt Engine's ovirt-host-deploy-vdsm-certificates and -vnc-certificates
//! roles give it. The file is parsed here: a mistyped path, owner or mode, a
//! user the image does not make (systemd-tmpfiles skips such a line and fails
//! the boot's tmpfiles service), or a key or certificate shipped in the image
//! fails this test instead of an enrolment. docs/engine.md's table says the same.

use std::path::Path;

/// Path, user, group, mode: what the roles leave on a host after enrolment
/// (their `file: state=directory owner=vdsm group=kvm mode=0755` tasks; the
/// parents they make on the way are root's).
const EXPECTED: [(&str, &str, &str, &str); 10] = [
    ("/etc/pki", "root", "root", "0755"),
    ("/etc/pki/vdsm", "vdsm", "kvm", "0755"),
    ("/etc/pki/vdsm/certs", "vdsm", "kvm", "0755"),
    ("/etc/pki/vdsm/keys", "vdsm", "kvm", "0755"),
    ("/etc/pki/vdsm/libvirt-migrate", "vdsm", "kvm", "0755"),
    ("/etc/pki/vdsm/libvirt-spice", "vdsm", "kvm", "0755"),
    ("/etc/pki/vdsm/libvirt-vnc", "vdsm", "kvm", "0755"),
    ("/etc/pki/libvirt", "root", "root", "0755"),
    ("/etc/pki/libvirt/private", "vdsm", "kvm", "0755"),
    ("/etc/pki/CA", "vdsm", "kvm", "0755"),
];

/// One line of a tmpfiles.d file.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: String,
    path: String,
    mode: String,
    user: String,
    group: String,
    age: String,
    /// Any field past the age (the argument).
    rest: Vec<String>,
}

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn entries(text: &str) -> Vec<(usize, Entry)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(
                f.len() >= 6,
                "line {}: {l:?} has {} fields; a directory line is TYPE PATH MODE USER GROUP AGE",
                i + 1,
                f.len()
            );
            (
                i + 1,
                Entry {
                    kind: f[0].to_string(),
                    path: f[1].to_string(),
                    mode: f[2].to_string(),
                    user: f[3].to_string(),
                    group: f[4].to_string(),
                    age: f[5].to_string(),
                    rest: f[6..].iter().map(|s| (*s).to_string()).collect(),
                },
            )
        })
        .collect()
}

/// Users and groups `usr/lib/sysusers.d/hvnode.conf` makes or names
/// (`u NAME UID:GROUP` names the user's group, which Debian's packages make
/// when it is not a `g` line there).
fn sysusers() -> (Vec<String>, Vec<String>) {
    let text = repo_file("image/files/usr/lib/sysusers.d/hvnode.conf");
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["u", name, id, ..] => {
                users.push((*name).to_string());
                match id.split_once(':') {
                    Some((_, group)) => groups.push(group.to_string()),
                    None => groups.push((*name).to_string()),
                }
            }
            ["g", name, ..] => groups.push((*name).to_string()),
            _ => {}
        }
    }
    (users, groups)
}

#[test]
fn each_folder_the_enrolment_writes_is_made_with_the_roles_owner_and_mode() {
    let text = repo_file("image/files/usr/lib/tmpfiles.d/hvnode-engine-pki.conf");
    let found = entries(&text);
    for (path, user, group, mode) in EXPECTED {
        let lines: Vec<&(usize, Entry)> = found.iter().filter(|(_, e)| e.path == path).collect();
        assert_eq!(lines.len(), 1, "{path}: named {} times", lines.len());
        let (line, e) = lines[0];
        assert_eq!(
            e.kind, "d",
            "line {line}: {path} must be a plain directory line"
        );
        assert_eq!(
            (e.user.as_str(), e.group.as_str(), e.mode.as_str()),
            (user, group, mode),
            "line {line}: {path}"
        );
        assert_eq!(e.age, "-", "line {line}: {path} must not be cleaned by age");
        assert!(e.rest.is_empty(), "line {line}: {path} has an argument");
    }
    for (line, e) in &found {
        assert!(
            EXPECTED.iter().any(|(p, ..)| *p == e.path),
            "line {line}: {} is not a folder the enrolment writes into (a typo?)",
            e.path
        );
    }
}

#[test]
fn folders_only_never_a_key_or_certificate() {
    let text = repo_file("image/files/usr/lib/tmpfiles.d/hvnode-engine-pki.conf");
    for (line, e) in entries(&text) {
        assert_eq!(
            e.kind, "d",
            "line {line}: {} is not a directory line",
            e.path
        );
        assert!(
            !e.path.ends_with(".pem") && !e.path.ends_with(".key"),
            "line {line}: {}",
            e.path
        );
    }
}

#[test]
fn every_owner_is_made_by_the_image() {
    let (users, groups) = sysusers();
    assert!(
        users.iter().any(|u| u == "vdsm"),
        "sysusers makes no vdsm user"
    );
    let text = repo_file("image/files/usr/lib/tmpfiles.d/hvnode-engine-pki.conf");
    for (line, e) in entries(&text) {
        assert!(
            e.user == "root" || users.contains(&e.user),
            "line {line}: user {} is not made by sysusers.d/hvnode.conf",
            e.user
        );
        assert!(
            e.group == "root" || groups.contains(&e.group),
            "line {line}: group {} is not named by sysusers.d/hvnode.conf",
            e.group
        );
    }
}

#[test]
fn every_parent_is_etc_or_made_here() {
    for (path, ..) in EXPECTED {
        let parent = Path::new(path)
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("/");
        assert!(
            parent == "/etc" || EXPECTED.iter().any(|(p, ..)| *p == parent),
            "{path}: its parent {parent} is made by no line"
        );
    }
}

#[test]
fn the_admin_documentation_lists_the_same_owners_and_modes() {
    let doc = repo_file("docs/engine.md");
    for (path, user, group, mode) in EXPECTED {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{path}/` |")))
            .unwrap_or_else(|| panic!("docs/engine.md has no table row for `{path}/`"));
        let want = format!("{user}:{group} {mode}");
        assert!(
            row.contains(&want),
            "docs/engine.md: {row:?} does not say {want}"
        );
    }
}
