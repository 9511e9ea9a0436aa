//! Whole dialogues driven with scripted input: what is printed, what is
//! answered, and the kickstart the answers make.

use std::io::Cursor;

use anyhow::Result;
use hostinfo::BlockDevice;
use hostinfo::blockdev::parse_lsblk;
use kickstart::commands::AutopartType;
use kickstart::node::{self, Clear, Layout};
use kickstart::source::FsLoader;

use super::hub::{self, Given};
use super::*;

#[derive(Debug, Default)]
struct Fake {
    disks: Vec<BlockDevice>,
    ifaces: Vec<String>,
    zones: Vec<String>,
    accounts: Vec<String>,
    /// Every echo change, in order.
    echo: Vec<bool>,
}

impl Env for Fake {
    fn disks(&self) -> &[BlockDevice] {
        &self.disks
    }
    fn boot_medium(&self) -> Option<&str> {
        Some("HVNODE")
    }
    fn interfaces(&self) -> Vec<String> {
        self.ifaces.clone()
    }
    fn zones(&self) -> Vec<String> {
        self.zones.clone()
    }
    fn zone_exists(&self, name: &str) -> bool {
        self.zones.iter().any(|z| z == name)
    }
    fn account_exists(&self, name: &str) -> bool {
        self.accounts.iter().any(|a| a == name)
    }
    fn echo(&mut self, on: bool) {
        self.echo.push(on);
    }
}

fn disk(name: &str, gib: u64) -> BlockDevice {
    BlockDevice {
        name: name.into(),
        path: format!("/dev/{name}").into(),
        kind: "disk".into(),
        size: gib << 30,
        ro: false,
        rm: false,
        model: None,
        tran: None,
        fstype: None,
        label: None,
        mountpoints: vec![],
        children: vec![],
    }
}

/// The captured live VM: vda (64 GiB, free), vdb (mounted), the DVD.
fn live_vm() -> Fake {
    Fake {
        disks: parse_lsblk(include_str!("../../tests/fixtures/lsblk-live-vm.json")).unwrap(),
        ifaces: vec!["ens3".into(), "ens4".into()],
        zones: [
            "America/New_York",
            "Etc/UTC",
            "Europe/Berlin",
            "Europe/Paris",
            "Europe/Prague",
            "UTC",
        ]
        .map(String::from)
        .to_vec(),
        accounts: vec!["root".into(), "daemon".into(), "sudo".into()],
        echo: vec![],
    }
}

fn talk(env: &mut Fake, given: &Given, input: &str) -> (Result<Answers>, String) {
    let mut inp = Cursor::new(input.as_bytes().to_vec());
    let mut out = Vec::new();
    let r = {
        let mut con = Console::new(&mut inp, &mut out, env);
        hub::run(&mut con, given, Answers::default())
    };
    (r, String::from_utf8(out).unwrap())
}

fn given_from(ks: &str, editable: bool) -> (kickstart::Kickstart, Given) {
    let p = kickstart::parse_str("ks.cfg", ks, &FsLoader);
    assert!(p.is_valid(), "{:?}", p.diagnostics);
    let (plan, _) = node::plan(&p.kickstart);
    let g = Given::from_plan(&plan, editable);
    (p.kickstart, g)
}

#[test]
fn the_hub_shows_the_spokes_in_two_columns_and_begins_when_ready() {
    let mut env = live_vm();
    let (r, out) = talk(
        &mut env,
        &Given::default(),
        "4\nhvnode-test-pw\nhvnode-test-pw\nb\n",
    );
    let a = r.unwrap();
    // The only free disk is chosen, thin LVM and UTC by default.
    assert_eq!(a.disk.as_deref(), Some("vda"));
    assert_eq!(a.layout, Some(LayoutChoice::Thinp));
    assert_eq!(a.timezone.as_deref(), Some("UTC"));
    let h = a.root_password_hash.unwrap();
    assert!(sha_crypt::sha512_check("hvnode-test-pw", &h).is_ok(), "{h}");
    assert!(!out.contains("hvnode-test-pw"), "{out}");
    assert!(out.contains(&format!(
        "hvnode {} installation",
        env!("CARGO_PKG_VERSION")
    )));
    let first_hub: Vec<&str> = out.lines().skip(4).take(6).collect();
    assert_eq!(
        first_hub,
        [
            " 1) [x] Installation destination         2) [x] Network & host name",
            "        vda 64.0 GiB, thin LVM                  DHCP on all wired links, hvnode",
            " 3) [x] Time zone                        4) [!] Root password",
            "        UTC                                     (not set)",
            " 5) [!] User creation",
            "        (no user will be created)",
        ],
        "{out}"
    );
    assert!(out.contains(" 4) [x] Root password"), "{out}");
    assert!(out.contains(" 5) [ ] User creation"), "{out}");
    assert!(out.contains("['b' to begin installation, 'q' to quit, 'r' to refresh]: "));
    // Echo off and on again around each of the two password lines.
    assert_eq!(env.echo, [false, true, false, true]);
}

