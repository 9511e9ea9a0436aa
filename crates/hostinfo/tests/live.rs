//! The readers on the live host: whatever this machine is, each returns sane facts
//! (or, for LVM, says why it could not).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn system_info_of_this_host() {
    let info = hostinfo::system_info().unwrap();
    assert!(!info.hostname.is_empty());
    assert!(info.cpu.count >= 1 && !info.cpu.model.is_empty());
    assert!(info.memory.total > 0 && info.memory.used() <= info.memory.total);
    assert!(info.uptime_secs > 0);
    assert!(!info.kernel.is_empty());
}

#[test]
fn counters_move_forward() {
    let a = hostinfo::read_counters().unwrap();
    let mut x = 0u64;
    for i in 0..3_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    let b = hostinfo::read_counters().unwrap();
    assert!(b.cpu.total >= a.cpu.total);
    let r = hostinfo::rates(&a, &b, 0.1);
    assert!((0.0..=100.0).contains(&r.cpu_percent));
}

#[test]
fn block_devices_interfaces_and_filesystems() {
    let devs = hostinfo::block_devices().unwrap();
    for d in devs.iter().flat_map(hostinfo::BlockDevice::walk) {
        assert!(!d.name.is_empty() && d.path.starts_with("/dev/"), "{d:?}");
    }
    let ifs = hostinfo::interfaces().unwrap();
    let lo = ifs
        .iter()
        .find(|i| i.name == "lo")
        .expect("a loopback interface");
    assert!(lo.addresses.iter().any(|a| a == "127.0.0.1/8"));
    assert!(lo.counters.is_some());
    let fs = hostinfo::filesystems().unwrap();
    assert!(fs.iter().any(|f| f.target == "/"));
}

#[test]
fn thin_pools_or_the_reason_there_are_none() {
    match hostinfo::thin_pools() {
        Ok(pools) => assert!(
            pools
                .iter()
                .all(|p| (0.0..=100.0).contains(&p.data_percent))
        ),
        // No device-mapper in this kernel: the error names the command and what it said.
        Err(e) => {
            assert!(e.command_line.starts_with("lvs --reportformat json"), "{e}");
            assert!(!e.stderr.is_empty(), "{e}");
        }
    }
}

#[test]
fn selinux_and_host_keys_never_fail() {
    let s = hostinfo::selinux();
    assert!(["enforcing", "permissive", "disabled"].contains(&s.mode.as_str()));
    for k in hostinfo::host_key_fingerprints(std::path::Path::new("/etc/ssh")) {
        assert!(
            k.fingerprint.starts_with("SHA256:") && k.fingerprint.len() == 50,
            "{k:?}"
        );
    }
}
