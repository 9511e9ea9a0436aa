//! The hub: the numbered spokes with their state, Anaconda text mode's
//! two columns, and `b` (begin), `q` (quit), `r` (refresh).

use anyhow::{Result, bail};
use kickstart::commands::{AutopartType, BootProto};
use kickstart::node::{Layout, NodePlan};

use super::{Answers, Console, LayoutChoice, spokes};
use crate::disks;

/// What the kickstart already sets, as the hub shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    /// The disk (`ignoredisk --only-use`, else `clearpart --drives`).
    pub disk: Option<String>,
    /// The layout, described (`autopart --type=…`, or an explicit layout).
    pub layout: Option<String>,
    /// `ignoredisk --drives`: never offered.
    pub ignore: Vec<String>,
    /// The root account (`rootpw`, or an SSH key for root), described.
    pub root: Option<String>,
    /// `user` names.
    pub users: Vec<String>,
    /// The network devices, described.
    pub network: Option<String>,
    pub hostname: Option<String>,
    pub timezone: Option<String>,
    /// The kickstart's values are defaults the administrator may change
    /// (the medium's interactive-defaults.ks) rather than settled.
    pub editable: bool,
}

impl Given {
    pub fn from_plan(plan: &NodePlan, editable: bool) -> Given {
        let d = &plan.disks;
        let disk = d.only_use.first().or(d.clear_drives.first()).cloned();
        let layout = match &plan.layout {
            Layout::Interactive => None,
            Layout::Auto { scheme, .. } => Some(
                match scheme {
                    AutopartType::Thinp | AutopartType::Lvm => "thin LVM",
                    AutopartType::Btrfs => "btrfs",
                    AutopartType::Plain | AutopartType::Partition => "plain partitions",
                }
                .to_string(),
            ),
            Layout::Manual { .. } => Some("part/volgroup/logvol layout".into()),
        };
        let root = if plan.root_locked && plan.root_ssh_keys > 0 {
            Some("locked, SSH key".to_string())
        } else if plan.root_locked {
            Some("locked".to_string())
        } else if plan.root_password {
            Some("set".to_string())
        } else if plan.root_ssh_keys > 0 {
            Some("SSH key".to_string())
        } else {
            None
        };
        let network = plan.network.first().map(|n| {
            let dev = n.device.as_deref().unwrap_or("link");
            let first = match (n.bootproto, &n.ip) {
                (BootProto::Static, Some(ip)) => format!("{ip} on {dev}"),
                _ => format!("DHCP on {dev}"),
            };
            match plan.network.len() {
                1 => first,
                n => format!("{first} and {} more", n - 1),
            }
        });
        Given {
            disk,
            layout,
            ignore: d.ignore.clone(),
            root,
            users: plan.users.iter().map(|u| u.name.clone()).collect(),
            network,
            hostname: plan.hostname.clone(),
            timezone: plan.timezone.clone(),
            editable,
        }
    }

    /// Whether the kickstart settles this value (it is then not asked).
    pub fn fixed<T>(&self, v: &Option<T>) -> bool {
        v.is_some() && !self.editable
    }

    pub fn users_fixed(&self) -> bool {
        !self.users.is_empty() && !self.editable
    }
}

/// The spokes, in hub order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoke {
    Destination,
    Network,
    TimeZone,
    RootPassword,
    User,
}

impl Spoke {
    pub const ALL: [Spoke; 5] = [
        Spoke::Destination,
        Spoke::Network,
        Spoke::TimeZone,
        Spoke::RootPassword,
        Spoke::User,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Spoke::Destination => "Installation destination",
            Spoke::Network => "Network & host name",
            Spoke::TimeZone => "Time zone",
            Spoke::RootPassword => "Root password",
            Spoke::User => "User creation",
        }
    }

    fn number(self) -> usize {
        Spoke::ALL
            .iter()
            .position(|s| *s == self)
            .map_or(0, |i| i + 1)
    }
}

/// `[x]` done, `[!]` must be done before the install, `[ ]` optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Done,
    Needed,
    Optional,
}

impl Mark {
    fn text(self) -> &'static str {
        match self {
            Mark::Done => "[x]",
            Mark::Needed => "[!]",
            Mark::Optional => "[ ]",
        }
    }
}

/// Whether the node will have an account to log in with.
pub fn has_account(given: &Given, a: &Answers) -> bool {
    given.root.as_deref().is_some_and(|r| r != "locked")
        || !given.users.is_empty()
        || a.root_password_hash.is_some()
        || a.user.is_some()
}

fn kickstart_note(fixed: bool, text: String) -> String {
    if fixed {
        format!("{text} (kickstart)")
    } else {
        text
    }
}