#[test]
fn begin_refuses_until_a_disk_and_an_account_are_set_and_says_which() {
    let mut env = live_vm();
    env.disks.push(disk("vdc", 100));
    env.disks.push(disk("vdd", 10));
    let (r, out) = talk(
        &mut env,
        &Given::default(),
        "b\n1\n0\nx\n2\n\nb\n7\nq\nno\n4\nhvnode-test-pw\nhvnode-test-pw\nb\n",
    );
    let a = r.unwrap();
    assert!(
        out.contains("Not ready: choose a disk in 1) Installation destination."),
        "{out}"
    );
    assert!(
        out.contains("  1) vda (64.0 GiB)\n      vdb (20.0 GiB): not usable, "),
        "{out}"
    );
    assert!(
        out.contains("  2) vdc (100.0 GiB)\n      vdd (10.0 GiB): not usable, "),
        "{out}"
    );
    assert!(
        out.contains("vdb (20.0 GiB): not usable, vdb is in use: mounted at /mnt/data"),
        "{out}"
    );
    assert!(
        out.contains("vdd (10.0 GiB): not usable, too small: a node needs"),
        "{out}"
    );
    assert!(out.contains("Install on which disk [1-2]: "), "{out}");
    assert_eq!(
        out.matches("Type a number from 1 to 2.").count(),
        2,
        "{out}"
    );
    assert!(out.contains("Not ready: nobody could log in to the node. Set a root password (4) or create an admin user (5)."), "{out}");
    assert!(
        out.contains("\"7\" is not a choice: type a number from 1 to 5, b, q or r."),
        "{out}"
    );
    assert!(
        out.contains("Quit the installer? Nothing has been written. [yes/no]: "),
        "{out}"
    );
    assert_eq!(a.disk.as_deref(), Some("vdc"));
    assert_eq!(a.layout, Some(LayoutChoice::Thinp));
}

#[test]
fn the_layout_is_thin_lvm_unless_btrfs_or_plain_is_chosen() {
    let mut env = live_vm();
    let (r, out) = talk(&mut env, &Given::default(), "1\n\n4\n3\nb\nq\nyes\n");
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("quit on the console: nothing was written"),
        "{e}"
    );
    assert!(
        out.contains("Install on which disk [1, Enter for 1]: "),
        "{out}"
    );
    assert!(out.contains("Layout [1-3, Enter for 1]: "), "{out}");
    assert!(out.contains("Type a number from 1 to 3."), "{out}");
    assert!(out.contains("vda 64.0 GiB, plain partitions"), "{out}");
    let (r, _) = talk(
        &mut env,
        &Given::default(),
        "1\n1\n2\n4\npassword1\npassword1\nb\n",
    );
    assert_eq!(r.unwrap().layout, Some(LayoutChoice::Btrfs));
}

