//! The node-install view of a kickstart: the questions hvnode's installer
//! asks, answered from the parsed commands, plus warnings where a kickstart
//! is valid Anaconda syntax but makes no sense for a node.

use serde::Serialize;

use crate::addon::{RegisterAddon, parse_engine};
use crate::commands::{
    AutopartType, BootProto, Command, Liveimg, Logvol, Network, Partition, RebootAction, Reqpart,
    Selinux, Volgroup,
};
use crate::diag::{Diagnostics, Loc};
use crate::firewall::Firewall;
use crate::grub_password::BootPassword;
use crate::model::Kickstart;

/// `liveimg --url=` of the image on the medium the installer booted from
/// (dracut mounts the medium at `/run/initramfs/live`).
pub const MEDIUM_IMAGE_URL: &str = "file:///run/initramfs/live/LiveOS/squashfs.img";

/// Where the node image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum ImageSource {
    /// `liveimg --url=…`.
    Url {
        url: String,
        checksum: Option<String>,
        proxy: Option<String>,
        noverifyssl: bool,
    },
    /// No `liveimg`: the squashfs on the medium the installer booted from.
    InstallMedium,
}

/// Which disks the installer may touch and what it clears.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Disks {
    /// `ignoredisk --only-use`: only these (empty: every disk not ignored).
    pub only_use: Vec<String>,
    /// `ignoredisk --drives`: never these.
    pub ignore: Vec<String>,
    /// `clearpart`: what to remove first.
    pub clear: Clear,
    /// `clearpart --drives`.
    pub clear_drives: Vec<String>,
    /// `clearpart --initlabel` / `zerombr`: new partition tables without asking.
    pub initlabel: bool,
    pub zerombr: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Clear {
    /// No `clearpart`, or `clearpart --none`.
    #[default]
    Nothing,
    /// `--linux`: Linux partitions only.
    Linux,
    /// `--all`.
    All,
    /// `--list=…`.
    List,
}

/// How the disks are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layout", rename_all = "kebab-case")]
pub enum Layout {
    /// No storage commands: the administrator chooses on the console.
    Interactive,
    /// `autopart`.
    Auto {
        scheme: AutopartType,
        fstype: Option<String>,
        encrypted: bool,
        nohome: bool,
        noswap: bool,
    },
    /// `part` / `volgroup` / `logvol` (and `reqpart`), each with the line
    /// it was written on, so that the installer's errors can name it.
    Manual {
        reqpart: Option<At<Reqpart>>,
        partitions: Vec<At<Partition>>,
        volgroups: Vec<At<Volgroup>>,
        logvols: Vec<At<Logvol>>,
        /// `btrfs` and `raid` lines (by command name), which a node's
        /// layout does not take.
        others: Vec<At<String>>,
    },
}

/// A command and the place it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct At<T> {
    pub loc: Loc,
    #[serde(flatten)]
    pub item: T,
}

impl<T> At<T> {
    pub fn new(loc: &Loc, item: T) -> Self {
        At {
            loc: loc.clone(),
            item,
        }
    }
}

/// One network device to configure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetDevice {
    pub device: Option<String>,
    pub bootproto: BootProto,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub nameservers: Vec<String>,
    pub bond_members: Vec<String>,
    pub bond_options: Option<String>,
    pub vlan_id: Option<String>,
    pub interface_name: Option<String>,
    pub onboot: bool,
    pub activate: bool,
}

/// The registration the node performs at first boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    pub engine_host: String,
    pub engine_port: u16,
    pub fingerprint: Option<String>,
    pub node_name: Option<String>,
    pub node_address: Option<String>,
    pub ssh_user: Option<String>,
    pub ssh_port: Option<i64>,
}

/// A user account to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub groups: Vec<String>,
    pub has_password: bool,
    pub locked: bool,
    pub ssh_keys: usize,
}

