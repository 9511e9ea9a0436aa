//! The spokes: each asks its questions, checks every answer and asks again
//! with a message that says what was wrong. A value the kickstart settles
//! is shown, not asked.

use anyhow::Result;
use hostinfo::{BlockDevice, human_bytes};
use layers::volumes::min_disk_bytes;

use super::hub::{Given, Spoke};
use super::{AdminUser, Answers, Console, LayoutChoice, NetChoice, validate};
use crate::disks;
use crate::target::hash_password;

/// Runs one spoke.
pub fn run(con: &mut Console<'_>, spoke: Spoke, given: &Given, a: &mut Answers) -> Result<()> {
    match spoke {
        Spoke::Destination => destination(con, given, a),
        Spoke::Network => network(con, given, a),
        Spoke::TimeZone => time_zone(con, given, a),
        Spoke::RootPassword => root_password(con, given, a),
        Spoke::User => user(con, given, a),
    }
}

/// Asks for a number from 1 to `n`; Enter takes `default` when there is one.
fn choose(con: &mut Console<'_>, prompt: &str, n: usize, default: Option<usize>) -> Result<usize> {
    let range = if n == 1 {
        "1".to_string()
    } else {
        format!("1-{n}")
    };
    let full = match default {
        Some(d) => format!("{prompt} [{range}, Enter for {}]: ", d + 1),
        None => format!("{prompt} [{range}]: "),
    };
    loop {
        let a = con.ask(&full)?;
        if a.is_empty()
            && let Some(d) = default
        {
            return Ok(d);
        }
        match a.parse::<usize>() {
            Ok(i) if (1..=n).contains(&i) => return Ok(i - 1),
            _ => con.say(&format!("Type a number from 1 to {n}."))?,
        }
    }
}

/// Why a disk cannot take the node, if it cannot.
fn unusable(con: &Console<'_>, d: &BlockDevice) -> Option<String> {
    if let Some(why) = disks::busy_reason(d, con.env.boot_medium()) {
        return Some(why);
    }
    let min = min_disk_bytes();
    (d.size < min).then(|| format!("too small: a node needs {}", human_bytes(min as f64)))
}

/// The disks the administrator may choose (names).
pub fn usable_disks(con: &Console<'_>, given: &Given) -> Vec<String> {
    let all = con.env.disks();
    disks::candidates(all)
        .into_iter()
        .filter(|d| !given.ignore.iter().any(|i| disks::find(all, i) == Some(*d)))
        .filter(|d| unusable(con, d).is_none())
        .map(|d| d.name.clone())
        .collect()
}

fn destination(con: &mut Console<'_>, given: &Given, a: &mut Answers) -> Result<()> {
    if given.fixed(&given.disk) && given.fixed(&given.layout) {
        return con.say(&format!(
            "The kickstart sets the destination ({}, {}); it is not asked here.",
            given.disk.as_deref().unwrap_or_default(),
            given.layout.as_deref().unwrap_or_default()
        ));
    }
    if given.fixed(&given.disk) {
        con.say(&format!(
            "Disk: {} (set by the kickstart).",
            given.disk.as_deref().unwrap_or_default()
        ))?;
    } else {
        let all = con.env.disks().to_vec();
        let mut usable = Vec::new();
        con.say("Disks:")?;
        for d in disks::candidates(&all) {
            if given.ignore.iter().any(|i| disks::find(&all, i) == Some(d)) {
                continue;
            }
            match unusable(con, d) {
                Some(why) => con.say(&format!("      {}: not usable, {why}", d.describe()))?,
                None => {
                    usable.push(d.name.clone());
                    con.say(&format!("  {}) {}", usable.len(), d.describe()))?;
                }
            }
        }
        if usable.is_empty() {
            return con.say(
                "There is no disk this machine could install on: add a disk of at least \
                 the size above, or free one, then refresh.",
            );
        }
        let current = a
            .disk
            .as_ref()
            .or(given.disk.as_ref())
            .and_then(|d| usable.iter().position(|u| u == d));
        let i = choose(con, "Install on which disk", usable.len(), current)?;
        con.say(&format!(
            "{}: everything on it is erased, once you have confirmed the plan.",
            usable[i]
        ))?;
        a.disk = Some(usable[i].clone());
    }
    if given.fixed(&given.layout) {
        return con.say(&format!(
            "Layout: {} (set by the kickstart).",
            given.layout.as_deref().unwrap_or_default()
        ));
    }
    con.say("\nLayout:")?;
    con.say("  1) thin LVM: the layered root in an LVM thin pool (updates and rollback)")?;
    con.say("  2) btrfs: the layered root in btrfs subvolumes (updates and rollback)")?;
    con.say("  3) plain partitions: no LVM; the layers are reflinked folders of an XFS partition, the volumes fixed-size partitions")?;
    let current = LayoutChoice::ALL
        .iter()
        .position(|l| Some(*l) == a.layout)
        .unwrap_or(0);
    let i = choose(con, "Layout", LayoutChoice::ALL.len(), Some(current))?;
    a.layout = Some(LayoutChoice::ALL[i]);
    Ok(())
}