#[test]
fn the_root_password_is_typed_twice_without_echo_and_checked() {
    let mut env = live_vm();
    let input =
        "4\n\n\n4\nfirst-one\nother-one\nshort\nshort\nno\n\nx\nshort\nshort\nshort\nyes\nb\n";
    let (r, out) = talk(&mut env, &Given::default(), input);
    let a = r.expect(&out);
    assert!(out.contains("An empty password is not allowed. Type a password, or Enter again to go back without one."), "{out}");
    assert!(out.contains("Root password not changed."), "{out}");
    assert!(
        out.contains("The passwords do not match. Type the password again."),
        "{out}"
    );
    assert_eq!(
        out.matches("The password is weak: it has fewer than 8 characters.")
            .count(),
        2
    );
    assert!(out.contains("Use it anyway? [yes/no]: "), "{out}");
    assert!(out.contains("Root password set."), "{out}");
    assert!(sha_crypt::sha512_check("short", &a.root_password_hash.unwrap()).is_ok());
    assert!(
        env.echo.chunks(2).all(|p| p == [false, true]),
        "{:?}",
        env.echo
    );
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f admin@laptop";

#[test]
fn an_admin_user_with_an_ssh_key_instead_of_a_root_password() {
    let mut env = live_vm();
    let input = format!("5\nAdmin\ndaemon\nroot\nadmin\n\nssh-dss AAAA\n\n\n{KEY}\nb\n");
    let (r, out) = talk(&mut env, &Given::default(), &input);
    let a = r.unwrap();
    assert!(
        out.contains("Admin: a user name starts with a lower-case letter or _"),
        "{out}"
    );
    assert!(
        out.contains("daemon is already an account or group on the node; choose another name."),
        "{out}"
    );
    assert!(out.contains("root is already an account"), "{out}");
    assert!(
        out.contains("Password for admin [Enter for none]: "),
        "{out}"
    );
    assert!(
        out.contains("ssh-dss: the key type must be ssh-ed25519, ssh-rsa or ecdsa-sha2-*"),
        "{out}"
    );
    assert!(
        out.contains("admin needs a password or an SSH key to log in"),
        "{out}"
    );
    assert!(
        out.contains("User admin (wheel), SSH key will be created."),
        "{out}"
    );
    assert!(out.contains(" 4) [ ] Root password"), "{out}");
    let u = a.user.clone().unwrap();
    assert_eq!(u.name, "admin");
    assert_eq!(u.password_hash, None);
    assert_eq!(u.ssh_key.as_deref(), Some(KEY));
    assert_eq!(a.root_password_hash, None);

    // As kickstart: the user in wheel with the key, root locked.
    let mut ks = kickstart::Kickstart::default();
    a.apply(&mut ks);
    let text = kickstart::render(&ks);
    assert!(
        text.contains("rootpw --lock\nuser --name=admin --groups=wheel\nsshkey \"ssh-ed25519 "),
        "{text}"
    );
}

#[test]
fn a_static_address_and_a_host_name_are_checked_field_by_field() {
    let mut env = live_vm();
    let input = "2\n3\n2\n2\n\n192.0.2.10\n192.0.2.10/24\n198.51.100.1\n192.0.2.1\n192.0.2.53 dns.example\n192.0.2.53, 192.0.2.54\nnode_1\nnode1.example.com\n4\npassword1\npassword1\nb\n";
    let (r, out) = talk(&mut env, &Given::default(), input);
    let a = r.unwrap();
    assert!(out.contains("Interfaces:\n  1) ens3\n  2) ens4\n"), "{out}");
    assert!(
        out.contains("A static address is needed here (or choose DHCP)."),
        "{out}"
    );
    assert!(
        out.contains("192.0.2.10: give the address with its prefix length"),
        "{out}"
    );
    assert!(out.contains("198.51.100.1 is not in 192.0.2.0/24"), "{out}");
    assert!(out.contains("dns.example is not an IP address"), "{out}");
    assert!(out.contains("node_1: '_' is not allowed"), "{out}");
    assert!(out.contains("192.0.2.10/24 on ens4, node1..."), "{out}");
    assert_eq!(
        a.network,
        Some(NetChoice::Static {
            device: "ens4".into(),
            address: "192.0.2.10".parse().unwrap(),
            prefix: 24,
            gateway: Some("192.0.2.1".parse().unwrap()),
            dns: vec!["192.0.2.53".parse().unwrap(), "192.0.2.54".parse().unwrap()],
        })
    );
    assert_eq!(a.hostname.as_deref(), Some("node1.example.com"));
}

#[test]
fn time_zones_are_listed_by_prefix_and_checked_against_the_database() {
    let mut env = live_vm();
    let input = "3\n?\nEurope/\nMars/Base\n../etc/passwd\nEurope/Pr\n4\npassword1\npassword1\nb\n";
    let (r, out) = talk(&mut env, &Given::default(), input);
    let a = r.unwrap();
    assert!(
        out.contains("  America/  Etc/      Europe/   UTC\n"),
        "{out}"
    );
    assert!(
        out.contains("  Europe/Berlin  Europe/Paris   Europe/Prague\nType one of these names."),
        "{out}"
    );
    assert!(out.contains("There is no time zone Mars/Base"), "{out}");
    assert!(
        out.contains("../etc/passwd: a time zone is named like"),
        "{out}"
    );
    assert!(out.contains("Time zone: Europe/Prague"), "{out}");
    assert_eq!(a.timezone.as_deref(), Some("Europe/Prague"));
    let (r, _) = talk(
        &mut env,
        &Given::default(),
        "3\nUTC\n4\npassword1\npassword1\nb\n",
    );
    assert_eq!(r.unwrap().timezone.as_deref(), Some("UTC"));
    let (r, _) = talk(
        &mut env,
        &Given::default(),
        "3\nAmerica/New_York\n4\npassword1\npassword1\nb\n",
    );
    assert_eq!(r.unwrap().timezone.as_deref(), Some("America/New_York"));
}

#[test]
fn what_the_kickstart_sets_is_shown_and_not_asked() {
    let (_, given) = given_from(
        "autopart --type=btrfs\nignoredisk --only-use=vda\nrootpw --iscrypted $6$x$y\n\
         network --device=ens3 --bootproto=static --ip=192.0.2.10 --netmask=255.255.255.0 --hostname=node1.example.com\n\
         timezone Europe/Paris\nuser --name=ops --groups=wheel\n",
        false,
    );
    let mut env = live_vm();
    let (r, out) = talk(&mut env, &given, "1\n2\n3\n4\n5\nb\n");
    let a = r.unwrap();
    assert_eq!(a, Answers::default(), "nothing asked, nothing answered");
    for line in [
        "vda 64.0 GiB, btrfs (kickstart)",
        "192.0.2.10 on ens3, node1.ex...",
        "Europe/Paris (kickstart)",
        "set (kickstart)",
        "ops (kickstart)",
        "The kickstart sets the destination (vda, btrfs); it is not asked here.",
        "The kickstart sets the network (192.0.2.10 on ens3) and the host name (node1.example.com); they are not asked here.",
        "The kickstart sets the time zone (Europe/Paris); it is not asked here.",
        "The kickstart sets root's password (set); it is not asked here.",
        "The kickstart creates the users (ops); no user is asked here.",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(env.echo.is_empty());
}

#[test]
fn a_locked_root_counts_as_an_account_only_with_an_ssh_key() {
    let a = Answers {
        disk: Some("vda".into()),
        ..Answers::default()
    };
    let (_, locked) = given_from("rootpw --lock\n", false);
    let why = hub::not_ready(&locked, &a).unwrap();
    assert!(why.contains("nobody could log in"), "{why}");
    let (_, with_key) = given_from(
        &format!("rootpw --lock\nsshkey --username=root \"{KEY}\"\n"),
        false,
    );
    assert_eq!(with_key.root.as_deref(), Some("locked, SSH key"));
    assert_eq!(hub::not_ready(&with_key, &a), None);
}

#[test]
fn a_kickstart_with_a_layout_but_no_disk_asks_only_the_disk() {
    let (_, given) = given_from("autopart --type=thinp\n", false);
    let mut env = live_vm();
    env.disks.push(disk("vdc", 100));
    let (r, out) = talk(
        &mut env,
        &given,
        "b\n1\n2\n5\nadmin\npassword1\npassword1\n\nb\n",
    );
    let a = r.unwrap();
    assert!(
        out.contains("Layout: thin LVM (set by the kickstart)."),
        "{out}"
    );
    assert!(!out.contains("Layout [1-3"), "{out}");
    assert_eq!((a.disk.as_deref(), a.layout), (Some("vdc"), None));
    assert!(a.user.is_some());
}

#[test]
fn the_medium_s_defaults_are_shown_and_may_be_changed() {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../kickstart/interactive-defaults.ks"
    ))
    .unwrap();
    let (_, given) = given_from(&text, true);
    let mut env = live_vm();
    let (r, out) = talk(
        &mut env,
        &given,
        "3\nEurope/Paris\n4\npassword1\npassword1\nb\n",
    );
    let a = r.unwrap();
    assert!(out.contains("Time zone [Enter keeps Etc/UTC]: "), "{out}");
    assert_eq!(a.timezone.as_deref(), Some("Europe/Paris"));
}