/// Everything the installer needs to know, from one kickstart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub image: ImageSource,
    /// `%addon org_hvnode_image --allow-unverified`: an image that neither
    /// a signature nor a checksum verifies is installed (with a warning)
    /// rather than refused.
    pub allow_unverified_image: bool,
    pub disks: Disks,
    pub layout: Layout,
    pub bootloader_append: Option<String>,
    /// `bootloader --timeout`: seconds grub shows its menu (else 5).
    pub bootloader_timeout: Option<u32>,
    /// `bootloader --password` / `--md5pass`: grub's superuser password
    /// (shown only as `plain` or `pbkdf2`, never its value).
    pub bootloader_password: Option<BootPassword>,
    pub hostname: Option<String>,
    pub network: Vec<NetDevice>,
    pub root_password: bool,
    pub root_locked: bool,
    pub root_ssh_keys: usize,
    pub users: Vec<Account>,
    pub timezone: Option<String>,
    pub lang: Option<String>,
    pub selinux: &'static str,
    pub services_enabled: Vec<String>,
    pub services_disabled: Vec<String>,
    /// The firewall (`firewall`, else the node's default).
    pub firewall: Firewall,
    pub registration: Option<Registration>,
    /// False when the installer must stop for the administrator.
    pub unattended: bool,
    pub finish: Option<RebootAction>,
    pub pre_scripts: usize,
    pub post_scripts: usize,
}

/// The plan, and node-level warnings.
///
/// One pass over the commands gathers what they say (warning, in kickstart
/// order, where a command makes no sense for a node); then the layout, the
/// image source, the scripts and the registration are worked out, and
/// last whether the install can run unattended and whether anybody can log
/// in.
pub fn plan(ks: &Kickstart) -> (NodePlan, Diagnostics) {
    let mut d = Diagnostics::default();
    let mut p = NodePlan::empty();
    let mut gathered = Gathered::default();
    for (loc, c) in ks.commands() {
        gathered.command(&mut p, loc, c, &mut d);
    }
    let Gathered {
        liveimg,
        mut storage,
        ssh_keys,
        cmdline,
    } = gathered;
    for keys in ssh_keys {
        if keys.user == "root" {
            p.root_ssh_keys += keys.count;
        } else if let Some(a) = p.users.iter_mut().find(|a| a.name == keys.user) {
            a.ssh_keys += keys.count;
        }
    }
    p.disks = std::mem::take(&mut storage.disks);
    p.layout = storage.layout(ks, &mut d);
    p.allow_unverified_image =
        crate::addon::read_image(ks, &mut d).is_some_and(|a| a.allow_unverified);
    p.image = image_source(liveimg, ks, p.allow_unverified_image, &mut d);
    p.pre_scripts = ks
        .scripts()
        .filter(|(_, s)| s.header.kind != crate::sections::ScriptKind::Post)
        .count();
    p.post_scripts = ks
        .scripts()
        .filter(|(_, s)| s.header.kind == crate::sections::ScriptKind::Post)
        .count();
    if let Some(r) = crate::addon::read(ks, &mut d) {
        p.registration = registration(&r);
    }
    p.unattended = cmdline
        || (!matches!(p.layout, Layout::Interactive)
            && (p.root_password || p.root_locked || !p.users.is_empty()));
    if !p.root_password
        && p.root_ssh_keys == 0
        && p.users.is_empty()
        && !matches!(p.layout, Layout::Interactive)
    {
        if let Some(first) = ks.items.first() {
            d.warning(&first.loc, "no root password, no SSH key and no user: nobody will be able to log in to the node or its console");
        }
    }
    (p, d)
}

impl NodePlan {
    /// The plan of a kickstart without commands.
    fn empty() -> Self {
        NodePlan {
            image: ImageSource::InstallMedium,
            allow_unverified_image: false,
            disks: Disks::default(),
            layout: Layout::Interactive,
            bootloader_append: None,
            bootloader_timeout: None,
            bootloader_password: None,
            hostname: None,
            network: Vec::new(),
            root_password: false,
            root_locked: false,
            root_ssh_keys: 0,
            users: Vec::new(),
            timezone: None,
            lang: None,
            selinux: "enforcing",
            services_enabled: Vec::new(),
            services_disabled: Vec::new(),
            firewall: Firewall::default(),
            registration: None,
            unattended: false,
            finish: None,
            pre_scripts: 0,
            post_scripts: 0,
        }
    }
}

