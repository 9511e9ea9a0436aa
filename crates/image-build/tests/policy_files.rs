//! The image's SELinux module (image/selinux) and the units it confines agree: each
//! hvnode daemon's binary is the entry point of its domain, and every folder
//! systemd makes for it has the file type the domain's rules name. A renamed
//! binary or folder would otherwise leave a process in `initrc_t` or a denied
//! folder, found only in a boot.

use std::path::Path;

use hvnode_testutil::units::{unit, value};

fn policy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../image/selinux")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The type `hvnode.fc` gives `path` (its regular expression written out).
fn file_type(fc: &str, path: &str) -> Option<String> {
    fc.lines()
        .map(str::split_whitespace)
        .filter_map(|mut f| {
            let p = f.next()?;
            let ctx = f.last()?;
            Some((p.to_string(), ctx.to_string()))
        })
        .find(|(p, _)| p == path)
        .and_then(|(_, ctx)| {
            ctx.split(':')
                .nth(2)
                .map(|t| t.trim_end_matches(",s0)").to_string())
        })
}

const DAEMONS: [(&str, &str, &str); 3] = [
    ("hvnode-agent.service", "hvnode_ws_t", "hvnode_ws_exec_t"),
    (
        "hvnode-helper.service",
        "hvnode_helper_t",
        "hvnode_helper_exec_t",
    ),
    ("hvnode-vdsm.service", "hvnode_vdsm_t", "hvnode_vdsm_exec_t"),
];

#[test]
fn each_daemon_binary_enters_its_domain() {
    let fc = policy_file("hvnode.fc");
    let te = policy_file("hvnode.te");
    for (name, domain, exec) in DAEMONS {
        let text = unit(name);
        let binary = value(&text, "ExecStart")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no ExecStart"));
        assert_eq!(
            file_type(&fc, binary).as_deref(),
            Some(exec),
            "{name}: {binary} is not labelled {exec} in hvnode.fc"
        );
        assert!(
            te.contains(&format!("init_daemon_domain({domain}, {exec})")),
            "{name}: hvnode.te makes no daemon domain {domain} entered by {exec}"
        );
    }
}

#[test]
fn the_folders_systemd_makes_have_the_domains_types() {
    let fc = policy_file("hvnode.fc");
    let expect = [
        (
            "hvnode-agent.service",
            "RuntimeDirectory",
            "/run",
            "hvnode_ws_runtime_t",
        ),
        (
            "hvnode-agent.service",
            "StateDirectory",
            "/var/lib",
            "hvnode_ws_var_lib_t",
        ),
        (
            "hvnode-helper.service",
            "RuntimeDirectory",
            "/run",
            "hvnode_helper_runtime_t",
        ),
    ];
    for (name, key, root, ty) in expect {
        let text = unit(name);
        let dirs = value(&text, key).unwrap_or_else(|| panic!("{name}: no {key}"));
        for dir in dirs.split_whitespace() {
            // A nested folder (hvnode-agent/tls) takes its parent's rule.
            let top = dir.split('/').next().unwrap_or(dir);
            assert_eq!(
                file_type(&fc, &format!("{root}/{top}(/.*)?")).as_deref(),
                Some(ty),
                "{name}: {key}={dir} has no rule {root}/{top}(/.*)? {ty} in hvnode.fc"
            );
        }
    }
}

#[test]
fn the_root_certificate_step_runs_in_the_helpers_domain() {
    // The web process's domain may not write root's certificates: the step that
    // makes them, run as root before each start, is the helper's binary.
    let text = unit("hvnode-agent.service");
    let pre = value(&text, "ExecStartPre").expect("an ExecStartPre");
    let binary = pre
        .trim_start_matches('+')
        .split_whitespace()
        .next()
        .unwrap_or_default();
    let helper = unit("hvnode-helper.service");
    let helper_binary = value(&helper, "ExecStart")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default();
    assert_eq!(binary, helper_binary, "{pre}");
}

/// Executable memory is for emulated guests only: the recipe turns on no
/// boolean that gives it to every guest (`virt_use_execmem`, `allow_execmem`),
/// libvirt's second (TCG) domain is svirt_prot_exec_t, and the module gives that
/// domain the guests' disks (labelled svirt_image_t whatever the domain) and
/// the network that svirt_t has.
#[test]
fn only_emulated_guests_map_executable_memory() {
    let recipe_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../image/hvnode.toml");
    let recipe = image_build::recipe::Recipe::load(&recipe_path).expect("the image recipe");
    for b in ["virt_use_execmem", "allow_execmem"] {
        assert_ne!(
            recipe.selinux.booleans.get(b),
            Some(&true),
            "the recipe turns on {b}"
        );
    }
    let contexts: Vec<&str> = image_build::configure::VIRTUAL_DOMAIN_CONTEXT
        .lines()
        .collect();
    assert_eq!(
        contexts,
        [
            "system_u:system_r:svirt_t:s0",
            "system_u:system_r:svirt_prot_exec_t:s0"
        ]
    );
    let te = policy_file("hvnode.te");
    for rule in [
        "manage_files_pattern(svirt_prot_exec_t, svirt_image_t, svirt_image_t)",
        "rw_blk_files_pattern(svirt_prot_exec_t, svirt_image_t, svirt_image_t)",
        "corenet_tcp_connect_all_ports(svirt_prot_exec_t)",
    ] {
        assert!(te.contains(rule), "hvnode.te lacks {rule}");
    }
    let cil = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../image/files/usr/share/hvnode/selinux/hvnode-local.cil"),
    )
    .expect("hvnode-local.cil");
    assert!(
        !cil.lines()
            .any(|l| l.starts_with("(allow") && l.contains("execmem")),
        "hvnode-local.cil allows execmem"
    );
}