#[test]
fn a_closed_console_says_to_use_an_unattended_kickstart() {
    let mut env = live_vm();
    let (r, _) = talk(&mut env, &Given::default(), "4\nhvnode-test-pw\n");
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("the console closed"), "{e}");
    assert!(e.contains("use an unattended kickstart"), "{e}");
    // Echo is back on even though the console closed mid-password.
    assert_eq!(env.echo.last(), Some(&true));
}

#[test]
fn the_answers_become_the_kickstart_the_install_follows() {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../kickstart/interactive-defaults.ks"
    ))
    .unwrap();
    let (mut ks, _) = given_from(&format!("{text}%post\ntrue\n%end\n"), true);
    let a = Answers {
        disk: Some("vda".into()),
        layout: Some(LayoutChoice::Btrfs),
        root_password_hash: Some(crate::target::hash_password("hvnode-test-pw").unwrap()),
        user: None,
        network: Some(NetChoice::Static {
            device: "ens3".into(),
            address: "192.0.2.10".parse().unwrap(),
            prefix: 24,
            gateway: Some("192.0.2.1".parse().unwrap()),
            dns: vec!["192.0.2.53".parse().unwrap()],
        }),
        hostname: Some("node1.example.com".into()),
        timezone: Some("Europe/Paris".into()),
    };
    a.apply(&mut ks);
    let (plan, diags) = node::plan(&ks);
    assert!(
        diags
            .iter()
            .all(|d| d.severity != kickstart::Severity::Error),
        "{diags:?}"
    );
    assert_eq!(plan.disks.only_use, ["vda"]);
    assert_eq!(plan.disks.clear, Clear::All);
    assert!(matches!(
        plan.layout,
        Layout::Auto {
            scheme: AutopartType::Btrfs,
            ..
        }
    ));
    assert!(plan.root_password);
    assert_eq!(plan.hostname.as_deref(), Some("node1.example.com"));
    assert_eq!(
        plan.timezone.as_deref(),
        Some("Europe/Paris"),
        "the answer replaces the default"
    );
    assert_eq!(plan.network.len(), 1);
    let files = crate::target::networkd_files(&plan.network[0], 0).unwrap();
    assert!(
        files[0].1.contains(
            "Name=ens3\n\n[Network]\nAddress=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\n"
        ),
        "{files:?}"
    );

    // The disk plan the installer makes from it.
    let all = parse_lsblk(include_str!("../../tests/fixtures/lsblk-live-vm.json")).unwrap();
    let s = crate::storage::plan(&plan.layout, &plan.disks, &all, Some("HVNODE"), 2 << 30).unwrap();
    assert_eq!(s.disk.name, "vda");
    assert!(s.wipe);
    assert_eq!(s.scheme(), crate::storage::Scheme::Btrfs);

    // What is kept on the node parses back to the same plan; the commands
    // go before the %post section.
    let saved = saved_kickstart(&ks).unwrap();
    assert!(saved.starts_with("# Written by hvnode-install"), "{saved}");
    assert!(
        saved.find("timezone Europe/Paris --utc").unwrap() < saved.find("%post").unwrap(),
        "{saved}"
    );
    assert!(!saved.contains("Etc/UTC"), "{saved}");
    let back = kickstart::parse_str("hvnode-ks.cfg", &saved, &FsLoader);
    assert!(back.is_valid(), "{:?}\n{saved}", back.diagnostics);
    assert_eq!(node::plan(&back.kickstart).0, plan);
}