/// What the commands say that is worked out after all are read.
#[derive(Default)]
struct Gathered<'a> {
    /// The (last) `liveimg`.
    liveimg: Option<LiveimgLine<'a>>,
    storage: StorageLines,
    /// `sshkey` lines counted per user, in the order the users appear.
    ssh_keys: Vec<SshKeys>,
    /// `cmdline` (the last display mode): no questions.
    cmdline: bool,
}

/// A `liveimg` command and its line.
struct LiveimgLine<'a> {
    loc: &'a Loc,
    liveimg: &'a Liveimg,
}

/// How many `sshkey` lines name a user.
struct SshKeys {
    user: String,
    count: usize,
}

/// The storage commands, each with its line.
#[derive(Default)]
struct StorageLines {
    disks: Disks,
    auto: Option<Layout>,
    reqpart: Option<At<Reqpart>>,
    partitions: Vec<At<Partition>>,
    volgroups: Vec<At<Volgroup>>,
    logvols: Vec<At<Logvol>>,
    /// `btrfs` and `raid` lines.
    others: Vec<At<String>>,
}

impl<'a> Gathered<'a> {
    /// Takes one command into the plan, or keeps it for later.
    fn command(&mut self, p: &mut NodePlan, loc: &'a Loc, c: &'a Command, d: &mut Diagnostics) {
        match c {
            Command::Liveimg(liveimg) => self.liveimg = Some(LiveimgLine { loc, liveimg }),
            Command::Sshkey(k) => match self.ssh_keys.iter_mut().find(|s| s.user == k.username) {
                Some(keys) => keys.count += 1,
                None => self.ssh_keys.push(SshKeys {
                    user: k.username.clone(),
                    count: 1,
                }),
            },
            Command::DisplayMode(m) => {
                self.cmdline = m.mode == crate::commands::DisplayKind::Cmdline;
            }
            _ => {
                if !self.storage.take(loc, c, d) {
                    system_command(p, loc, c, d);
                }
            }
        }
    }
}

impl StorageLines {
    /// Keeps a storage command; false for any other.
    fn take(&mut self, loc: &Loc, c: &Command, d: &mut Diagnostics) -> bool {
        match c {
            Command::Autopart(a) => {
                if !matches!(a.scheme(), AutopartType::Thinp | AutopartType::Btrfs) {
                    d.warning(
                        loc,
                        format!(
                            "autopart --type={}: hvnode's layered root (updates and rollback) needs --type=thinp or --type=btrfs",
                            crate::commands::value::KsEnum::as_word(&a.scheme())
                        ),
                    );
                }
                self.auto = Some(Layout::Auto {
                    scheme: a.scheme(),
                    fstype: a.fstype.clone(),
                    encrypted: a.encrypted,
                    nohome: a.nohome,
                    noswap: a.noswap,
                });
            }
            Command::Clearpart(cp) => {
                self.disks.clear = if cp.all {
                    Clear::All
                } else if cp.linux {
                    Clear::Linux
                } else if !cp.list.is_empty() {
                    Clear::List
                } else {
                    Clear::Nothing
                };
                self.disks.clear_drives = cp.drives.clone();
                self.disks.initlabel |= cp.initlabel;
            }
            Command::Zerombr(_) => self.disks.zerombr = true,
            Command::Ignoredisk(i) => {
                self.disks.only_use = i.only_use.clone();
                self.disks.ignore = i.drives.clone();
            }
            Command::Reqpart(x) => self.reqpart = Some(At::new(loc, x.clone())),
            Command::Partition(x) => self.partitions.push(At::new(loc, x.clone())),
            Command::Volgroup(x) => self.volgroups.push(At::new(loc, x.clone())),
            Command::Logvol(x) => self.logvols.push(At::new(loc, x.clone())),
            Command::Ignored(i) if matches!(i.name.as_str(), "btrfs" | "raid") => {
                self.others.push(At::new(loc, i.name.clone()));
            }
            _ => return false,
        }
        true
    }