/// Asks until the check passes; Enter returns `None`.
fn ask_valid<T>(
    con: &mut Console<'_>,
    prompt: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>> {
    loop {
        let s = con.ask(prompt)?;
        if s.is_empty() {
            return Ok(None);
        }
        match check(&s) {
            Ok(v) => return Ok(Some(v)),
            Err(why) => con.say(&why)?,
        }
    }
}

fn network(con: &mut Console<'_>, given: &Given, a: &mut Answers) -> Result<()> {
    if given.fixed(&given.network) && given.fixed(&given.hostname) {
        return con.say(&format!(
            "The kickstart sets the network ({}) and the host name ({}); they are not asked here.",
            given.network.as_deref().unwrap_or_default(),
            given.hostname.as_deref().unwrap_or_default()
        ));
    }
    if given.fixed(&given.network) {
        con.say(&format!(
            "Network: {} (set by the kickstart).",
            given.network.as_deref().unwrap_or_default()
        ))?;
    } else {
        let ifaces = con.env.interfaces();
        if ifaces.is_empty() {
            con.say("No network interface was found; the node will use DHCP on all wired links.")?;
        } else {
            con.say("Interfaces:")?;
            for (i, n) in ifaces.iter().enumerate() {
                con.say(&format!("  {}) {n}", i + 1))?;
            }
            let current = a
                .network
                .as_ref()
                .and_then(|n| ifaces.iter().position(|i| i == n.device()))
                .unwrap_or(0);
            let i = choose(
                con,
                "Configure which interface",
                ifaces.len(),
                Some(current),
            )?;
            let device = ifaces[i].clone();
            con.say(&format!(
                "\nHow {device} gets its address:\n  1) DHCP\n  2) a static IPv4 address"
            ))?;
            let was_static = matches!(a.network, Some(NetChoice::Static { .. }));
            let how = choose(con, "Address from", 2, Some(usize::from(was_static)))?;
            a.network = Some(if how == 0 {
                NetChoice::Dhcp { device }
            } else {
                static_address(con, device)?
            });
        }
    }
    if given.fixed(&given.hostname) {
        return con.say(&format!(
            "Host name: {} (set by the kickstart).",
            given.hostname.as_deref().unwrap_or_default()
        ));
    }
    let current = a
        .hostname
        .clone()
        .or(given.hostname.clone())
        .unwrap_or_else(|| "hvnode".into());
    if let Some(h) = ask_valid(
        con,
        &format!("Host name, e.g. node1.example.com [Enter keeps {current}]: "),
        validate::hostname,
    )? {
        a.hostname = Some(h);
    }
    Ok(())
}

fn static_address(con: &mut Console<'_>, device: String) -> Result<NetChoice> {
    let (address, prefix) = loop {
        if let Some(v) = ask_valid(
            con,
            "IPv4 address with prefix length, e.g. 192.0.2.10/24: ",
            validate::ipv4_with_prefix,
        )? {
            break v;
        }
        con.say("A static address is needed here (or choose DHCP).")?;
    };
    let gateway = ask_valid(con, "Gateway [Enter for none]: ", |s| {
        validate::gateway(s, address, prefix)
    })?;
    let dns = ask_valid(
        con,
        "DNS servers, separated by commas [Enter for none]: ",
        validate::nameservers,
    )?
    .unwrap_or_default();
    Ok(NetChoice::Static {
        device,
        address,
        prefix,
        gateway,
        dns,
    })
}

/// How many zones to list before asking for a longer prefix.
const LIST_MAX: usize = 300;

fn columns(items: &[String]) -> String {
    let width = items.iter().map(|s| s.len()).max().unwrap_or(0) + 2;
    let per_line = (78 / width).max(1);
    let mut out = String::new();
    for row in items.chunks(per_line) {
        out.push_str("  ");
        for (i, s) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(s);
            } else {
                out.push_str(&format!("{s:<width$}"));
            }
        }
        out.push('\n');
    }
    out.trim_end().to_string()
}

fn time_zone(con: &mut Console<'_>, given: &Given, a: &mut Answers) -> Result<()> {
    if given.fixed(&given.timezone) {
        return con.say(&format!(
            "The kickstart sets the time zone ({}); it is not asked here.",
            given.timezone.as_deref().unwrap_or_default()
        ));
    }
    con.say(
        "Type a time zone (Europe/Paris, America/New_York, UTC), or the start of one\n\
         ending in / (Europe/) to list the zones under it, or ? for the regions.",
    )?;
    let current = a
        .timezone
        .clone()
        .or(given.timezone.clone())
        .unwrap_or_else(|| "UTC".into());
    loop {
        let s = con.ask(&format!("Time zone [Enter keeps {current}]: "))?;
        if s.is_empty() {
            return Ok(());
        }
        if s == "UTC" {
            a.timezone = Some(s);
            return Ok(());
        }
        if s == "?" {
            let mut regions: Vec<String> = con
                .env
                .zones()
                .iter()
                .filter_map(|z| z.split_once('/').map(|(r, _)| format!("{r}/")))
                .collect();
            regions.dedup();
            regions.push("UTC".into());
            con.say(&columns(&regions))?;
            continue;
        }
        if let Err(why) = validate::zone_name(s.trim_end_matches('/')) {
            con.say(&why)?;
            continue;
        }
        if !s.ends_with('/') && con.env.zone_exists(&s) {
            a.timezone = Some(s);
            return Ok(());
        }
        let lower = s.to_ascii_lowercase();
        let matches: Vec<String> = con
            .env
            .zones()
            .into_iter()
            .filter(|z| z.to_ascii_lowercase().starts_with(&lower))
            .collect();
        match matches.as_slice() {
            [] => con.say(&format!(
                "There is no time zone {s}; type the start of one ending in / (Europe/) to list zones, or ? for the regions."
            ))?,
            [one] => {
                con.say(&format!("Time zone: {one}"))?;
                a.timezone = Some(one.clone());
                return Ok(());
            }
            many if many.len() > LIST_MAX => con.say(&format!(
                "{} zones start with {s}; type more of the name.",
                many.len()
            ))?,
            many => {
                con.say(&columns(many))?;
                con.say("Type one of these names.")?;
            }
        }
    }
}

