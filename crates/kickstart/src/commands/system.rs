//! Commands about the installed system: network, users, time, locale,
//! security and what happens at the end of the install.

use super::value::{CommaList, Repeated, ks_enum};
use super::{Check, ks_command};
use crate::options::Finding;

ks_enum! {
    /// `network --bootproto`.
    pub enum BootProto { Dhcp = "dhcp", Bootp = "bootp", Static = "static", Query = "query", Ibft = "ibft" }
}

ks_enum! {
    /// `network --bindto`.
    pub enum BindTo { Mac = "mac" }
}

ks_command! {
    /// `network`: one network device (or the host name).
    Network ["network"] conflicts []
    positional {}
    options {
        bootproto: Option<BootProto> = ["--bootproto"],
        dhcpclass: Option<String> = ["--dhcpclass"],
        /// Interface name, MAC address, `link`, `bootif` or `ibft`.
        device: Option<String> = ["--device"],
        essid: Option<String> = ["--essid"],
        ethtool: Option<String> = ["--ethtool"],
        gateway: Option<String> = ["--gateway"],
        hostname: Option<String> = ["--hostname"],
        ip: Option<String> = ["--ip"],
        mtu: Option<String> = ["--mtu"],
        /// Comma-separated name servers.
        nameserver: Option<String> = ["--nameserver"],
        netmask: Option<String> = ["--netmask"],
        nodns: bool = ["--nodns"],
        onboot: Option<bool> = ["--onboot"],
        wepkey: Option<String> = ["--wepkey"],
        notksdevice: bool = ["--notksdevice"],
        noipv4: bool = ["--noipv4"],
        noipv6: bool = ["--noipv6"],
        ipv6: Option<String> = ["--ipv6"],
        activate: bool = ["--activate"],
        nodefroute: bool = ["--nodefroute"],
        wpakey: Option<String> = ["--wpakey"],
        /// Comma-separated bond members.
        bondslaves: Option<String> = ["--bondslaves"],
        /// Bond options, `,` or `;` separated (`mode=active-backup,miimon=100`).
        bondopts: Option<String> = ["--bondopts"],
        vlanid: Option<String> = ["--vlanid"],
        ipv6gateway: Option<String> = ["--ipv6gateway"],
        teamslaves: Option<String> = ["--teamslaves"],
        teamconfig: Option<String> = ["--teamconfig"],
        interfacename: Option<String> = ["--interfacename"],
        bridgeslaves: Option<String> = ["--bridgeslaves"],
        bridgeopts: Option<String> = ["--bridgeopts"],
        no_activate: bool = ["--no-activate"],
        bindto: Option<BindTo> = ["--bindto"],
        ipv4_dns_search: Option<String> = ["--ipv4-dns-search"],
        ipv6_dns_search: Option<String> = ["--ipv6-dns-search"],
        ipv4_ignore_auto_dns: bool = ["--ipv4-ignore-auto-dns"],
        ipv6_ignore_auto_dns: bool = ["--ipv6-ignore-auto-dns"],
    }
}

impl Check for Network {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.bridgeopts.is_some() && self.bridgeslaves.is_none() {
            f.push(Finding::error("network: --bridgeopts needs --bridgeslaves"));
        }
        if let Some(opts) = &self.bridgeopts
            && opts.split(',').any(|kv| kv.split('=').count() != 2)
        {
            f.push(Finding::error(format!(
                "network: bad --bridgeopts {opts:?}: expected key=value pairs separated by ','"
            )));
        }
        if self.bindto == Some(BindTo::Mac) && self.vlanid.is_some() && self.bondopts.is_none() {
            f.push(Finding::error(
                "network: --bindto=mac is not supported for a VLAN device",
            ));
        }
        if self.device.is_none() {
            for (given, name) in [
                (self.ipv4_dns_search.is_some(), "--ipv4-dns-search"),
                (self.ipv6_dns_search.is_some(), "--ipv6-dns-search"),
                (self.ipv4_ignore_auto_dns, "--ipv4-ignore-auto-dns"),
                (self.ipv6_ignore_auto_dns, "--ipv6-ignore-auto-dns"),
            ] {
                if given {
                    f.push(Finding::error(format!("network: {name} needs --device")));
                }
            }
        }
    }
}

