//! The installed system's configuration from the kickstart: host name,
//! network (systemd-networkd, as the image uses), accounts and SSH keys,
//! time zone and NTP, language, keyboard, SELinux mode, the firewall
//! ([`crate::firewall`]), services, and the registration the node performs
//! at first boot.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use command::CommandExt;
use kickstart::Kickstart;
use kickstart::commands::{BootProto, Command as Ks, Group, Keyboard, Timesource, User};
use kickstart::node::{NetDevice, NodePlan};

use crate::Log;
use crate::accounts::{self, Accounts, NewUser};

/// Writes `text` to `path` under `root` (temporary file, then rename) with
/// `mode`; the relabel after configuration gives it its SELinux label.
pub(crate) fn write(root: &Path, path: &str, text: &str, mode: u32) -> Result<()> {
    let p = layers::under(root, path);
    fsutil::write_atomic(&p, text.as_bytes(), fsutil::Options::mode(mode))?;
    Ok(())
}

/// `255.255.255.0` → 24.
pub fn prefix_len(netmask: &str) -> Result<u32> {
    if let Ok(n) = netmask.parse::<u32>()
        && n <= 32
    {
        return Ok(n);
    }
    let ip: std::net::Ipv4Addr = netmask
        .parse()
        .with_context(|| format!("network --netmask={netmask} is not a netmask"))?;
    let bits = u32::from(ip);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        bail!("network --netmask={netmask} is not a contiguous netmask");
    }
    Ok(bits.leading_ones())
}

/// systemd-networkd files for one `network` line: (file name, contents).
pub fn networkd_files(n: &NetDevice, index: usize) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let dev = n.device.clone().unwrap_or_else(|| "link".into());
    let mut iface = n.interface_name.clone().unwrap_or_else(|| dev.clone());
    let mut network = String::from("[Match]\n");
    if !n.bond_members.is_empty() {
        let mut netdev = format!("[NetDev]\nName={dev}\nKind=bond\n\n[Bond]\n");
        for opt in n.bond_options.iter().flat_map(|o| o.split([',', ';'])) {
            if let Some((k, v)) = opt.split_once('=') {
                let key = match k.trim() {
                    "mode" => "Mode",
                    "miimon" => "MIIMonitorSec",
                    "lacp_rate" => "LACPTransmitRate",
                    "xmit_hash_policy" => "TransmitHashPolicy",
                    other => bail!("network --bondopts: {other} is not supported"),
                };
                let v = if key == "MIIMonitorSec" {
                    format!("{}ms", v.trim())
                } else {
                    v.trim().to_string()
                };
                let _ = writeln!(netdev, "{key}={v}");
            }
        }
        files.push((format!("10-hvnode-{dev}.netdev"), netdev));
        for m in &n.bond_members {
            files.push((
                format!("10-hvnode-{m}.network"),
                format!("[Match]\nName={m}\n\n[Network]\nBond={dev}\n"),
            ));
        }
    }
    if let Some(vlan) = &n.vlan_id {
        let name = n
            .interface_name
            .clone()
            .unwrap_or_else(|| format!("{dev}.{vlan}"));
        files.push((
            format!("10-hvnode-{name}.netdev"),
            format!("[NetDev]\nName={name}\nKind=vlan\n\n[VLAN]\nId={vlan}\n"),
        ));
        files.push((
            format!("11-hvnode-{dev}-vlan.network"),
            format!("[Match]\nName={dev}\n\n[Network]\nVLAN={name}\n"),
        ));
        iface = name;
    }
    if iface == "link" {
        network.push_str("Type=ether\n");
    } else {
        let _ = writeln!(network, "Name={iface}");
    }
    network.push_str("\n[Network]\n");
    match n.bootproto {
        BootProto::Static => {
            let (Some(ip), Some(mask)) = (&n.ip, &n.netmask) else {
                bail!("network --bootproto=static needs --ip and --netmask");
            };
            let _ = writeln!(network, "Address={ip}/{}", prefix_len(mask)?);
            if let Some(gw) = &n.gateway {
                let _ = writeln!(network, "Gateway={gw}");
            }
        }
        _ => network.push_str("DHCP=yes\n"),
    }
    for ns in &n.nameservers {
        let _ = writeln!(network, "DNS={ns}");
    }
    files.push((format!("20-hvnode-{index}-{iface}.network"), network));
    Ok(files)
}