#[test]
fn the_saved_kickstart_never_holds_a_plain_password() {
    let (ks, _) = given_from(
        "rootpw --plaintext root-secret-1\nuser --name=ops --password=ops-secret-2\n\
         bootloader --password=grub-secret-3\nautopart --type=thinp\n",
        false,
    );
    let saved = saved_kickstart(&ks).unwrap();
    for secret in [
        "root-secret-1",
        "ops-secret-2",
        "grub-secret-3",
        "--plaintext",
    ] {
        assert!(!saved.contains(secret), "{secret}\n{saved}");
    }
    let back = kickstart::parse_str("hvnode-ks.cfg", &saved, &FsLoader);
    assert!(back.is_valid(), "{:?}", back.diagnostics);
    let mut hashes = back.kickstart.commands().filter_map(|(_, c)| match c {
        kickstart::commands::Command::Rootpw(r) => Some((r.iscrypted, r.password.clone())),
        kickstart::commands::Command::User(u) => Some((u.iscrypted, u.password.clone())),
        _ => None,
    });
    let (c, root) = hashes.next().unwrap();
    assert!(c && sha_crypt::sha512_check("root-secret-1", &root.unwrap()).is_ok());
    let (c, ops) = hashes.next().unwrap();
    assert!(c && sha_crypt::sha512_check("ops-secret-2", &ops.unwrap()).is_ok());
    // The boot loader's is kept as the hash grub reads, so that an install
    // from this file protects grub the same way.
    let password = node::plan(&back.kickstart).0.bootloader_password;
    let Some(kickstart::grub_password::BootPassword::Pbkdf2(hash)) = password else {
        panic!("{password:?}");
    };
    let h = kickstart::grub_password::parse_pbkdf2(&hash).unwrap();
    assert_eq!(
        crate::grub_password::pbkdf2_with_salt("grub-secret-3", &h.salt, h.iterations),
        hash
    );
}

