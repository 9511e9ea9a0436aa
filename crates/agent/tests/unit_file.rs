//! The shipped unit file: systemd parses it without a complaint, and it keeps the
//! promises the agent relies on (notify with watchdog, restart on failure).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hvnode_testutil::units::{self, value};
use std::path::PathBuf;

fn unit() -> String {
    units::unit("hvnode-agent.service")
}

#[test]
fn systemd_accepts_every_line() {
    units::verify(
        "hvnode-agent.service",
        &unit(),
        env!("CARGO_BIN_EXE_hvnode-agent"),
    );
    let helper = units::unit("hvnode-helper.service");
    units::verify(
        "hvnode-helper.service",
        &helper,
        env!("CARGO_BIN_EXE_hvnode-helper"),
    );
}

#[test]
fn notify_watchdog_restart_and_the_binary() {
    let text = unit();
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    assert!(text.lines().any(|l| l.starts_with("WatchdogSec=")));
    assert!(
        text.lines()
            .any(|l| l.starts_with("ExecStart=/usr/bin/hvnode-agent "))
    );
}

/// The unit's `ReadWritePaths=` and `CapabilityBoundingSet=`, word by word.
fn settings(text: &str) -> (Vec<String>, Vec<String>) {
    let words = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(str::split_whitespace)
            .map(|p| p.trim_start_matches('-').to_string())
            .collect()
    };
    (words("ReadWritePaths="), words("CapabilityBoundingSet="))
}

/// The helper sets the next boot's layer and rolls back (grub-editenv writes
/// grubenv.new beside /boot/grub/grubenv, then renames it; lvs gives the layer facts
/// it checks first, and the console's), checks logins (pam_faillock) and asks sudo;
/// the web process keeps none of those rights.
#[test]
fn the_helper_has_the_rights_of_its_requests_and_the_web_process_does_not() {
    let helper = units::unit("hvnode-helper.service");
    let (paths, caps) = settings(&helper);
    for p in [
        "/boot/grub",
        "/run/lvm",
        "/run/faillock",
        "/sys/kernel/mm/ksm",
        // The engine's networks (Host.setupNetworks): networkd's files and the
        // running and safe configurations.
        "/etc/systemd/network",
        "/etc/hvnode/networks",
    ] {
        assert!(paths.iter().any(|w| w == p), "helper: {p} is not writable");
    }
    // The engine's link has its own socket, served as the vdsm user's.
    assert!(
        helper
            .lines()
            .any(|l| l.starts_with("ExecStart=") && l.contains("--engine-user vdsm")),
        "helper: no --engine-user vdsm"
    );
    for c in [
        "CAP_SYS_ADMIN",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_AUDIT_WRITE",
        // networkctl delete (rtnetlink) of a bridge no network makes any more.
        "CAP_NET_ADMIN",
    ] {
        assert!(caps.iter().any(|w| w == c), "helper: no {c}");
    }
    let (paths, caps) = settings(&unit());
    // Nor the registration files (the engine's CA, the unique id, root's
    // authorized_keys, the registration lock): nodectl writes them, which the helper
    // starts.
    for p in [
        "/boot/grub",
        "/run/faillock",
        "/run/lvm",
        "/run/lock/lvm",
        "/etc/pki/ovirt-engine",
        "/etc/vdsm",
        "/root/.ssh",
        "/run/hvnode",
    ] {
        assert!(!paths.iter().any(|w| w == p), "agent: {p} is writable");
    }
    assert!(unit().lines().any(|l| l == "ProtectHome=read-only"));
    // The layer facts and thin pools (lvs, btrfs subvolume list) come from the
    // helper too.
    assert!(caps.is_empty(), "agent: capabilities {caps:?}");
}

/// The web process runs as its own user, which the image makes (sysusers.d), which
/// the helper serves, and which reads its certificate from the copy the root step
/// before it leaves in the runtime directory systemd gives that user.
#[test]
fn the_web_process_runs_as_its_own_user_with_no_capabilities() {
    let text = unit();
    let user = value(&text, "User").expect("User=");
    assert_eq!(value(&text, "Group"), Some(user));
    assert_eq!(value(&text, "CapabilityBoundingSet"), Some(""));
    assert_eq!(value(&text, "AmbientCapabilities"), Some(""));
    let groups = value(&text, "SupplementaryGroups").unwrap_or_default();
    for g in ["systemd-journal", "kvm"] {
        assert!(groups.split_whitespace().any(|w| w == g), "no group {g}");
    }
    // No directory systemd would hand to the user but its own.
    for key in ["ConfigurationDirectory", "ReadWritePaths"] {
        assert_eq!(value(&text, key), None, "{key}");
    }
    assert_eq!(value(&text, "StateDirectory"), Some("hvnode-console"));

    let sysusers = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../image/files/usr/lib/sysusers.d/hvnode.conf"),
    )
    .unwrap();
    assert!(
        sysusers
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["u", user])),
        "sysusers.d makes no {user}"
    );
    let helper = units::unit("hvnode-helper.service");
    let helper_start = value(&helper, "ExecStart").unwrap();
    assert!(
        helper_start.contains(&format!("--allow-user {user}"))
            && helper_start.contains(&format!("--group {user}")),
        "{helper_start}"
    );
    // Giving its socket to that group takes CAP_CHOWN.
    let (_, helper_caps) = settings(&helper);
    assert!(
        helper_caps.iter().any(|c| c == "CAP_CHOWN"),
        "{helper_caps:?}"
    );

    let install = value(&text, "ExecStartPre")
        .and_then(|l| l.strip_prefix("+/usr/bin/hvnode-helper --install-certificate "))
        .expect("the certificate installed as root before the start");
    let start = value(&text, "ExecStart").unwrap();
    assert_eq!(
        start,
        format!("/usr/bin/hvnode-agent --certs-dir {install}")
    );
    let runtime: Vec<&str> = value(&text, "RuntimeDirectory")
        .unwrap()
        .split_whitespace()
        .collect();
    let install_dir = install.trim_start_matches("/run/");
    assert!(runtime.contains(&install_dir), "{runtime:?} {install}");
}

/// systemd kills the helper `TimeoutStopSec` after SIGTERM: its orderly stop (every
/// connection closed, each PAM session closed) must end before that.
#[test]
fn the_helper_stops_in_order_before_systemd_kills_it() {
    let helper = units::unit("hvnode-helper.service");
    let timeout: u64 = helper
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.strip_suffix('s'))
        .expect("TimeoutStopSec=Ns in hvnode-helper.service")
        .parse()
        .unwrap();
    assert!(
        hvnode_agent::helper_service::STOP_WAIT.as_secs() < timeout,
        "the helper waits {:?} for sessions to close, systemd {timeout} s",
        hvnode_agent::helper_service::STOP_WAIT
    );
}

#[test]
fn the_descriptor_limit_holds_the_connection_cap_and_the_reserve() {
    let text = unit();
    let limit: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("no LimitNOFILE=: systemd's default soft limit of 1024 is below the cap")
        .parse()
        .unwrap();
    let config = console::Config::default();
    let need = config.max_connections + console::limits::FD_RESERVE;
    assert!(
        limit >= need,
        "LimitNOFILE={limit} is below max_connections ({}) plus the reserve ({})",
        config.max_connections,
        console::limits::FD_RESERVE
    );
    // Then the console keeps the configured cap.
    assert_eq!(
        console::limits::cap_within(config.max_connections, limit),
        config.max_connections
    );
}
