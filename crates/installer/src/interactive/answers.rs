//! What the administrator answered, and the answers as kickstart commands:
//! [`Answers::apply`] adds them to the kickstart (replacing what they
//! override), so the install reads one effective kickstart whichever way
//! its values came. [`saved_kickstart`] is that kickstart as text for the
//! installed system's `/root/hvnode-ks.cfg`, with every password hashed.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use kickstart::commands::{
    Autopart, AutopartType, BootProto, Clearpart, Command, Ignoredisk, Network, Rootpw, Sshkey,
    Timezone, User,
};
use kickstart::{Item, Kickstart, Loc, Located};

use super::validate;
use crate::grub_password::grub_hash;
use crate::target::hash_password;

/// The file name the answers' commands are located at in diagnostics.
pub const ANSWERS_SOURCE: &str = "console";

/// How the disk is laid out (`autopart --type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutChoice {
    Thinp,
    Btrfs,
    Plain,
}

impl LayoutChoice {
    pub const ALL: [LayoutChoice; 3] = [
        LayoutChoice::Thinp,
        LayoutChoice::Btrfs,
        LayoutChoice::Plain,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            LayoutChoice::Thinp => "thin LVM",
            LayoutChoice::Btrfs => "btrfs",
            LayoutChoice::Plain => "plain partitions",
        }
    }

    fn autopart_type(self) -> AutopartType {
        match self {
            LayoutChoice::Thinp => AutopartType::Thinp,
            LayoutChoice::Btrfs => AutopartType::Btrfs,
            LayoutChoice::Plain => AutopartType::Plain,
        }
    }
}

/// An administrator account (member of `wheel`). Passwords are kept only
/// as SHA-512 crypt hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub ssh_key: Option<String>,
}

impl AdminUser {
    pub fn describe(&self) -> String {
        let mut how = Vec::new();
        if self.password_hash.is_some() {
            how.push("password");
        }
        if self.ssh_key.is_some() {
            how.push("SSH key");
        }
        format!("{} (wheel), {}", self.name, how.join(" + "))
    }
}

/// One interface's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetChoice {
    Dhcp {
        device: String,
    },
    Static {
        device: String,
        address: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
        dns: Vec<IpAddr>,
    },
}

impl NetChoice {
    pub fn device(&self) -> &str {
        match self {
            NetChoice::Dhcp { device } | NetChoice::Static { device, .. } => device,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            NetChoice::Dhcp { device } => format!("DHCP on {device}"),
            NetChoice::Static {
                device,
                address,
                prefix,
                ..
            } => format!("{address}/{prefix} on {device}"),
        }
    }
}

/// What the administrator answered; `None` is "not asked" or "left as
/// it was".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    pub disk: Option<String>,
    pub layout: Option<LayoutChoice>,
    /// SHA-512 crypt hash.
    pub root_password_hash: Option<String>,
    pub user: Option<AdminUser>,
    pub network: Option<NetChoice>,
    pub hostname: Option<String>,
    pub timezone: Option<String>,
}