#[test]
fn a_crypted_boot_loader_password_is_saved_as_given() {
    let hash = crate::grub_password::pbkdf2_with_salt("grub-secret", b"salt", 10);
    for line in [
        format!("bootloader --iscrypted --password={hash}"),
        format!("bootloader --md5pass={hash}"),
    ] {
        let (ks, _) = given_from(&format!("{line}\nautopart --type=thinp\n"), false);
        let saved = saved_kickstart(&ks).unwrap();
        assert!(
            saved.contains(&format!("\nbootloader --password={hash} --iscrypted\n")),
            "{saved}"
        );
        assert!(!saved.contains("--md5pass"), "{saved}");
    }
}

#[test]
fn the_system_finds_zones_interfaces_and_accounts_in_its_folders() {
    let d = tempfile::tempdir().unwrap();
    let zi = d.path().join("zoneinfo");
    fs::create_dir_all(zi.join("Europe")).unwrap();
    fs::create_dir_all(zi.join("posix/Europe")).unwrap();
    for f in ["Europe/Paris", "UTC", "posix/Europe/Paris"] {
        fs::write(zi.join(f), b"TZif2...").unwrap();
    }
    fs::write(zi.join("zone.tab"), "# table").unwrap();
    fs::write(zi.join("Europe/README"), "not a zone").unwrap();
    let net = d.path().join("net");
    for n in ["lo", "ens4", "ens3"] {
        fs::create_dir_all(net.join(n)).unwrap();
    }
    let etc = d.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(etc.join("group"), "sudo:x:27:\n").unwrap();
    let mut s = System::new(vec![], None);
    s.zoneinfo = zi;
    s.sys_class_net = net;
    s.etc = etc;
    assert_eq!(s.zones(), ["Europe/Paris", "UTC"]);
    assert!(s.zone_exists("Europe/Paris") && !s.zone_exists("Europe/README"));
    assert!(!s.zone_exists("../zoneinfo/UTC"));
    assert_eq!(s.interfaces(), ["ens3", "ens4"]);
    assert!(s.account_exists("root") && s.account_exists("sudo") && !s.account_exists("admin"));
}

#[test]
fn plain_partitions_are_carried_to_the_plan() {
    let a = Answers {
        disk: Some("vda".into()),
        layout: Some(LayoutChoice::Plain),
        root_password_hash: Some("$6$salt$hash".into()),
        ..Answers::default()
    };
    let mut ks = kickstart::Kickstart::default();
    a.apply(&mut ks);
    let (plan, _) = node::plan(&ks);
    assert!(matches!(
        plan.layout,
        Layout::Auto {
            scheme: AutopartType::Plain,
            ..
        }
    ));
    let all = parse_lsblk(include_str!("../../tests/fixtures/lsblk-live-vm.json")).unwrap();
    let p = crate::storage::plan(&plan.layout, &plan.disks, &all, Some("HVNODE"), 2 << 30).unwrap();
    assert_eq!(p.scheme(), crate::storage::Scheme::Plain);
}