ks_command! {
    /// `rootpw`: the root password.
    Rootpw ["rootpw"] conflicts []
    positional {
        password: Option<String>,
    }
    options {
        iscrypted: bool = ["--iscrypted"],
        lock: bool = ["--lock"],
        plaintext: bool = ["--plaintext"],
        allow_ssh: bool = ["--allow-ssh"],
    }
}

impl Check for Rootpw {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.password.is_none() && !self.lock {
            f.push(Finding::error("rootpw: give a password, or --lock"));
        }
    }
}

ks_command! {
    /// `user`: a user account.
    User ["user"] conflicts []
    positional {}
    options {
        homedir: Option<String> = ["--homedir"],
        iscrypted: bool = ["--iscrypted"],
        name: String = ["--name"] required,
        password: Option<String> = ["--password"],
        shell: Option<String> = ["--shell"],
        uid: Option<i64> = ["--uid"],
        lock: bool = ["--lock"],
        plaintext: bool = ["--plaintext"],
        gecos: Option<String> = ["--gecos"],
        gid: Option<i64> = ["--gid"],
        /// Supplementary groups; `admin(1001)` creates the group with that GID.
        groups: Vec<String> = ["--groups"],
    }
}

impl Check for User {}

ks_command! {
    /// `group`: a group.
    Group ["group"] conflicts []
    positional {}
    options {
        name: String = ["--name"] required,
        gid: Option<i64> = ["--gid"],
    }
}

impl Check for Group {}

ks_command! {
    /// `sshkey`: an authorized SSH key for a user.
    Sshkey ["sshkey"] conflicts []
    positional {
        /// One OpenSSH public key line.
        key: String,
    }
    options {
        username: String = ["--username"] required,
    }
}

impl Check for Sshkey {}

ks_command! {
    /// `timezone`: the system time zone.
    Timezone ["timezone"] conflicts []
    positional {
        timezone: Vec<String>,
    }
    options {
        /// The hardware clock is in UTC.
        utc: bool = ["--utc"],
        isutc: bool = ["--isUtc"] deprecated,
        nontp: bool = ["--nontp"] deprecated,
        ntpservers: Vec<String> = ["--ntpservers"] deprecated,
    }
}

impl Check for Timezone {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.timezone.len() > 1 {
            f.push(Finding::error(format!(
                "timezone: one time zone expected, got {}",
                self.timezone.join(" ")
            )));
        }
        if self.timezone.is_empty() && !self.utc {
            f.push(Finding::error("timezone: name a time zone (e.g. Etc/UTC)"));
        }
    }
}

ks_command! {
    /// `timesource`: an NTP server or pool (repeatable), or no NTP at all.
    Timesource ["timesource"] conflicts []
    positional {}
    options {
        ntp_server: Option<String> = ["--ntp-server"],
        ntp_pool: Option<String> = ["--ntp-pool"],
        ntp_disable: bool = ["--ntp-disable"],
        nts: bool = ["--nts"],
    }
}

impl Check for Timesource {
    fn check(&self, f: &mut Vec<Finding>) {
        let given = usize::from(self.ntp_server.is_some())
            + usize::from(self.ntp_pool.is_some())
            + usize::from(self.ntp_disable);
        if given != 1 {
            f.push(Finding::error(
                "timesource: give exactly one of --ntp-server, --ntp-pool or --ntp-disable",
            ));
        }
    }
}

ks_command! {
    /// `lang`: the system language.
    Lang ["lang"] conflicts []
    positional {
        lang: String,
    }
    options {
        addsupport: Vec<String> = ["--addsupport"],
    }
}

impl Check for Lang {}

ks_command! {
    /// `keyboard`: console and X keyboard layouts.
    Keyboard ["keyboard"] conflicts []
    positional {
        /// Old form: one keyboard name.
        kbd: Vec<String>,
    }
    options {
        vckeymap: Option<String> = ["--vckeymap"],
        xlayouts: Vec<String> = ["--xlayouts"],
        switch: Vec<String> = ["--switch"],
    }
}

impl Check for Keyboard {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.kbd.len() > 1 {
            f.push(Finding::error(format!(
                "keyboard: one keyboard expected, got {}",
                self.kbd.join(" ")
            )));
        }
        if self.kbd.is_empty() && self.vckeymap.is_none() && self.xlayouts.is_empty() {
            f.push(Finding::error("keyboard: give --vckeymap or --xlayouts"));
        }
    }
}

