//! Table-driven tests: every typed command and every section, valid and
//! invalid forms, the diagnostics they give and the model they build.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use kickstart::commands::{AutopartType, BootProto, Command, DisplayKind, RebootAction};
use kickstart::source::MemLoader;
use kickstart::{Item, Severity, parse_str, render};

/// Parses `text`; returns "ok", or the diagnostics as `LINE:severity:message`.
fn diags(text: &str) -> Vec<String> {
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    p.diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}", d.loc.line, d.severity, d.message))
        .collect()
}

/// Each row: kickstart text, and what must be found: "" means no error
/// (warnings allowed), otherwise a substring of the first error.
const TABLE: &[(&str, &str)] = &[
    // liveimg
    ("liveimg --url=http://x/a.img", ""),
    (
        "liveimg --url=http://x/a.img --proxy=http://p:3128 --noverifyssl --checksum=ab",
        "",
    ),
    ("liveimg", "liveimg: --url is required"),
    ("liveimg --url", "--url needs a value"),
    ("liveimg --url=a extra", "unexpected"),
    // autopart
    ("autopart", ""),
    (
        "autopart --type=thinp --fstype=xfs --nohome --noboot --noswap --encrypted --passphrase=x --cipher=aes-xts-plain64 --luks-version=luks2 --pbkdf=argon2id --pbkdf-memory=64 --pbkdf-time=10",
        "",
    ),
    ("autopart --type=ThinP", ""),
    ("autopart --type=partition", ""),
    ("autopart --nolvm", ""),
    ("autopart --type=zfs", "invalid choice \"zfs\""),
    (
        "autopart --tpye=thinp",
        "unknown option --tpye (did you mean --type?)",
    ),
    ("autopart --fstype=btrfs", "--fstype=btrfs"),
    (
        "autopart --type=btrfs --fstype=xfs",
        "--fstype cannot be used with --type=btrfs",
    ),
    (
        "autopart --noswap --hibernation",
        "--noswap and --hibernation",
    ),
    (
        "autopart --pbkdf-time=1 --pbkdf-iterations=2",
        "--pbkdf-time and --pbkdf-iterations",
    ),
    ("autopart --pbkdf-time=0 --pbkdf-iterations=2", ""),
    ("autopart --encrypted=yes", "--encrypted takes no value"),
    ("autopart x", "takes no arguments"),
    // clearpart, zerombr, ignoredisk
    (
        "clearpart --all --initlabel --drives=sda,sdb --disklabel=gpt",
        "",
    ),
    ("clearpart --linux --list=sda1,sda2 --cdl", ""),
    ("clearpart --none", ""),
    ("clearpart --all sda", "unexpected"),
    ("zerombr", ""),
    ("zerombr yes", "takes no arguments"),
    ("ignoredisk --only-use=sda", ""),
    ("ignoredisk --drives=sdb,sdc", ""),
    ("ignoredisk", "one of --drives or --only-use"),
    (
        "ignoredisk --drives=a --only-use=b",
        "cannot be used together",
    ),
    ("ignoredisk --interactive", "unknown option --interactive"),
    // part / partition
    (
        "part /boot --size=1024 --fstype=xfs --ondisk=sda --asprimary",
        "",
    ),
    (
        "partition / --type=xfs --ondrive=sda --grow --maxsize=10000 --label=root --fsoptions=defaults",
        "",
    ),
    ("part pv.01 --onpart=sda2 --noformat", ""),
    ("part biosboot --fstype=biosboot --size=1", ""),
    ("part", "part: missing mntpoint"),
    ("part / /boot", "unexpected arguments: /boot"),
    ("part / --size=10G", "invalid number \"10G\""),
    ("part / --on=sda", "ambiguous option --on"),
    (
        "part / --resize --size=1",
        "--resize can only be used with --onpart",
    ),
    ("part / --resize --onpart=sda1", "--resize needs --size"),
    ("part /tmp --fstype=tmpfs --grow", "tmpfs"),
    (
        "part /x --noformat --mkfsoptions=-m0",
        "--mkfsoptions has no effect with --noformat",
    ),
    (
        "part /x --mkfsoptions=-m0 --fsprofile=p",
        "--mkfsoptions and --fsprofile",
    ),
    ("part / --active", "unknown option --active"),
    (
        "part / --size=1\npart / --size=2",
        "partition with mount point \"/\" is already defined at line 1",
    ),
    (
        "part /boot --size=1\npart /boot/ --size=2",
        "already defined",
    ),
    ("part swap --size=1\npart swap --size=2", ""),
    // reqpart
    ("reqpart", ""),
    ("reqpart --add-boot", ""),
    ("reqpart --add-boot=1", "takes no value"),
    // volgroup
    (
        "volgroup vg pv.01 pv.02 --pesize=4096 --reserved-space=100",
        "",
    ),
    ("volgroup vg --useexisting", ""),
    ("volgroup vg --noformat", ""),
    ("volgroup", "volgroup: missing vgname"),
    ("volgroup vg", "name the physical volumes"),
    ("volgroup vg pv.01 --useexisting", "members cannot be given"),
    (
        "volgroup vg pv.01 --reserved-percent=0",
        "--reserved-percent must be between 1 and 99",
    ),
    (
        "volgroup vg pv.01 --reserved-space=-1",
        "--reserved-space must be a positive",
    ),
    (
        "volgroup vg pv.1\nvolgroup vg pv.2",
        "volume group \"vg\" is already defined",
    ),
    // logvol
    (
        "logvol / --vgname=vg --name=root --size=1000 --fstype=xfs",
        "",
    ),
    (
        "logvol none --vgname=vg --name=pool --thinpool --size=1000 --grow --chunksize=64 --metadatasize=8",
        "",
    ),
    (
        "logvol /var --vgname=vg --name=var --thin --poolname=pool --size=100 --fsoptions=defaults,discard",
        "",
    ),
    ("logvol /home --vgname=vg --name=home --percent=50", ""),
    ("logvol /old --vgname=vg --name=old --useexisting", ""),
    ("logvol swap --vgname=vg --name=swap --recommended", ""),
    ("logvol / --vgname=vg --size=1", "--name is required"),
    ("logvol / --name=r --size=1", "--vgname is required"),
    ("logvol --name=r --vgname=vg --size=1", "missing mntpoint"),
    ("logvol / --vgname=vg --name=r", "no size given"),
    (
        "logvol / --vgname=vg --name=r --thin --size=1",
        "--thin needs --poolname",
    ),
    (
        "logvol / --vgname=vg --name=r --thin --thinpool --poolname=p --size=1",
        "--thin and --thinpool",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --percent=1",
        "--size and --percent",
    ),
    (
        "logvol / --vgname=vg --name=r --percent=101",
        "--percent must be between 0 and 100",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --chunksize=64",
        "thin pools only",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --resize",
        "--resize can only be used with --useexisting",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --cachesize=1",
        "--cachepvs",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --cachesize=1 --cachepvs=pv.2 --cachemode=fast",
        "invalid --cachemode",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1 --bytes-per-inode=4096",
        "unknown option --bytes-per-inode",
    ),
    (
        "logvol / --vgname=vg --name=r --size=1\nlogvol /x --vgname=vg --name=r --size=1",
        "logical volume \"vg/r\" is already defined",
    ),
    // bootloader
    (
        "bootloader --location=mbr --append=\"console=ttyS0 quiet\" --timeout=5 --boot-drive=sda --driveorder=sda,sdb",
        "",
    ),
    ("bootloader --location=floppy", "invalid choice \"floppy\""),
    (
        "bootloader --boot-drive=sda,sdb",
        "--boot-drive takes one drive",
    ),
    ("bootloader --extlinux --sdboot", "--extlinux and --sdboot"),
    ("bootloader --upgrade", "unknown option --upgrade"),
    ("bootloader --timeout=soon", "invalid number"),
    ("bootloader --password=grub-secret", ""),
    (
        "bootloader --iscrypted --password=grub.pbkdf2.sha512.10000.00112233.00112233445566778899AABBCCDDEEFF",
        "",
    ),
    (
        "bootloader --md5pass=grub.pbkdf2.sha512.10000.00112233.00112233445566778899aabbccddeeff",
        "",
    ),
    // Empty is no password, as in pykickstart.
    ("bootloader --iscrypted --password=", ""),
    (
        "bootloader --iscrypted --password=grub-secret",
        "bootloader: the value of --password with --iscrypted is not a grub PBKDF2 hash",
    ),
    (
        "bootloader --iscrypted --password=$6$salt$hash",
        "does not begin with grub.pbkdf2.sha512.",
    ),
    (
        "bootloader --md5pass=$1$salt$hash",
        "the value of --md5pass is not a grub PBKDF2 hash",
    ),
    (
        "bootloader --iscrypted --password=grub.pbkdf2.sha512.10000.0011223.00112233445566778899AABBCCDDEEFF",
        "the salt is not an even number of hex digits",
    ),
    // network
    (
        "network --bootproto=dhcp --device=ens3 --activate --onboot=yes",
        "",
    ),
    (
        "network --bootproto=static --device=ens3 --ip=192.0.2.1 --netmask=255.255.255.0 --gateway=192.0.2.254 --nameserver=192.0.2.53",
        "",
    ),
    (
        "network --device=bond0 --bondslaves=a,b --bondopts=mode=802.3ad;miimon=100 --vlanid=10",
        "",
    ),
    (
        "network --device=br0 --bridgeslaves=ens3 --bridgeopts=stp=yes,priority=10",
        "",
    ),
    ("network --hostname=node.example.com", ""),
    ("network --bootproto=magic", "invalid choice \"magic\""),
    ("network --device=a --onboot=maybe", "invalid boolean"),
    (
        "network --device=a --bridgeopts=stp=yes",
        "--bridgeopts needs --bridgeslaves",
    ),
    (
        "network --device=a --bridgeslaves=b --bridgeopts=stp",
        "bad --bridgeopts",
    ),
    (
        "network --device=a --vlanid=10 --bindto=mac",
        "--bindto=mac",
    ),
    (
        "network --ipv4-dns-search=example.com",
        "--ipv4-dns-search needs --device",
    ),
    ("network --device=a --hostname", "--hostname needs a value"),
    (
        "network --device=a\nnetwork --device=a",
        "network device \"a\" is already defined",
    ),
    (
        "network --hostname=a\nnetwork --hostname=b",
        "network device \"\" is already defined",
    ),
    // rootpw, user, group, sshkey
    ("rootpw secret", ""),
    ("rootpw --iscrypted $6$x$y", ""),
    ("rootpw --lock", ""),
    ("rootpw --lock --allow-ssh secret", ""),
    ("rootpw", "give a password, or --lock"),
    ("rootpw a b", "unexpected arguments: b"),
    (
        "user --name=admin --groups=wheel,kvm --uid=1000 --gid=1000 --password=x --plaintext --shell=/bin/sh --homedir=/h --gecos=Admin --lock",
        "",
    ),
    ("user --password=x", "--name is required"),
    ("user --name=a --uid=x", "invalid number"),
    (
        "user --name=a\nuser --name=a",
        "user \"a\" is already defined",
    ),
    ("group --name=ops --gid=1000", ""),
    ("group --gid=1", "--name is required"),
    (
        "group --name=a\ngroup --name=a",
        "group \"a\" is already defined",
    ),
    ("sshkey --username=root \"ssh-ed25519 AAAA root@x\"", ""),
    ("sshkey --username=root", "sshkey: missing key"),
    ("sshkey \"ssh-ed25519 AAAA\"", "--username is required"),
    ("sshkey --username=root a b", "unexpected arguments: b"),
    (
        "sshkey --username=r k1\nsshkey --username=r k2",
        "ssh key for user \"r\" is already defined",
    ),
    // timezone, timesource, lang, keyboard
    ("timezone Europe/Paris --utc", ""),
    ("timezone --utc", ""),
    ("timezone", "name a time zone"),
    ("timezone A B", "one time zone expected"),
    ("timezone Etc/UTC --isUtc", "--isUtc is deprecated"),
    (
        "timezone Etc/UTC --ntpservers=a",
        "--ntpservers is deprecated",
    ),
    ("timezone Etc/UTC --isU", "--isUtc is deprecated"),
    ("timesource --ntp-server=ntp.example.com --nts", ""),
    ("timesource --ntp-pool=pool.example.com", ""),
    ("timesource --ntp-disable", ""),
    ("timesource", "exactly one of"),
    ("timesource --ntp-server=a --ntp-pool=b", "exactly one of"),
    ("lang en_US.UTF-8 --addsupport=de_DE,fr_FR", ""),
    ("lang", "lang: missing lang"),
    ("lang a b", "unexpected arguments: b"),
    ("keyboard us", ""),
    (
        "keyboard --vckeymap=us --xlayouts=us,de --switch=grp:alt_shift_toggle",
        "",
    ),
    ("keyboard", "give --vckeymap or --xlayouts"),
    ("keyboard us de", "one keyboard expected"),
    // selinux, services, firewall, firstboot, eula
    ("selinux --enforcing", ""),
    ("selinux --permissive --disabled", ""),
    ("selinux enforcing", "takes no arguments"),
    ("services --enabled=sshd,libvirtd --disabled=cups", ""),
    ("services", "give --enabled or --disabled"),
    (
        "firewall --enabled --ssh --service=cockpit --port=9090:tcp --trust=ens3 --remove-service=dhcpv6-client",
        "",
    ),
    ("firewall --disabled", ""),
    ("firewall --use-system-defaults", ""),
    ("firewall --high", "unknown option --high"),
    ("firstboot --disable", ""),
    ("firstboot --reconfig", ""),
    ("firstboot now", "takes no arguments"),
    ("eula --agreed", ""),
    ("eula --accept", ""),
    ("eula", "--agreed is required"),
    ("eula --agreed x", "takes no arguments"),
    // text / graphical / cmdline; reboot / poweroff / halt / shutdown
    ("text", ""),
    ("text --non-interactive", ""),
    ("graphical --non-interactive", ""),
    ("cmdline", ""),
    (
        "cmdline --non-interactive",
        "cmdline: --non-interactive is for text and graphical only",
    ),
    ("reboot --eject --kexec", ""),
    ("poweroff", ""),
    ("halt", ""),
    ("shutdown", ""),
    ("reboot now", "takes no arguments"),
    // conflicts, removed, deprecated, unknown
    (
        "part / --size=1\nautopart",
        "the autopart and partition commands",
    ),
    (
        "autopart\npart / --size=1",
        "the part and autopart commands",
    ),
    ("autopart\nreqpart", "the reqpart and autopart commands"),
    ("autopart\nvolgroup vg pv.1", "the volgroup and autopart"),
    (
        "autopart\nlogvol / --vgname=v --name=r --size=1",
        "the logvol and autopart",
    ),
    ("autopart\nmount /dev/sda1 /boot", "the mount and autopart"),
    ("autopart\nbtrfs / sda1", ""),
    (
        "ostreesetup --osname=a --url=b --ref=c\nostreecontainer --url=x",
        "the ostreecontainer and ostreesetup",
    ),
    ("install", "install has been removed"),
    ("auth --enableshadow", "auth has been removed"),
    ("nvdimm use --namespace=x", "nvdimm is deprecated"),
    (
        "autopartt",
        "unknown command autopartt (did you mean autopart?)",
    ),
    ("PART / --size=1", "unknown command PART"),
    ("rebot", "did you mean reboot?"),
    // ignored commands are checked and kept
    ("url --url=http://mirror/os", ""),
    ("repo --name=x --baseurl=http://mirror/x --cost=5", ""),
    ("repo --baseurl=http://mirror/x", "repo: --name is required"),
    ("iscsi --ipaddr=192.0.2.1 --port=x", "invalid number"),
    (
        "vnc --pasword=x",
        "unknown option --pasword (did you mean --password?)",
    ),
    ("skipx now", "takes no arguments"),
    ("realm join --one-time-password=x example.com", ""),
    ("mount /dev/sda1 /srv --reformat=xfs", ""),
    ("mount /dev/sda1 /srv --reformat", ""),
    // tokens and lines
    ("rootpw \"unclosed", "no closing quotation"),
    ("rootpw a\\", "no escaped character"),
    ("\"\" x", "empty word"),
    ("", "the kickstart is empty"),
    ("  \n\t\n", "the kickstart is empty"),
    ("# just a comment", ""),
    // sections
    (
        "%pre --interpreter=/bin/bash --erroronfail --log=/tmp/l\necho\n%end",
        "",
    ),
    ("%pre-install\necho\n%end", ""),
    ("%post --nochroot --logfile=/tmp/x\necho\n%end", ""),
    ("%onerror\necho\n%end", ""),
    (
        "%pre --nochroot\necho\n%end",
        "--nochroot is for %post only",
    ),
    ("%post --erroronfail=yes\necho\n%end", "takes no value"),
    (
        "%post --interpreter\necho\n%end",
        "--interpreter needs a value",
    ),
    ("%post extra\necho\n%end", "takes no arguments"),
    ("%post --nochr\necho\n%end", ""),
    ("%traceback\necho\n%end", "%traceback is deprecated"),
    ("%post\necho", "%post (line 1) does not end with %end"),
    (
        "%pre\necho\n%packages\n%end",
        "%pre (line 1) does not end with %end before %packages",
    ),
    (
        "%postt\necho\n%end",
        "unknown section %postt (did you mean %post?)",
    ),
    ("text\n%end", "%end outside any section"),
    ("%post\n%endx\n%end trailing words", ""),
    ("%post\necho\n%end \"", "%end: no closing quotation"),
    (
        "%packages --excludedocs --ignoremissing --inst-langs=en --exclude-weakdeps --timeout=1 --retries=2 --nocore --multilib --ignorebroken\n@core\n-pkg # comment\n%end",
        "",
    ),
    (
        "%packages --default --nocore\n%end",
        "--default and --nocore",
    ),
    ("%packages --nobase\n%end", "unknown option --nobase"),
    (
        "%packages --instLangs=en\n%end",
        "--instLangs is deprecated",
    ),
    (
        "%packages --excludeWeakdeps\n%end",
        "--excludeWeakdeps is deprecated",
    ),
    ("%packages --timeout=x\n%end", "invalid number"),
    (
        "%packages\n@core --nodefaults --optional\n%end",
        "cannot have both --nodefaults and --optional",
    ),
    ("%packages\n-\n%end", "a lone '-'"),
    (
        "%certificate --filename=ca.pem --dir=/etc/pki\nPEM\n%end",
        "",
    ),
    (
        "%certificate --dir=/etc/pki\nPEM\n%end",
        "--filename is required",
    ),
    (
        "%certificate --filename=a\nPEM\n%end",
        "give --dir or --type",
    ),
    (
        "%certificate --filename=a --type=x\n%end",
        "%certificate is empty",
    ),
    ("%addon com_redhat_kdump --enable\n%end", ""),
    ("%addon\n%end", ""),
    ("%anaconda\npwpolicy root --minlen=6\n%end", ""),
    (
        "%addon org_hvnode_register --engine=e.example.com --fingerprint=SHA256:00\n%end",
        "",
    ),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (text, want) in TABLE {
        let got = diags(text);
        let first_error = got.iter().find(|d| d.contains(":error:"));
        let ok = match (want.is_empty(), first_error) {
            (true, None) => true,
            (false, Some(e)) => e.contains(want),
            _ => false,
        };
        if !ok {
            failures.push(format!("{text:?}\n  want: {want:?}\n  got:  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_rows_round_trip() {
    for (text, _) in TABLE {
        let loader = MemLoader::default();
        let first = parse_str("ks.cfg", text, &loader);
        let rendered = render(&first.kickstart);
        let second = parse_str("ks.cfg", &rendered, &loader);
        assert_eq!(
            first.kickstart, second.kickstart,
            "{text:?} rendered as {rendered:?}"
        );
    }
}

fn only_command(text: &str) -> Command {
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    assert!(p.is_valid(), "{text}: {:?}", p.diagnostics);
    let mut cmds = p.kickstart.commands().map(|(_, c)| c.clone());
    let c = cmds.next().expect("one command");
    assert!(cmds.next().is_none());
    c
}

#[test]
fn typed_values() {
    match only_command("autopart --typ=THINP --nohome") {
        Command::Autopart(a) => {
            assert_eq!(a.r#type, Some(AutopartType::Thinp));
            assert_eq!(a.scheme(), AutopartType::Thinp);
            assert!(a.nohome);
        }
        c => panic!("{c:?}"),
    }
    match only_command("part /boot/../boot//efi/ --size 600 --type=efi --usepart=/dev/sda1") {
        Command::Partition(p) => {
            assert_eq!(p.mntpoint, "/boot/efi");
            assert_eq!(p.size, Some(600));
            assert_eq!(p.fstype.as_deref(), Some("efi"));
            assert_eq!(p.onpart.as_deref(), Some("/dev/sda1"));
        }
        c => panic!("{c:?}"),
    }
    match only_command("network --device=bond0 --bondslaves=a,b --bootproto=static --onboot=off") {
        Command::Network(n) => {
            assert_eq!(n.bootproto, Some(BootProto::Static));
            assert_eq!(n.onboot, Some(false));
            assert_eq!(n.bondslaves.as_deref(), Some("a,b"));
        }
        c => panic!("{c:?}"),
    }
    match only_command("services --enabled=a,b --enabled=c --disabled=d") {
        Command::Services(s) => {
            assert_eq!(s.enabled.0, ["a", "b", "c"]);
            assert_eq!(s.disabled.0, ["d"]);
        }
        c => panic!("{c:?}"),
    }
    match only_command("graphical") {
        Command::DisplayMode(d) => assert_eq!(d.mode, DisplayKind::Graphical),
        c => panic!("{c:?}"),
    }
    match only_command("poweroff --eject") {
        Command::Reboot(r) => {
            assert_eq!(r.action, RebootAction::Poweroff);
            assert!(r.eject);
        }
        c => panic!("{c:?}"),
    }
    match only_command("volgroup vg pv.1 pv.2") {
        Command::Volgroup(v) => {
            assert_eq!(v.vgname, "vg");
            assert_eq!(v.partitions, ["pv.1", "pv.2"]);
        }
        c => panic!("{c:?}"),
    }
    match only_command("rootpw -- -starts-with-dash") {
        Command::Rootpw(r) => assert_eq!(r.password.as_deref(), Some("-starts-with-dash")),
        c => panic!("{c:?}"),
    }
}

#[test]
fn scripts_keep_their_bodies_verbatim() {
    let text = "%post --interpreter=/usr/bin/python3\nimport os\n\n# a comment\n  print('%end is not here')\n%end\n";
    let p = parse_str("ks.cfg", text, &MemLoader::default());
    assert!(p.is_valid(), "{:?}", p.diagnostics);
    let (_, s) = p.kickstart.scripts().next().unwrap();
    assert_eq!(s.header.interpreter.as_deref(), Some("/usr/bin/python3"));
    assert_eq!(
        s.body,
        [
            "import os",
            "",
            "# a comment",
            "  print('%end is not here')"
        ]
    );
    match &p.kickstart.items[0].value {
        Item::Script(_) => {}
        i => panic!("{i:?}"),
    }
}

#[test]
fn diagnostics_name_file_and_line() {
    let p = parse_str(
        "ks.cfg",
        "text\n\n# c\nautopart --tpye=thinp\n",
        &MemLoader::default(),
    );
    let d: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        d,
        ["ks.cfg:4: error: autopart: unknown option --tpye (did you mean --type?)"]
    );
    assert!(p.diagnostics.iter().all(|d| d.severity == Severity::Error));
}
