#![allow(clippy::unwrap_used)]

use super::*;

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// What the engine sends to make its management network at host deploy
/// (`HostSetupNetworksVDSCommand`, as the protocol notes record it).
fn engines_deploy_request() -> Value {
    json!({
        "networks": {"ovirtmgmt": {
            "nic": "ens3", "bridged": "true", "bootproto": "dhcp", "defaultRoute": true,
            "mtu": 1500, "STP": "no", "ipv6autoconf": false, "dhcpv6": false,
            "switch": "legacy", "custom": {}, "hostQos": {}
        }},
        "bondings": {},
        "options": {"connectivityCheck": "true", "connectivityTimeout": 120, "commitOnSuccess": true}
    })
}

#[test]
fn the_engines_deploy_request_is_read_as_a_bridged_dhcp_network() {
    let (changes, options) = parse_setup(&params(engines_deploy_request())).unwrap();
    assert_eq!(
        options,
        Options {
            check: true,
            timeout: Duration::from_secs(120),
            commit: true
        }
    );
    let [Change::Set { name, network }] = changes.as_slice() else {
        panic!("{changes:?}");
    };
    assert_eq!(name, "ovirtmgmt");
    assert_eq!(network.lower, "ens3");
    assert!(network.bridged && network.default_route && !network.stp);
    assert_eq!(network.ipv4, Ipv4::Dhcp);
    assert_eq!(network.mtu, Some(1500));
}

#[test]
fn static_vlan_and_removal_are_read_and_vdsms_defaults_apply() {
    let (changes, options) = parse_setup(&params(json!({
        "networks": {
            "storage": {"nic": "ens4", "vlan": "100", "bridged": false, "bootproto": "none",
                        "ipaddr": "198.51.100.21", "netmask": "255.255.255.0",
                        "gateway": "198.51.100.1", "nameservers": ["198.51.100.53"]},
            "old": {"remove": "true"}
        }
    })))
    .unwrap();
    // vdsm checks connectivity by default, for 4 s, and commits only when asked.
    assert_eq!(
        options,
        Options {
            check: true,
            timeout: DEFAULT_CONNECTIVITY_TIMEOUT,
            commit: false
        }
    );
    assert_eq!(changes[0], Change::Remove { name: "old".into() });
    let Change::Set { network, .. } = &changes[1] else {
        panic!()
    };
    assert_eq!(network.vlan, Some(100));
    assert!(!network.bridged);
    assert_eq!(
        network.ipv4,
        Ipv4::Static {
            address: "198.51.100.21".parse().unwrap(),
            prefix: 24,
            gateway: Some("198.51.100.1".parse().unwrap())
        }
    );
    assert_eq!(
        network.nameservers,
        ["198.51.100.53".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn bad_requests_get_vdsms_network_codes() {
    let cases = [
        (
            json!({"bondings": {"bond0": {"nics": ["ens3", "ens4"]}}}),
            code::BAD_BONDING,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "bootproto": "bootp"}}}),
            code::BAD_PARAMS,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "ipaddr": "10.0.0.300", "prefix": 24}}}),
            code::BAD_ADDR,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "ipaddr": "10.0.0.3"}}}),
            code::BAD_ADDR,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "ipaddr": "10.0.0.3", "netmask": "255.0.255.0"}}}),
            code::BAD_ADDR,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "vlan": 70000}}}),
            code::BAD_VLAN,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "bonding": "bond0"}}}),
            code::BAD_PARAMS,
        ),
        (
            json!({"networks": {"n": {"bridged": true}}}),
            code::BAD_PARAMS,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "switch": "ovs"}}}),
            code::BAD_PARAMS,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "ipv6addr": "2001:db8::5/64"}}}),
            code::BAD_ADDR,
        ),
        (
            json!({"networks": {"n": {"nic": "ens3", "mtu": "jumbo"}}}),
            code::BAD_PARAMS,
        ),
        (json!({"networks": ["ovirtmgmt"]}), code::BAD_PARAMS),
    ];
    for (request, code) in cases {
        let e = parse_setup(&params(request.clone())).unwrap_err();
        assert_eq!(e.code, code, "{request}: {e}");
    }
}

#[test]
fn the_host_is_checked_before_the_helper_is_asked() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("sys/class/net/ens3")).unwrap();
    let (changes, _) = parse_setup(&params(engines_deploy_request())).unwrap();
    precheck(root.path(), &changes).unwrap();
    let moved = json!({"networks": {"ovirtmgmt": {"nic": "ens9", "bootproto": "dhcp"}}});
    let (changes, _) = parse_setup(&params(moved)).unwrap();
    let e = precheck(root.path(), &changes).unwrap_err();
    assert_eq!(e.code, code::BAD_NIC, "{e}");
    let (changes, _) = parse_setup(&params(json!({"networks": {"x": {"remove": true}}}))).unwrap();
    assert_eq!(
        precheck(root.path(), &changes).unwrap_err().code,
        code::BAD_BRIDGE
    );
}

#[test]
fn a_call_after_the_change_confirms_it_and_silence_does_not() {
    let calls = Calls::new();
    calls.count();
    let mark = calls.so_far();
    assert!(!calls.wait_past(mark, Duration::from_millis(300)));
    let c = calls.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.count();
    });
    assert!(calls.wait_past(mark, Duration::from_secs(10)));
    t.join().unwrap();
}

#[test]
fn the_default_gateway_is_read_from_the_kernels_routing_table() {
    let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 ovirtmgmt\t00000000\t0202000A\t0003\t0\t0\t1024\t00000000\t0\t0\t0\n\
                 ovirtmgmt\t0002000A\t00000000\t0001\t0\t0\t1024\t00FFFFFF\t0\t0\t0\n";
    if cfg!(target_endian = "little") {
        assert_eq!(
            default_gateway(table, "ovirtmgmt"),
            Some("10.0.2.2".parse().unwrap())
        );
    }
    assert_eq!(default_gateway(table, "ens3"), None);
}

#[test]
fn running_networks_are_reported_from_their_devices_facts() {
    let mut running = netconf::Networks::default();
    let (changes, _) = parse_setup(&params(engines_deploy_request())).unwrap();
    let Change::Set { name, network } = changes[0].clone() else {
        panic!()
    };
    running.0.insert(name, network);
    let mut facts = Map::new();
    facts.insert(
        "ovirtmgmt".into(),
        json!({"addr": "10.0.2.15", "netmask": "255.255.255.0", "mtu": "1500", "ports": ["ens3"]}),
    );
    let table = "Iface\tDestination\tGateway\n ovirtmgmt\t00000000\t0202000A\t0003\n";
    let nets = report(&running, &facts, table);
    let m = &nets["ovirtmgmt"];
    assert_eq!(m["iface"], "ovirtmgmt");
    assert_eq!(m["bridged"], true);
    assert_eq!(m["addr"], "10.0.2.15");
    assert_eq!(m["ports"], json!(["ens3"]));
    assert_eq!(m["dhcpv4"], true);
    assert_eq!(m["southbound"], "ens3");
    assert_eq!(m["stp"], false);
    assert_eq!(m["switch"], "legacy");
}