/// SHA-512 crypt of a plain-text password (what `--plaintext` gives).
pub fn hash_password(password: &str) -> Result<String> {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .map_err(|e| anyhow::anyhow!("SHA-512 crypt parameters: {e:?}"))?;
    sha_crypt::sha512_simple(password, &params)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e:?}"))
}

/// `shadow` with `user`'s password field replaced by `f(old field)`.
pub fn edit_shadow(shadow: &str, user: &str, f: impl Fn(&str) -> String) -> Result<String> {
    let mut found = false;
    let mut out = String::new();
    for line in shadow.lines() {
        let mut fields: Vec<String> = line.split(':').map(String::from).collect();
        if fields.len() >= 2 && fields[0] == user {
            fields[1] = f(&fields[1]);
            found = true;
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    if !found {
        bail!("{user} is not in the installed system's /etc/shadow");
    }
    Ok(out)
}

fn rewrite_shadow(root: &Path, user: &str, f: impl Fn(&str) -> String) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let path = root.join("etc/shadow");
    let text = fs::read_to_string(&path).context("reading the installed system's /etc/shadow")?;
    let meta = fs::metadata(&path)?;
    let new = edit_shadow(&text, user, f)?;
    // The new shadow gets its mode and owner before it is renamed into
    // place: it is never readable by others, not even for a moment.
    let opts = fsutil::Options {
        mode: meta.mode() & 0o7777,
        owner: Some((meta.uid(), meta.gid())),
        create_parents: false,
    };
    fsutil::write_atomic(&path, new.as_bytes(), opts)?;
    Ok(())
}

/// Sets a password in the target's shadow file: hashed here (SHA-512
/// crypt) unless the kickstart gives a hash, written by us rather than by
/// chpasswd in a chroot, which the live system's SELinux policy does not
/// let write the target's shadow file (the file is relabelled afterwards).
pub fn set_password(
    root: &Path,
    user: &str,
    password: &str,
    crypted: bool,
    log: &Log,
) -> Result<()> {
    let hashed = if crypted {
        password.to_string()
    } else {
        hash_password(password)?
    };
    rewrite_shadow(root, user, |_| hashed.clone())
        .with_context(|| format!("setting the password of {user}"))?;
    log.line(&format!("password of {user} set"));
    Ok(())
}

/// Locks `user`'s password (`!` before the hash, as `usermod -L` does).
pub fn lock_password(root: &Path, user: &str) -> Result<()> {
    rewrite_shadow(root, user, |old| {
        if old.starts_with('!') {
            old.to_string()
        } else {
            format!("!{old}")
        }
    })
    .with_context(|| format!("locking the password of {user}"))
}

/// `uid:gid:home` of `user` in the target's passwd.
fn passwd_entry(root: &Path, user: &str) -> Result<(u32, u32, String)> {
    let text =
        fs::read_to_string(root.join("etc/passwd")).context("reading the target's /etc/passwd")?;
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 6 && f[0] == user {
            return Ok((f[2].parse()?, f[3].parse()?, f[5].to_string()));
        }
    }
    bail!("sshkey --username={user}: there is no such user (add a user line)")
}

fn add_ssh_key(root: &Path, user: &str, key: &str) -> Result<()> {
    let (uid, gid, home) = passwd_entry(root, user)?;
    let dir = layers::under(root, &home).join(".ssh");
    fs::create_dir_all(&dir)?;
    let file = dir.join("authorized_keys");
    let mut text = fs::read_to_string(&file).unwrap_or_default();
    text.push_str(key.trim());
    text.push('\n');
    fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    std::os::unix::fs::chown(&file, Some(uid), Some(gid))?;
    Ok(())
}

/// The groups of `user --groups` (`name` or `name(gid)`) that the
/// target's `/etc/group` lacks, with the GID asked for: Anaconda creates
/// them, and the image (Debian) has no `wheel`.
pub fn missing_groups(group_file: &str, groups: &[String]) -> Vec<(String, Option<String>)> {
    let have: Vec<&str> = group_file
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect();
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for g in groups {
        let (name, gid) = match g.split_once('(') {
            Some((n, rest)) => (n, Some(rest.trim_end_matches(')').to_string())),
            None => (g.as_str(), None),
        };
        if !have.contains(&name) && !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), gid));
        }
    }
    out
}