    /// The layout the lines make: `autopart`, explicit lines (warning
    /// where they cannot hold a layered root), or none.
    fn layout(self, ks: &Kickstart, d: &mut Diagnostics) -> Layout {
        let has_storage = self.auto.is_some()
            || !self.partitions.is_empty()
            || !self.logvols.is_empty()
            || self.reqpart.is_some()
            || !self.others.is_empty();
        if let Some(auto) = self.auto {
            return auto;
        }
        if !has_storage {
            return Layout::Interactive;
        }
        if !self.logvols.is_empty() && !self.logvols.iter().any(|l| l.item.thinpool) {
            if let Some((loc, _)) = ks.commands().find(|(_, c)| matches!(c, Command::Logvol(_))) {
                d.warning(
                    loc,
                    "no logvol --thinpool: hvnode's layered root needs the root LV in an LVM thin pool",
                );
            }
        }
        if !self.partitions.iter().any(|x| x.item.mntpoint == "/")
            && !self.logvols.iter().any(|x| x.item.mntpoint == "/")
        {
            if let Some((loc, _)) = ks
                .commands()
                .find(|(_, c)| matches!(c, Command::Partition(_) | Command::Logvol(_)))
            {
                d.warning(loc, "the layout has no / mount point");
            }
        }
        Layout::Manual {
            reqpart: self.reqpart,
            partitions: self.partitions,
            volgroups: self.volgroups,
            logvols: self.logvols,
            others: self.others,
        }
    }
}

/// Takes a command that is neither storage nor read later (accounts,
/// network, locale, security, services) into the plan.
fn system_command(p: &mut NodePlan, loc: &Loc, c: &Command, d: &mut Diagnostics) {
    match c {
        Command::Bootloader(b) => {
            p.bootloader_append = b.append.clone();
            p.bootloader_timeout = b.timeout.and_then(|t| u32::try_from(t).ok());
            p.bootloader_password = b.grub_password();
        }
        Command::Network(n) => {
            if n.hostname.is_some() {
                p.hostname = n.hostname.clone();
            }
            if let Some(dev) = net_device(n) {
                p.network.push(dev);
            }
        }
        Command::Rootpw(r) => {
            p.root_password = r.password.is_some();
            p.root_locked = r.lock;
        }
        Command::User(u) => p.users.push(Account {
            name: u.name.clone(),
            groups: u.groups.clone(),
            has_password: u.password.is_some(),
            locked: u.lock,
            ssh_keys: 0,
        }),
        Command::Timezone(t) => p.timezone = t.timezone.first().cloned(),
        Command::Lang(l) => p.lang = Some(l.lang.clone()),
        Command::Selinux(s) => p.selinux = selinux_mode(s, loc, d),
        Command::Services(s) => {
            p.services_enabled.extend(s.enabled.0.iter().cloned());
            p.services_disabled.extend(s.disabled.0.iter().cloned());
            for critical in ["libvirtd", "sshd", "hvnode-agent"] {
                if s.disabled.0.iter().any(|x| x == critical) {
                    d.warning(
                        loc,
                        format!("services: disabling {critical} leaves the node unmanageable"),
                    );
                }
            }
        }
        Command::Firewall(f) => p.firewall = crate::firewall::resolve(f, loc, d),
        Command::Reboot(r) => p.finish = Some(r.action),
        Command::Firstboot(f) if f.enable || f.reconfig => {
            d.warning(
                loc,
                "firstboot: hvnode has no first-boot setup tool; this does nothing",
            );
        }
        Command::Ignored(i)
            if matches!(
                i.name.as_str(),
                "url" | "cdrom" | "harddrive" | "nfs" | "repo" | "ostreesetup" | "ostreecontainer"
            ) =>
        {
            d.warning(
                loc,
                format!(
                    "{}: a node is installed from its image (liveimg), not from packages or trees",
                    i.name
                ),
            );
        }
        _ => {}
    }
}

