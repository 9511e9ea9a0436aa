#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::store::{Store, StoreError};
use super::*;

/// A host root with the links `names` (and a MAC each) under `sys/class/net`.
fn host(names: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (i, name) in names.iter().enumerate() {
        let dir = root.path().join("sys/class/net").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("address"),
            format!("52:54:00:12:34:{:02x}\n", 0x56 + i),
        )
        .unwrap();
    }
    root
}

fn mgmt(lower: &str) -> Network {
    Network {
        lower: lower.into(),
        vlan: None,
        bridged: true,
        ipv4: Ipv4::Dhcp,
        ipv6_autoconf: false,
        dhcpv6: false,
        default_route: true,
        mtu: None,
        stp: false,
        nameservers: vec![],
    }
}

fn set(name: &str, network: Network) -> Change {
    Change::Set {
        name: name.into(),
        network,
    }
}

fn files(root: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(root.join("etc/systemd/network"))
        .map(|d| {
            d.map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().into_string().unwrap(),
                        std::fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn the_management_bridge_takes_the_nics_place_and_mac() {
    let root = host(&["ens3"]);
    let nets = Networks::default()
        .with(
            &[set("ovirtmgmt", mgmt("ens3"))],
            &SysLinks(root.path().into()),
        )
        .unwrap();
    let files = render(&nets, &SysLinks(root.path().into()));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "05-hvnode-engine-ens3.network",
            "05-hvnode-engine-ovirtmgmt.netdev",
            "05-hvnode-engine-ovirtmgmt.network"
        ]
    );
    assert!(
        files[0]
            .1
            .ends_with("[Match]\nName=ens3\n\n[Network]\nBridge=ovirtmgmt\n")
    );
    assert!(files[1].1.contains(
        "[NetDev]\nName=ovirtmgmt\nKind=bridge\nMACAddress=52:54:00:12:34:56\n\n[Bridge]\nSTP=no\n"
    ));
    assert!(files[2].1.contains("[Match]\nName=ovirtmgmt\n"));
    assert!(files[2].1.contains("DHCP=ipv4\n"));
    // The default route's network takes the DHCP server's gateway.
    assert!(!files[2].1.contains("UseGateway=no"));
}

#[test]
fn vlans_share_a_nic_and_static_addresses_are_written_as_given() {
    let root = host(&["ens3", "ens4"]);
    let links = SysLinks(root.path().into());
    let storage = Network {
        vlan: Some(100),
        bridged: false,
        ipv4: Ipv4::Static {
            address: "198.51.100.21".parse().unwrap(),
            prefix: 24,
            gateway: Some("198.51.100.1".parse().unwrap()),
        },
        default_route: false,
        mtu: Some(9000),
        nameservers: vec!["198.51.100.53".parse().unwrap()],
        ..mgmt("ens3")
    };
    let vm = Network {
        vlan: Some(200),
        ipv4: Ipv4::None,
        default_route: false,
        ..mgmt("ens3")
    };
    let nets = Networks::default()
        .with(
            &[
                set("ovirtmgmt", mgmt("ens3")),
                set("storage", storage),
                set("vmnet", vm),
            ],
            &links,
        )
        .unwrap();
    let files: BTreeMap<String, String> = render(&nets, &links).into_iter().collect();
    let ens3 = &files["05-hvnode-engine-ens3.network"];
    assert!(ens3.contains("[Link]\nMTUBytes=9000\n"), "{ens3}");
    assert!(
        ens3.contains("VLAN=ens3.100\nVLAN=ens3.200\nBridge=ovirtmgmt\n"),
        "{ens3}"
    );
    let vlan = &files["05-hvnode-engine-ens3.100.netdev"];
    assert!(
        vlan.contains("Kind=vlan\nMTUBytes=9000\n\n[VLAN]\nId=100\n"),
        "{vlan}"
    );
    let storage = &files["05-hvnode-engine-ens3.100.network"];
    assert!(storage.contains("Address=198.51.100.21/24\n"));
    // Not the default route: its gateway would make a second one.
    assert!(!storage.contains("Gateway="), "{storage}");
    assert!(storage.contains("DNS=198.51.100.53\n"));
    assert!(files["05-hvnode-engine-ens3.200.network"].contains("Bridge=vmnet\n"));
    let vmnet = &files["05-hvnode-engine-vmnet.network"];
    assert!(vmnet.contains("LinkLocalAddressing=no\n"), "{vmnet}");
    assert_eq!(
        nets.made_devices(),
        ["ens3.100", "ens3.200", "ovirtmgmt", "vmnet"]
    );
}

#[test]
fn bad_changes_are_refused_naming_the_rule_they_break() {
    // The management bridge exists once it is set up.
    let root = host(&["ens3", "ens4", "ovirtmgmt"]);
    let links = SysLinks(root.path().into());
    let base = Networks::default()
        .with(&[set("ovirtmgmt", mgmt("ens3"))], &links)
        .unwrap();
    let cases: Vec<(Change, Rule, &str)> = vec![
        (
            set("net", mgmt("ens9")),
            Rule::BadNic,
            "no NIC or bond \"ens9\"",
        ),
        (
            set("ovirt.mgmt", mgmt("ens4")),
            Rule::BadBridge,
            "cannot name a network",
        ),
        (
            set("a-very-long-network-name", mgmt("ens4")),
            Rule::BadBridge,
            "at most 15",
        ),
        (set("../etc", mgmt("ens4")), Rule::BadBridge, "cannot name"),
        (
            set(
                "net",
                Network {
                    vlan: Some(4095),
                    ..mgmt("ens4")
                },
            ),
            Rule::BadVlan,
            "4095",
        ),
        (
            set(
                "net",
                Network {
                    mtu: Some(20),
                    ..mgmt("ens4")
                },
            ),
            Rule::BadParams,
            "MTU 20",
        ),
        (
            set(
                "net",
                Network {
                    ipv4: Ipv4::Static {
                        address: "192.0.2.10".parse().unwrap(),
                        prefix: 24,
                        gateway: Some("198.51.100.1".parse().unwrap()),
                    },
                    default_route: false,
                    ..mgmt("ens4")
                },
            ),
            Rule::BadAddr,
            "not in 192.0.2.10/24's subnet",
        ),
        // ens3 carries ovirtmgmt untagged already.
        (
            set(
                "net",
                Network {
                    default_route: false,
                    ..mgmt("ens3")
                },
            ),
            Rule::UsedNic,
            "both sit on ens3",
        ),
        // A second default route.
        (set("net", mgmt("ens4")), Rule::BadParams, "default route"),
        (
            set(
                "net",
                Network {
                    default_route: false,
                    ..mgmt("ovirtmgmt")
                },
            ),
            Rule::BadNic,
            "a network's bridge",
        ),
        (
            Change::Remove {
                name: "gone".into(),
            },
            Rule::BadBridge,
            "not set up",
        ),
    ];
    for (change, rule, says) in cases {
        let e = base
            .with(std::slice::from_ref(&change), &links)
            .unwrap_err();
        assert_eq!(e.rule, rule, "{change:?}: {e}");
        assert!(e.message.contains(says), "{change:?}: {e}");
    }
    // Moving the management network to another NIC, in one change, is fine.
    let moved = base
        .with(
            &[
                Change::Remove {
                    name: "ovirtmgmt".into(),
                },
                set("ovirtmgmt", mgmt("ens4")),
            ],
            &links,
        )
        .unwrap();
    assert_eq!(moved.0["ovirtmgmt"].lower, "ens4");
}

#[test]
fn a_change_is_rolled_back_or_committed_and_a_boot_starts_from_the_safe_one() {
    let root = host(&["ens3"]);
    std::fs::create_dir_all(root.path().join("etc/systemd/network")).unwrap();
    // The installer's and the image's files stay; the engine's sort first.
    std::fs::write(
        root.path()
            .join("etc/systemd/network/80-hvnode-dhcp.network"),
        "[Match]\nName=en*\n",
    )
    .unwrap();
    let store = Store::new(root.path());
    assert!(matches!(
        store.rollback(),
        Err(StoreError::NothingToRollBack)
    ));

    let t = store.setup(&[set("ovirtmgmt", mgmt("ens3"))]).unwrap();
    assert!(t.before.0.is_empty());
    assert!(t.gone().is_empty());
    assert!(store.pending().unwrap());
    assert_eq!(files(root.path()).len(), 4);

    // Not confirmed: back to no network, the engine's files gone, the bridge
    // to delete.
    let back = store.rollback().unwrap();
    assert_eq!(back.gone(), ["ovirtmgmt"]);
    assert_eq!(
        files(root.path())
            .iter()
            .map(|f| f.0.as_str())
            .collect::<Vec<_>>(),
        ["80-hvnode-dhcp.network"]
    );
    assert!(!store.pending().unwrap());

    // Confirmed and committed, then a change that a reboot undoes.
    store.setup(&[set("ovirtmgmt", mgmt("ens3"))]).unwrap();
    store.commit().unwrap();
    assert_eq!(store.safe().unwrap(), store.running().unwrap());
    let committed = files(root.path());
    store
        .setup(&[set(
            "ovirtmgmt",
            Network {
                ipv4: Ipv4::Static {
                    address: "192.0.2.99".parse().unwrap(),
                    prefix: 24,
                    gateway: Some("192.0.2.1".parse().unwrap()),
                },
                ..mgmt("ens3")
            },
        )])
        .unwrap();
    assert_ne!(files(root.path()), committed);
    assert!(store.restore_at_boot().unwrap());
    assert_eq!(files(root.path()), committed);
    assert!(!store.pending().unwrap());
    assert!(!store.restore_at_boot().unwrap());
    // A file edited by hand is put back too.
    std::fs::write(
        root.path()
            .join("etc/systemd/network/05-hvnode-engine-ens3.network"),
        "edited",
    )
    .unwrap();
    assert!(store.restore_at_boot().unwrap());
    assert_eq!(files(root.path()), committed);
}

#[test]
fn a_bad_change_leaves_everything_as_it_was() {
    let root = host(&["ens3"]);
    let store = Store::new(root.path());
    store.setup(&[set("ovirtmgmt", mgmt("ens3"))]).unwrap();
    store.commit().unwrap();
    let before = files(root.path());
    let e = store.setup(&[set("vmnet", mgmt("ens7"))]).unwrap_err();
    assert!(e.to_string().contains("ens7"), "{e}");
    assert_eq!(files(root.path()), before);
    assert!(!store.pending().unwrap());
}

#[test]
fn a_damaged_state_file_is_named() {
    let root = host(&["ens3"]);
    std::fs::create_dir_all(root.path().join("etc/hvnode/networks")).unwrap();
    std::fs::write(root.path().join("etc/hvnode/networks/running.json"), "{").unwrap();
    let e = Store::new(root.path()).running().unwrap_err().to_string();
    assert!(
        e.contains("running.json is not a network configuration"),
        "{e}"
    );
}

#[test]
fn the_wire_form_is_stable() {
    let change = set("ovirtmgmt", mgmt("ens3"));
    assert_eq!(
        serde_json::to_string(&change).unwrap(),
        r#"{"op":"set","name":"ovirtmgmt","network":{"lower":"ens3","vlan":null,"bridged":true,"ipv4":{"mode":"dhcp"},"ipv6_autoconf":false,"dhcpv6":false,"default_route":true,"mtu":null,"stp":false,"nameservers":[]}}"#
    );
}