/// A spoke's mark and one-line state.
pub fn status(con: &Console<'_>, spoke: Spoke, given: &Given, a: &Answers) -> (Mark, String) {
    match spoke {
        Spoke::Destination => {
            let layout = a
                .layout
                .map(|l| l.describe().to_string())
                .or(given.layout.clone())
                .unwrap_or_else(|| LayoutChoice::Thinp.describe().into());
            let fixed = given.fixed(&given.disk) && given.fixed(&given.layout);
            match a.disk.as_ref().or(given.disk.as_ref()) {
                Some(d) => {
                    let disk = disks::find(con.env.disks(), d)
                        .map(|dev| {
                            format!("{} {}", dev.name, hostinfo::human_bytes(dev.size as f64))
                        })
                        .unwrap_or_else(|| d.clone());
                    (
                        Mark::Done,
                        kickstart_note(fixed, format!("{disk}, {layout}")),
                    )
                }
                None => (Mark::Needed, "(no disk selected)".into()),
            }
        }
        Spoke::Network => {
            let net = a
                .network
                .as_ref()
                .map(|n| n.describe())
                .or(given.network.clone())
                .unwrap_or_else(|| "DHCP on all wired links".into());
            let host = a
                .hostname
                .clone()
                .or(given.hostname.clone())
                .unwrap_or_else(|| "hvnode".into());
            let fixed = given.fixed(&given.network) && given.fixed(&given.hostname);
            (Mark::Done, kickstart_note(fixed, format!("{net}, {host}")))
        }
        Spoke::TimeZone => {
            let tz = a
                .timezone
                .clone()
                .or(given.timezone.clone())
                .unwrap_or_else(|| "UTC".into());
            (Mark::Done, kickstart_note(given.fixed(&given.timezone), tz))
        }
        Spoke::RootPassword => {
            if a.root_password_hash.is_some() {
                (Mark::Done, "set".into())
            } else if let Some(r) = &given.root {
                (Mark::Done, kickstart_note(!given.editable, r.clone()))
            } else if has_account(given, a) {
                (Mark::Optional, "(not set; root cannot log in)".into())
            } else {
                (Mark::Needed, "(not set)".into())
            }
        }
        Spoke::User => {
            if let Some(u) = &a.user {
                (Mark::Done, u.describe())
            } else if !given.users.is_empty() {
                (
                    Mark::Done,
                    kickstart_note(!given.editable, given.users.join(", ")),
                )
            } else if has_account(given, a) {
                (Mark::Optional, "(no user will be created)".into())
            } else {
                (Mark::Needed, "(no user will be created)".into())
            }
        }
    }
}

/// Width of one hub column (two fit in 80 columns).
const COLUMN: usize = 40;

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

/// The hub as text: a title, the spokes in two columns, a rule.
pub fn render(con: &Console<'_>, given: &Given, a: &Answers) -> String {
    let cells: Vec<(String, String)> = Spoke::ALL
        .iter()
        .map(|s| {
            let (mark, state) = status(con, *s, given, a);
            (
                cut(
                    &format!("{:>2}) {} {}", s.number(), mark.text(), s.title()),
                    COLUMN - 1,
                ),
                format!("{:8}{}", "", cut(&state, COLUMN - 9)),
            )
        })
        .collect();
    let mut out = format!(
        "\n{}\nhvnode {} installation\n\n",
        "=".repeat(80),
        env!("CARGO_PKG_VERSION")
    );
    for pair in cells.chunks(2) {
        for line in 0..2 {
            let left = if line == 0 { &pair[0].0 } else { &pair[0].1 };
            match pair.get(1) {
                Some(right) => {
                    let r = if line == 0 { &right.0 } else { &right.1 };
                    out.push_str(&format!("{left:<COLUMN$}{r}\n"));
                }
                None => out.push_str(&format!("{left}\n")),
            }
        }
    }
    out.push('\n');
    out.push_str(&"=".repeat(80));
    out
}

/// Why `b` cannot begin yet, if it cannot.
pub fn not_ready(given: &Given, a: &Answers) -> Option<String> {
    if a.disk.is_none() && given.disk.is_none() {
        return Some(format!(
            "Not ready: choose a disk in {}) {}.",
            Spoke::Destination.number(),
            Spoke::Destination.title()
        ));
    }
    if !has_account(given, a) {
        return Some(format!(
            "Not ready: nobody could log in to the node. Set a root password ({}) or create an admin user ({}).",
            Spoke::RootPassword.number(),
            Spoke::User.number()
        ));
    }
    None
}

/// Fills the defaults a spoke shows as done without a visit: the layout
/// (thin LVM), the time zone (UTC) and the only disk there is.
fn defaults(con: &Console<'_>, given: &Given, a: &mut Answers) {
    if given.layout.is_none() && a.layout.is_none() {
        a.layout = Some(LayoutChoice::Thinp);
    }
    if given.timezone.is_none() && a.timezone.is_none() {
        a.timezone = Some("UTC".into());
    }
    if given.disk.is_none() && a.disk.is_none() {
        let usable = spokes::usable_disks(con, given);
        if let [only] = usable.as_slice() {
            a.disk = Some(only.clone());
        }
    }
}

const PROMPT: &str = "Please make a selection from the above ['b' to begin installation, 'q' to quit, 'r' to refresh]: ";

/// Runs the hub until `b` with every needed spoke done; `q` (confirmed)
/// is an error that says nothing was written.
pub fn run(con: &mut Console<'_>, given: &Given, mut a: Answers) -> Result<Answers> {
    defaults(con, given, &mut a);
    loop {
        let text = render(con, given, &a);
        con.say(&text)?;
        let choice = con.ask(PROMPT)?;
        match choice.as_str() {
            "b" => match not_ready(given, &a) {
                Some(why) => con.say(&why)?,
                None => return Ok(a),
            },
            "q" => {
                let sure = con.ask("Quit the installer? Nothing has been written. [yes/no]: ")?;
                if sure == "yes" {
                    bail!("quit on the console: nothing was written");
                }
            }
            "r" | "" => {}
            n => match n
                .parse::<usize>()
                .ok()
                .and_then(|i| Spoke::ALL.get(i.wrapping_sub(1)))
            {
                Some(spoke) => {
                    con.say(&format!("\n{}\n{}\n", "=".repeat(80), spoke.title()))?;
                    spokes::run(con, *spoke, given, &mut a)?;
                }
                None => con.say(&format!(
                    "{n:?} is not a choice: type a number from 1 to {}, b, q or r.",
                    Spoke::ALL.len()
                ))?,
            },
        }
    }
}