/// The device a `network` line configures; none for a line that only
/// sets the host name.
fn net_device(n: &Network) -> Option<NetDevice> {
    if n.device.is_none() && n.hostname.is_some() && n.ip.is_none() && n.bootproto.is_none() {
        return None;
    }
    Some(NetDevice {
        device: n.device.clone(),
        bootproto: n.bootproto.unwrap_or(BootProto::Dhcp),
        ip: n.ip.clone(),
        netmask: n.netmask.clone(),
        gateway: n.gateway.clone(),
        nameservers: crate::commands::value::comma_split(
            n.nameserver.as_deref().unwrap_or_default(),
        ),
        bond_members: crate::commands::value::comma_split(
            n.bondslaves.as_deref().unwrap_or_default(),
        ),
        bond_options: n.bondopts.clone(),
        vlan_id: n.vlanid.clone(),
        interface_name: n.interfacename.clone(),
        onboot: n.onboot.unwrap_or(true),
        activate: n.activate,
    })
}

/// The SELinux mode of a `selinux` line; warns when it is not enforcing.
fn selinux_mode(s: &Selinux, loc: &Loc, d: &mut Diagnostics) -> &'static str {
    let mode = if s.disabled {
        "disabled"
    } else if s.permissive {
        "permissive"
    } else {
        "enforcing"
    };
    if mode != "enforcing" {
        d.warning(
            loc,
            format!("selinux: {mode} leaves virtual machines without sVirt confinement; hvnode is built for enforcing"),
        );
    }
    mode
}

/// Where the image comes from; warns about `%packages` next to
/// `liveimg`, an image without `--checksum` (other than the medium's own),
/// or no `liveimg` at all.
fn image_source(
    liveimg: Option<LiveimgLine>,
    ks: &Kickstart,
    allow_unverified: bool,
    d: &mut Diagnostics,
) -> ImageSource {
    let Some(LiveimgLine { loc, liveimg: l }) = liveimg else {
        let loc = ks
            .items
            .first()
            .map(|i| i.loc.clone())
            .unwrap_or_else(|| Loc::new("", 1));
        d.warning(
            &loc,
            "no liveimg: the installer will use the image on its boot medium",
        );
        return ImageSource::InstallMedium;
    };
    if let Some((ploc, _)) = ks.packages().next() {
        d.warning(
            ploc,
            "%packages does nothing with liveimg: the node image is installed as built",
        );
    }
    if l.checksum.is_none() && l.url != MEDIUM_IMAGE_URL {
        d.warning(
            loc,
            if allow_unverified {
                "liveimg without --checksum: unless its signature (the URL + .minisig) verifies with a trusted key, the image is installed unverified (%addon org_hvnode_image --allow-unverified)"
            } else {
                "liveimg without --checksum: the installer refuses the image unless its signature (the URL + .minisig) verifies with a trusted key; add --checksum=SHA256"
            },
        );
    }
    ImageSource::Url {
        url: l.url.clone(),
        checksum: l.checksum.clone(),
        proxy: l.proxy.clone(),
        noverifyssl: l.noverifyssl,
    }
}

fn registration(r: &RegisterAddon) -> Option<Registration> {
    let e = parse_engine(&r.engine).ok()?;
    Some(Registration {
        engine_host: e.host,
        engine_port: e.port,
        fingerprint: r.fingerprint.clone(),
        node_name: r.node_name.clone(),
        node_address: r.node_address.clone(),
        ssh_user: r.ssh_user.clone(),
        ssh_port: r.ssh_port,
    })
}