ks_command! {
    /// `selinux`: the SELinux mode of the installed system.
    Selinux ["selinux"] conflicts []
    positional {}
    options {
        disabled: bool = ["--disabled"],
        enforcing: bool = ["--enforcing"],
        permissive: bool = ["--permissive"],
    }
}

impl Check for Selinux {}

ks_command! {
    /// `services`: systemd units to enable or disable.
    Services ["services"] conflicts []
    positional {}
    options {
        disabled: CommaList = ["--disabled"],
        enabled: CommaList = ["--enabled"],
    }
}

impl Check for Services {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.enabled.0.is_empty() && self.disabled.0.is_empty() {
            f.push(Finding::error("services: give --enabled or --disabled"));
        }
    }
}

ks_command! {
    /// `firewall`: the firewall of the installed system.
    Firewall ["firewall"] conflicts []
    positional {}
    options {
        disabled: bool = ["--disabled", "--disable"],
        enabled: bool = ["--enabled", "--enable"],
        /// `port:proto` pairs.
        port: CommaList = ["--port"],
        trust: Repeated = ["--trust"],
        service: CommaList = ["--service"],
        ftp: bool = ["--ftp"],
        http: bool = ["--http"],
        smtp: bool = ["--smtp"],
        ssh: bool = ["--ssh"],
        remove_service: CommaList = ["--remove-service"],
        use_system_defaults: bool = ["--use-system-defaults"],
    }
}

impl Check for Firewall {}

ks_command! {
    /// `firstboot`: whether the initial setup tool runs at first boot.
    Firstboot ["firstboot"] conflicts []
    positional {}
    options {
        disable: bool = ["--disable", "--disabled"],
        enable: bool = ["--enable", "--enabled"],
        reconfig: bool = ["--reconfig"],
    }
}

impl Check for Firstboot {}

ks_command! {
    /// `eula`: accept the end-user licence.
    Eula ["eula"] conflicts []
    positional {}
    options {
        agreed: bool = ["--agreed", "--agree", "--accepted", "--accept"],
    }
}

impl Check for Eula {
    fn check(&self, f: &mut Vec<Finding>) {
        if !self.agreed {
            f.push(Finding::error("eula: --agreed is required"));
        }
    }
}

ks_enum! {
    /// How the installer talks to the user.
    pub enum DisplayKind { Text = "text", Graphical = "graphical", Cmdline = "cmdline" }
}

// The enum comes from `ks_enum!`, which cannot mark a default variant.
#[allow(clippy::derivable_impls)]
impl Default for DisplayKind {
    fn default() -> Self {
        DisplayKind::Text
    }
}

impl DisplayKind {
    pub fn from_name(name: &str) -> Self {
        use super::value::KsEnum;
        DisplayKind::from_word(name).unwrap_or_default()
    }
    pub fn name(&self) -> &'static str {
        use super::value::KsEnum;
        self.as_word()
    }
}

ks_command! {
    /// `text` / `graphical` / `cmdline`: the installer's user interface.
    DisplayMode ["text", "graphical", "cmdline"] conflicts []
    invoked { mode: DisplayKind }
    positional {}
    options {
        non_interactive: bool = ["--non-interactive"],
    }
}

impl Check for DisplayMode {
    fn check(&self, f: &mut Vec<Finding>) {
        if self.mode == DisplayKind::Cmdline && self.non_interactive {
            f.push(Finding::error(
                "cmdline: --non-interactive is for text and graphical only",
            ));
        }
    }
}

ks_enum! {
    /// What happens when the install is done.
    pub enum RebootAction { Reboot = "reboot", Poweroff = "poweroff", Halt = "halt", Shutdown = "shutdown" }
}

// The enum comes from `ks_enum!`, which cannot mark a default variant.
#[allow(clippy::derivable_impls)]
impl Default for RebootAction {
    fn default() -> Self {
        RebootAction::Reboot
    }
}

impl RebootAction {
    pub fn from_name(name: &str) -> Self {
        use super::value::KsEnum;
        RebootAction::from_word(name).unwrap_or_default()
    }
    pub fn name(&self) -> &'static str {
        use super::value::KsEnum;
        self.as_word()
    }
}

ks_command! {
    /// `reboot` / `poweroff` / `halt` / `shutdown`.
    Reboot ["reboot", "poweroff", "halt", "shutdown"] conflicts []
    invoked { action: RebootAction }
    positional {}
    options {
        eject: bool = ["--eject"],
        kexec: bool = ["--kexec"],
    }
}

impl Check for Reboot {}