/// Where the effective kickstart is kept on the installed system (as
/// Anaconda keeps `/root/anaconda-ks.cfg`).
pub const SAVED_KICKSTART: &str = "/root/hvnode-ks.cfg";

/// Writes the effective kickstart (passwords hashed by the caller) to
/// [`SAVED_KICKSTART`], readable by root only.
pub fn save_kickstart(root: &Path, text: &str, log: &Log) -> Result<()> {
    write(root, SAVED_KICKSTART, text, 0o600)
        .with_context(|| format!("writing {SAVED_KICKSTART} on the installed system"))?;
    log.line(&format!(
        "the kickstart of this install is kept in {SAVED_KICKSTART}"
    ));
    Ok(())
}

/// `/etc/hvnode/registration.conf` for the kickstart's
/// `%addon org_hvnode_register` (read by `nodectl register --zero-touch`).
pub fn registration_conf(r: &kickstart::node::Registration) -> String {
    let mut text = String::from(
        "# Written by hvnode-install from the kickstart's %addon org_hvnode_register.\n\
         # hvnode-register.service registers the node with this engine at boot.\n",
    );
    let _ = writeln!(text, "engine={}:{}", r.engine_host, r.engine_port);
    if let Some(fp) = &r.fingerprint {
        let _ = writeln!(text, "engine_fingerprint={fp}");
    }
    if let Some(n) = &r.node_name {
        let _ = writeln!(text, "node_name={n}");
    }
    if let Some(a) = &r.node_address {
        let _ = writeln!(text, "node_address={a}");
    }
    text
}

/// The trusted keys of a customised medium (`hvnode iso customize
/// --trust-key`) in the node's `/etc/hvnode/trusted.d`, readable by all as
/// the image's own key is: updates signed with them are accepted.
pub fn write_trusted_keys(root: &Path, keys: &[iso_custom::TrustKey], log: &Log) -> Result<()> {
    for k in keys {
        let path = format!("{}/{}", bundle::TRUSTED_KEYS_DIR, k.file_name());
        write(root, &path, &k.text, 0o644)
            .with_context(|| format!("writing the trusted key {path} on the installed system"))?;
        log.line(&format!(
            "trusted key {} (from the medium) in {path}",
            k.key_id
        ));
    }
    Ok(())
}

/// Applies the kickstart to the installed system mounted at `root`.
pub fn configure(root: &Path, ks: &Kickstart, plan: &NodePlan, log: &Log) -> Result<()> {
    write_host_name(root, plan)?;
    write_network(root, plan)?;
    set_timezone(root, plan)?;
    set_language(root, plan)?;
    set_selinux_mode(root, plan)?;
    add_accounts(root, ks, log)?;
    apply_login_and_host_commands(root, ks, log)?;
    // Before `services`, so that a `services` line has the last word.
    crate::firewall::apply(root, &plan.firewall, log)?;
    set_services(root, plan)?;
    if let Some(r) = &plan.registration {
        let text = registration_conf(r);
        write(root, "/etc/hvnode/registration.conf", &text, 0o600)?;
        log.line(&format!("registration with {} configured", r.engine_host));
    }
    Ok(())
}