fn network_for(n: &NetChoice) -> Network {
    let mut c = Network {
        device: Some(n.device().to_string()),
        onboot: Some(true),
        activate: true,
        ..Network::default()
    };
    match n {
        NetChoice::Dhcp { .. } => c.bootproto = Some(BootProto::Dhcp),
        NetChoice::Static {
            address,
            prefix,
            gateway,
            dns,
            ..
        } => {
            c.bootproto = Some(BootProto::Static);
            c.ip = Some(address.to_string());
            c.netmask = Some(validate::netmask(*prefix).to_string());
            c.gateway = gateway.map(|g| g.to_string());
            if !dns.is_empty() {
                c.nameserver = Some(
                    dns.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
    }
    c
}

/// Whether a `network` line only sets the host name (as `node::plan`
/// reads it).
fn hostname_only(n: &Network) -> bool {
    n.device.is_none() && n.ip.is_none() && n.bootproto.is_none() && n.hostname.is_some()
}

impl Answers {
    /// The answers as kickstart commands, in kickstart order.
    pub fn commands(&self, ks_sets_root: bool) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(d) = &self.disk {
            out.push(Command::Ignoredisk(Ignoredisk {
                only_use: vec![d.clone()],
                ..Ignoredisk::default()
            }));
            out.push(Command::Clearpart(Clearpart {
                all: true,
                initlabel: true,
                drives: vec![d.clone()],
                ..Clearpart::default()
            }));
        }
        if let Some(l) = self.layout {
            out.push(Command::Autopart(Autopart {
                r#type: Some(l.autopart_type()),
                ..Autopart::default()
            }));
        }
        if let Some(n) = &self.network {
            out.push(Command::Network(network_for(n)));
        }
        if let Some(h) = &self.hostname {
            out.push(Command::Network(Network {
                hostname: Some(h.clone()),
                ..Network::default()
            }));
        }
        if let Some(h) = &self.root_password_hash {
            out.push(Command::Rootpw(Rootpw {
                password: Some(h.clone()),
                iscrypted: true,
                ..Rootpw::default()
            }));
        } else if self.user.is_some() && !ks_sets_root {
            // As Anaconda: with an administrator and no root password,
            // root cannot log in with a password.
            out.push(Command::Rootpw(Rootpw {
                lock: true,
                ..Rootpw::default()
            }));
        }
        if let Some(u) = &self.user {
            out.push(Command::User(User {
                name: u.name.clone(),
                groups: vec!["wheel".into()],
                iscrypted: u.password_hash.is_some(),
                password: u.password_hash.clone(),
                ..User::default()
            }));
            if let Some(k) = &u.ssh_key {
                out.push(Command::Sshkey(Sshkey {
                    key: k.clone(),
                    username: u.name.clone(),
                }));
            }
        }
        if let Some(tz) = &self.timezone {
            out.push(Command::Timezone(Timezone {
                timezone: vec![tz.clone()],
                utc: true,
                ..Timezone::default()
            }));
        }
        out
    }

    /// Adds the answers to `ks`, removing the commands they replace, right
    /// after the kickstart's last command.
    pub fn apply(&self, ks: &mut Kickstart) {
        let ks_sets_root = ks.commands().any(|(_, c)| matches!(c, Command::Rootpw(_)));
        let mut items = std::mem::take(&mut ks.items);
        items.retain_mut(|item| {
            let Item::Command(c) = &mut item.value else {
                return true;
            };
            match c {
                Command::Ignoredisk(_) | Command::Clearpart(_) => self.disk.is_none(),
                Command::Autopart(_)
                | Command::Partition(_)
                | Command::Volgroup(_)
                | Command::Logvol(_)
                | Command::Reqpart(_) => self.layout.is_none(),
                Command::Rootpw(_) => self.root_password_hash.is_none(),
                Command::Timezone(_) => self.timezone.is_none(),
                Command::Network(n) => {
                    if self.network.is_some() && !hostname_only(n) {
                        // Keep only the host name this line set.
                        if n.hostname.is_none() {
                            return false;
                        }
                        *n = Network {
                            hostname: n.hostname.take(),
                            ..Network::default()
                        };
                    }
                    if self.hostname.is_some() && n.hostname.is_some() {
                        n.hostname = None;
                        return *n != Network::default();
                    }
                    true
                }
                _ => true,
            }
        });
        let at = items
            .iter()
            .rposition(|i| matches!(i.value, Item::Command(_)))
            .map_or(0, |i| i + 1);
        let new = self
            .commands(ks_sets_root)
            .into_iter()
            .enumerate()
            .map(|(i, c)| Located {
                loc: Loc::new(ANSWERS_SOURCE, i + 1),
                value: Item::Command(c),
            });
        items.splice(at..at, new);
        ks.items = items;
    }
}

/// The effective kickstart as text for the installed system: plain-text
/// passwords become hashes (`--iscrypted`): SHA-512 crypt for accounts,
/// grub PBKDF2 for the boot loader; a disk passphrase, which cannot be
/// hashed, is left out.
pub fn saved_kickstart(ks: &Kickstart) -> Result<String> {
    let mut ks = ks.clone();
    for item in &mut ks.items {
        let Item::Command(c) = &mut item.value else {
            continue;
        };
        match c {
            Command::Rootpw(r) if r.password.is_some() && !r.iscrypted => {
                r.password = r.password.as_deref().map(hash_password).transpose()?;
                r.iscrypted = true;
                r.plaintext = false;
            }
            Command::User(u) if u.password.is_some() && !u.iscrypted => {
                u.password = u.password.as_deref().map(hash_password).transpose()?;
                u.iscrypted = true;
                u.plaintext = false;
            }
            Command::Bootloader(b) => {
                // The password the install sets, as a grub PBKDF2 hash.
                let password = b.grub_password();
                b.md5pass = None;
                b.password = password.as_ref().map(grub_hash).transpose()?;
                b.iscrypted = b.password.is_some();
            }
            Command::Autopart(a) => a.passphrase = None,
            _ => {}
        }
    }
    Ok(format!(
        "# Written by hvnode-install {} from the kickstart and the answers given on\n\
         # the console. Passwords are hashes (SHA-512 crypt; grub PBKDF2 for the\n\
         # boot loader). Give it to another install (inst.ks=…) to install a\n\
         # node the same way.\n\n{}",
        env!("CARGO_PKG_VERSION"),
        kickstart::render(&ks)
    ))
}