/// Whether an empty password means "go back" or "no password".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// Refused; Enter twice goes back without a password.
    Refused,
    /// No password (the account has another way in).
    Allowed,
}

/// A new password, typed twice without echo; the SHA-512 crypt hash, or
/// `None` when the administrator gave none (or went back).
fn new_password(con: &mut Console<'_>, who: &str, empty: Empty) -> Result<Option<String>> {
    let prompt = match empty {
        Empty::Refused => format!("Password for {who}: "),
        Empty::Allowed => format!("Password for {who} [Enter for none]: "),
    };
    let mut refused_once = false;
    loop {
        let p1 = con.ask_secret(&prompt)?;
        if p1.is_empty() {
            if empty == Empty::Allowed || refused_once {
                return Ok(None);
            }
            con.say("An empty password is not allowed. Type a password, or Enter again to go back without one.")?;
            refused_once = true;
            continue;
        }
        refused_once = false;
        let p2 = con.ask_secret(&format!("Password for {who} (confirm): "))?;
        if p1 != p2 {
            con.say("The passwords do not match. Type the password again.")?;
            continue;
        }
        if p1.chars().count() < 8 {
            con.say("The password is weak: it has fewer than 8 characters.")?;
            let sure = con.ask("Use it anyway? [yes/no]: ")?;
            if sure != "yes" {
                continue;
            }
        }
        return Ok(Some(hash_password(&p1)?));
    }
}

fn root_password(con: &mut Console<'_>, given: &Given, a: &mut Answers) -> Result<()> {
    if given.fixed(&given.root) {
        return con.say(&format!(
            "The kickstart sets root's password ({}); it is not asked here.",
            given.root.as_deref().unwrap_or_default()
        ));
    }
    con.say("The password is typed twice and not shown.")?;
    match new_password(con, "root", Empty::Refused)? {
        Some(h) => {
            a.root_password_hash = Some(h);
            con.say("Root password set.")
        }
        None => con.say("Root password not changed."),
    }
}

fn user(con: &mut Console<'_>, given: &Given, a: &mut Answers) -> Result<()> {
    if given.users_fixed() {
        return con.say(&format!(
            "The kickstart creates the users ({}); no user is asked here.",
            given.users.join(", ")
        ));
    }
    con.say("An administrator account: a member of the group wheel, who may administer\nthe node and its console. It logs in with a password, an SSH key, or both.")?;
    let prompt = match &a.user {
        Some(u) => format!(
            "User name [Enter to go back, - to create no user instead of {}]: ",
            u.name
        ),
        None => "User name [Enter to go back]: ".to_string(),
    };
    let name = loop {
        let s = con.ask(&prompt)?;
        if s.is_empty() {
            return Ok(());
        }
        if s == "-" && a.user.is_some() {
            a.user = None;
            return con.say("No user will be created.");
        }
        match validate::user_name(&s) {
            Err(why) => con.say(&why)?,
            Ok(n)
                if n == "root"
                    || n == "wheel"
                    || con.env.account_exists(&n)
                    || given.users.contains(&n) =>
            {
                con.say(&format!(
                    "{n} is already an account or group on the node; choose another name."
                ))?;
            }
            Ok(n) => break n,
        }
    };
    con.say("The password is typed twice and not shown.")?;
    let password_hash = new_password(con, &name, Empty::Allowed)?;
    let ssh_key = loop {
        let key = ask_valid(
            con,
            "SSH public key, one line as in ~/.ssh/id_ed25519.pub [Enter for none]: ",
            validate::ssh_public_key,
        )?;
        if key.is_some() || password_hash.is_some() {
            break key;
        }
        con.say(&format!(
            "{name} needs a password or an SSH key to log in: paste a key, or go back (q) and give a password."
        ))?;
        if con.ask("Paste a key (Enter) or go back (q)? ")? == "q" {
            return con.say("No user created.");
        }
    };
    let u = AdminUser {
        name,
        password_hash,
        ssh_key,
    };
    con.say(&format!("User {} will be created.", u.describe()))?;
    a.user = Some(u);
    Ok(())
}