/// `/etc/hostname` and `/etc/hosts` (`hvnode` without a `network --hostname`).
fn write_host_name(root: &Path, plan: &NodePlan) -> Result<()> {
    let hostname = plan.hostname.clone().unwrap_or_else(|| "hvnode".into());
    write(root, "/etc/hostname", &format!("{hostname}\n"), 0o644)?;
    let short = hostname.split('.').next().unwrap_or(&hostname);
    write(
        root,
        "/etc/hosts",
        &format!(
            "127.0.0.1\tlocalhost\n127.0.1.1\t{hostname} {short}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        ),
        0o644,
    )
}

/// The kickstart's `network` lines as systemd-networkd files.
fn write_network(root: &Path, plan: &NodePlan) -> Result<()> {
    if plan.network.is_empty() {
        return Ok(());
    }
    // The kickstart's network replaces the image's DHCP-on-every-NIC default.
    let _ = fs::remove_file(root.join("etc/systemd/network/80-hvnode-dhcp.network"));
    for (i, n) in plan.network.iter().enumerate() {
        for (name, text) in networkd_files(n, i)? {
            write(root, &format!("/etc/systemd/network/{name}"), &text, 0o644)?;
        }
    }
    Ok(())
}

/// `/etc/localtime` and `/etc/timezone`, when the kickstart names a zone.
fn set_timezone(root: &Path, plan: &NodePlan) -> Result<()> {
    let Some(tz) = &plan.timezone else {
        return Ok(());
    };
    let zone = root.join("usr/share/zoneinfo").join(tz);
    if !zone.exists() {
        bail!("timezone {tz}: no such time zone in the image");
    }
    let lt = root.join("etc/localtime");
    let _ = fs::remove_file(&lt);
    std::os::unix::fs::symlink(format!("/usr/share/zoneinfo/{tz}"), &lt)?;
    write(root, "/etc/timezone", &format!("{tz}\n"), 0o644)
}

/// `/etc/default/locale`, when the kickstart has a `lang`.
fn set_language(root: &Path, plan: &NodePlan) -> Result<()> {
    let Some(lang) = &plan.lang else {
        return Ok(());
    };
    write(
        root,
        "/etc/default/locale",
        &format!("LANG={lang}\n"),
        0o644,
    )
}

/// The plan's SELinux mode in `/etc/selinux/config`, the rest of the file kept.
fn set_selinux_mode(root: &Path, plan: &NodePlan) -> Result<()> {
    let selinux = fs::read_to_string(root.join("etc/selinux/config")).unwrap_or_default();
    let mut out = String::new();
    for l in selinux.lines() {
        if l.starts_with("SELINUX=") {
            let _ = writeln!(out, "SELINUX={}", plan.selinux);
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !out.contains("SELINUX=") {
        let _ = writeln!(out, "SELINUX={}", plan.selinux);
    }
    write(root, "/etc/selinux/config", &out, 0o644)
}

/// A new user's home folder and owner, made once the account files are saved.
struct Home {
    path: String,
    uid: u32,
    gid: u32,
}

/// The kickstart's groups and users, straight into the account files (see
/// accounts.rs: useradd -R cannot write them under the live system's
/// policy), then the users' homes and passwords.
fn add_accounts(root: &Path, ks: &Kickstart, log: &Log) -> Result<()> {
    let mut accounts = Accounts::load(root)?;
    let mut homes = Vec::new();
    for (_, c) in ks.commands() {
        match c {
            Ks::Group(g) => add_group(&mut accounts, g, log)?,
            Ks::User(u) => homes.push(add_user(&mut accounts, u)?),
            _ => {}
        }
    }
    accounts
        .save(root)
        .context("writing the installed system's account files")?;
    for home in &homes {
        accounts::make_home(root, &home.path, home.uid, home.gid)?;
    }
    for (_, c) in ks.commands() {
        if let Ks::User(u) = c {
            if let Some(pw) = &u.password {
                set_password(root, &u.name, pw, u.iscrypted, log)?;
            }
            if u.lock {
                lock_password(root, &u.name)?;
            }
            log.line(&format!("user {} added", u.name));
        }
    }
    Ok(())
}

/// A `group` line.
fn add_group(accounts: &mut Accounts, g: &Group, log: &Log) -> Result<()> {
    let gid = g
        .gid
        .map(u32::try_from)
        .transpose()
        .with_context(|| format!("group --name={}: --gid is out of range", g.name))?;
    accounts
        .add_group(&g.name, gid, false)
        .with_context(|| format!("adding the group {}", g.name))?;
    log.line(&format!("group {} added", g.name));
    Ok(())
}

/// A `user` line, with the groups of its `--groups` that do not exist yet;
/// returns the home to make.
fn add_user(accounts: &mut Accounts, u: &User) -> Result<Home> {
    let group_file = accounts.group_lines();
    for (name, gid) in missing_groups(&group_file, &u.groups) {
        let gid = gid
            .map(|g| g.parse::<u32>())
            .transpose()
            .with_context(|| format!("user {}: --groups={name}(…): not a GID", u.name))?;
        accounts
            .add_group(&name, gid, true)
            .with_context(|| format!("adding the group {name} for {}", u.name))?;
    }
    let id = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
        v.map(u32::try_from)
            .transpose()
            .with_context(|| format!("user {}: --{what} is out of range", u.name))
    };
    let new = NewUser {
        name: u.name.clone(),
        uid: id(u.uid, "uid")?,
        gid: id(u.gid, "gid")?,
        gecos: u.gecos.clone(),
        home: u.homedir.clone(),
        shell: u.shell.clone(),
        groups: u
            .groups
            .iter()
            .map(|g| g.split('(').next().unwrap_or(g).to_string())
            .collect(),
    };
    let (uid, gid) = accounts
        .add_user(&new)
        .with_context(|| format!("adding the user {}", u.name))?;
    let path = new.home.unwrap_or_else(|| format!("/home/{}", u.name));
    Ok(Home { path, uid, gid })
}

/// `rootpw`, `sshkey`, `keyboard` and `timesource`, in kickstart order.
fn apply_login_and_host_commands(root: &Path, ks: &Kickstart, log: &Log) -> Result<()> {
    for (_, c) in ks.commands() {
        match c {
            Ks::Rootpw(r) => {
                if let Some(pw) = &r.password {
                    set_password(root, "root", pw, r.iscrypted, log)?;
                }
                if r.lock {
                    lock_password(root, "root")?;
                    log.line("root's password locked");
                }
            }
            Ks::Sshkey(k) => {
                add_ssh_key(root, &k.username, &k.key)?;
                log.line(&format!("SSH key added for {}", k.username));
            }
            Ks::Keyboard(k) => write_keyboard(root, k)?,
            Ks::Timesource(t) => add_time_source(root, t)?,
            _ => {}
        }
    }
    Ok(())
}

/// `/etc/default/keyboard` from the first layout the `keyboard` line names
/// (`us` if none).
fn write_keyboard(root: &Path, k: &Keyboard) -> Result<()> {
    let layout = k
        .xlayouts
        .first()
        .cloned()
        .or_else(|| k.vckeymap.clone())
        .or_else(|| k.kbd.first().cloned())
        .unwrap_or_else(|| "us".into());
    write(
        root,
        "/etc/default/keyboard",
        &format!("XKBMODEL=\"pc105\"\nXKBLAYOUT=\"{layout}\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\n"),
        0o644,
    )
}

/// A `timesource` line's server or pool, appended to chrony's sources.
fn add_time_source(root: &Path, t: &Timesource) -> Result<()> {
    let line = if let Some(s) = &t.ntp_server {
        format!("server {s} iburst{}\n", if t.nts { " nts" } else { "" })
    } else if let Some(p) = &t.ntp_pool {
        format!("pool {p} iburst{}\n", if t.nts { " nts" } else { "" })
    } else {
        return Ok(());
    };
    let p = "/etc/chrony/sources.d/hvnode-kickstart.sources";
    let mut text = fs::read_to_string(layers::under(root, p)).unwrap_or_default();
    text.push_str(&line);
    write(root, p, &text, 0o644)
}

/// `services --enabled` and `--disabled`, through `systemctl --root`.
fn set_services(root: &Path, plan: &NodePlan) -> Result<()> {
    for (verb, units) in [
        ("enable", &plan.services_enabled),
        ("disable", &plan.services_disabled),
    ] {
        if units.is_empty() {
            continue;
        }
        Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .arg(verb)
            .args(units)
            .run()
            .with_context(|| format!("services --{verb}d={}", units.join(",")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mediums_trusted_keys_go_into_trusted_d() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let log = Log::create(&d.path().join("install.log")).unwrap();
        let root = d.path().join("root");
        let key = iso_custom::TrustKey {
            key_id: "0123456789ABCDEF".into(),
            text: "untrusted comment: minisign public key\nRWQ\n".into(),
        };
        write_trusted_keys(&root, std::slice::from_ref(&key), &log).unwrap();
        let p = root.join("etc/hvnode/trusted.d/iso-0123456789ABCDEF.pub");
        assert_eq!(fs::read_to_string(&p).unwrap(), key.text);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    fn dev(bootproto: BootProto) -> NetDevice {
        NetDevice {
            device: Some("ens3".into()),
            bootproto,
            ip: Some("192.0.2.10".into()),
            netmask: Some("255.255.255.0".into()),
            gateway: Some("192.0.2.1".into()),
            nameservers: vec!["192.0.2.53".into()],
            bond_members: vec![],
            bond_options: None,
            vlan_id: None,
            interface_name: None,
            onboot: true,
            activate: true,
        }
    }

    #[test]
    fn static_and_dhcp_become_networkd_files() {
        let f = networkd_files(&dev(BootProto::Static), 0).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "20-hvnode-0-ens3.network");
        assert!(f[0].1.contains("Name=ens3\n"));
        assert!(
            f[0].1
                .contains("Address=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\n")
        );
        let mut d = dev(BootProto::Dhcp);
        d.device = None;
        let f = networkd_files(&d, 1).unwrap();
        assert!(f[0].1.contains("Type=ether") && f[0].1.contains("DHCP=yes"));
    }

    #[test]
    fn a_vlan_over_a_bond_is_three_layers_of_files() {
        let mut d = dev(BootProto::Static);
        d.device = Some("bond0".into());
        d.bond_members = vec!["ens3".into(), "ens4".into()];
        d.bond_options = Some("mode=802.3ad,miimon=100".into());
        d.vlan_id = Some("20".into());
        let f = networkd_files(&d, 0).unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "10-hvnode-bond0.netdev",
                "10-hvnode-ens3.network",
                "10-hvnode-ens4.network",
                "10-hvnode-bond0.20.netdev",
                "11-hvnode-bond0-vlan.network",
                "20-hvnode-0-bond0.20.network"
            ]
        );
        assert!(f[0].1.contains("Mode=802.3ad\nMIIMonitorSec=100ms\n"));
        assert!(f[3].1.contains("Kind=vlan\n\n[VLAN]\nId=20"));
        assert!(f[5].1.contains("Name=bond0.20\n"));
    }

    #[test]
    fn the_registration_service_reads_what_the_installer_writes() {
        let ks = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../kickstart/zero-touch-register.ks"
        );
        let parse = kickstart::parse_file(Path::new(ks), &kickstart::source::FsLoader);
        assert!(parse.is_valid());
        let (plan, _) = kickstart::node::plan(&parse.kickstart);
        let r = plan.registration.expect("the shipped kickstart registers");
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("etc/hvnode/registration.conf");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(&conf, registration_conf(&r)).unwrap();
        let zt = registration::zero_touch_config(&registration::Sysroot::new(d.path()))
            .unwrap()
            .expect("an engine is configured");
        assert_eq!(zt.source, registration::ZeroTouchSource::ConfigFile);
        assert!(
            zt.engine.to_string().contains("engine.example.com"),
            "{:?}",
            zt.engine
        );
        assert!(zt.fingerprint.is_some());
    }

    #[test]
    fn shadow_edits_touch_one_field_of_one_user() {
        let shadow = "root:*:19000:0:99999:7:::\nalice:$6$x$y:19000:0:99999:7:::\n";
        let out = edit_shadow(shadow, "alice", |old| format!("!{old}")).unwrap();
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\nalice:!$6$x$y:19000:0:99999:7:::\n"
        );
        let e = edit_shadow(shadow, "bob", |o| o.to_string()).unwrap_err();
        assert!(e.to_string().contains("bob"));
    }

    #[test]
    fn plain_passwords_are_hashed_with_sha512_crypt() {
        let h = hash_password("hvnode-test-pw").unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        assert!(sha_crypt::sha512_check("hvnode-test-pw", &h).is_ok());
        assert!(sha_crypt::sha512_check("other", &h).is_err());
    }

    #[test]
    fn missing_supplementary_groups_are_created_first() {
        let group = "root:x:0:\nsudo:x:27:\nkvm:x:104:\n";
        let want = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            missing_groups(group, &want(&["wheel", "kvm", "ops(1500)", "wheel"])),
            [
                ("wheel".to_string(), None),
                ("ops".to_string(), Some("1500".to_string()))
            ]
        );
        assert!(missing_groups(group, &want(&["sudo", "kvm"])).is_empty());
    }

    #[test]
    fn netmasks_become_prefixes() {
        assert_eq!(prefix_len("255.255.255.0").unwrap(), 24);
        assert_eq!(prefix_len("255.255.240.0").unwrap(), 20);
        assert_eq!(prefix_len("16").unwrap(), 16);
        assert!(prefix_len("255.0.255.0").is_err());
    }
}
