//! `nodectl --json` against the schemas of `docs/schemas/`: every kind nodectl prints
//! (`NodeInfo`, `NodeCheck`, `Registration`, `RegistrationResult`, `EngineCa`,
//! `RegistrationError`) is produced — by
//! the binary on this host, by the binary against the loopback test engine and
//! scratch sysroots, and from recorded facts of an installed node — and validated;
//! every property the schemas declare must have been seen; wrong shapes are refused.
//! `nodectl update --json`'s error line is checked here; its other lines, by the
//! update crate's tests/json_lines.rs (real updates on a loop device).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod schema_check;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use registration::{
    CaFingerprints, EngineAddr, ErrorKind, Registration, RegistrationState, Sysroot,
};
use schema_check::Schemas;
use serde_json::{Value, json};
use test_engine::TestEngine;

const DMI_UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4A4D32";
const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER root@node";

/// The schema files of the nodectl kinds and what they share.
const NODECTL_SCHEMAS: &[&str] = &[
    "nodectl-NodeInfo.json",
    "nodectl-NodeCheck.json",
    "nodectl-Registration.json",
    "nodectl-RegistrationResult.json",
    "nodectl-EngineCa.json",
    "nodectl-RegistrationError.json",
    "nodectl-Rollback.json",
    "nodectl-UpdateLine.json",
    "health-Report.json",
    "hostinfo-Firmware.json",
    "registration-State.json",
    "registration-StateFile.json",
    "vdsm-Report.json",
];

/// Runs nodectl; `ok_codes` are the exit codes that are not a failure.
fn nodectl(args: &[&str], ok_codes: &[i32]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok_codes.contains(&code),
        "nodectl {args:?} exited {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "nodectl {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// nodectl's envelope around `body`, as `output::print_json` writes it (the binary's
/// own envelope is checked on the outputs of the binary).
fn envelope(kind: &str, body: impl serde::Serialize) -> Value {
    let mut v = json!({ "apiVersion": registration::API_VERSION, "kind": kind });
    let Value::Object(body) = serde_json::to_value(body).unwrap() else {
        panic!("a body is an object");
    };
    v.as_object_mut().unwrap().extend(body);
    v
}

/// An installed node on LVM, updated once and running the new layer, with a trial
/// boot of the old one pending: the facts `layers::status::gather` records there.
fn installed_node() -> layers::status::Facts {
    use layers::boot::{BootEntry, grub_cfg};
    use layers::status::{Backend, Facts, parse_grub_cfg};
    let old = "hvnode-1.0-0.20261125.0";
    let new = "hvnode-1.1-0.20261201.0";
    let layer_names = [format!("{old}+1"), format!("{new}+1")];
    let entries: Vec<BootEntry> = layer_names
        .iter()
        .map(|l| BootEntry {
            layer: l.parse().unwrap(),
            args: vec![format!("root=/dev/hvnode/{l}"), "ro".into()],
        })
        .collect();
    Facts {
        backend: Some(Backend::Lvm),
        vg: "hvnode".into(),
        inventory: Some(layers::Inventory {
            bases: vec![old.parse().unwrap(), new.parse().unwrap()],
            layers: layer_names.iter().map(|l| l.parse().unwrap()).collect(),
        }),
        current_layer: Some(layer_names[1].parse().unwrap()),
        boot_entries: parse_grub_cfg(&grub_cfg("1234-abcd", &entries, 5)),
        grubenv: vec![
            ("saved_entry".into(), layer_names[1].clone()),
            ("next_entry".into(), layer_names[0].clone()),
            (layers::boot::TRIAL_KEY.into(), layer_names[0].clone()),
        ],
        trials: vec![layers::history::TrialRecord {
            layer: "hvnode-1.2-0.20261203.0+1".into(),
            passed: false,
            reason: "hvnode-agent.service: failed".into(),
            at: "2026-12-04 10:00:00".into(),
        }],
        etc_conflicts: vec!["/etc/ssh/sshd_config.d/hvnode.conf".into()],
        ..Facts::default()
    }
}

/// The firmware of a node booted with Secure Boot, read from a scratch `/sys`
/// as the kernel shows it (efivarfs: 4 bytes of attributes, then the value).
fn secure_boot() -> hostinfo::Firmware {
    let root = tempfile::tempdir().unwrap();
    let efivars = root.path().join("sys/firmware/efi/efivars");
    fs::create_dir_all(&efivars).unwrap();
    let guid = hostinfo::firmware::EFI_GLOBAL_VARIABLE;
    fs::write(efivars.join(format!("SecureBoot-{guid}")), [6, 0, 0, 0, 1]).unwrap();
    fs::write(efivars.join(format!("SetupMode-{guid}")), [6, 0, 0, 0, 0]).unwrap();
    let security = root.path().join("sys/kernel/security");
    fs::create_dir_all(&security).unwrap();
    fs::write(
        security.join("lockdown"),
        "none [integrity] confidentiality\n",
    )
    .unwrap();
    hostinfo::firmware::read(root.path())
}

#[test]
fn node_info_and_check_match_their_schemas() {
    let schemas = Schemas::load();

    // This host, as the binary sees it (not an installed node: an empty store).
    let info = nodectl(&["info", "--json"], &[0]);
    schemas.check("nodectl-NodeInfo.json", &info);
    // `nodectl check` exits 1 when a check failed: the output is the same shape.
    let check = nodectl(&["check", "--json"], &[0, 1]);
    schemas.check("nodectl-NodeCheck.json", &check);
    assert!(
        !check["groups"].as_array().unwrap().is_empty(),
        "the host's checks are always there: {check}"
    );

    // An installed node, from recorded facts, booted with Secure Boot.
    let facts = installed_node();
    let recorded = envelope(
        "NodeInfo",
        nodectl::layout::NodeInfo {
            layers: layers::status::info(&facts, Some("hvnode-1.1-0.20261201.0".into())),
            firmware: secure_boot(),
        },
    );
    assert_eq!(
        recorded["bootloader"]["entries"].as_object().unwrap().len(),
        2
    );
    assert_eq!(recorded["failed_trials"].as_array().unwrap().len(), 1);
    assert!(recorded["bootloader"]["trial"].is_string(), "{recorded}");
    assert_eq!(recorded["firmware"]["secure_boot"], true, "{recorded}");
    schemas.check("nodectl-NodeInfo.json", &recorded);
    // The other firmware a node may boot on.
    for firmware in [
        hostinfo::Firmware {
            kind: hostinfo::firmware::Kind::Bios,
            secure_boot: None,
            setup_mode: None,
            lockdown: Some("none".into()),
        },
        hostinfo::Firmware {
            secure_boot: Some(false),
            setup_mode: Some(true),
            lockdown: None,
            ..secure_boot()
        },
    ] {
        schemas.check(
            "hostinfo-Firmware.json",
            &serde_json::to_value(&firmware).unwrap(),
        );
    }
    // Its health: the layered root's groups, then this host's.
    let host = health::HostFacts::gather(
        Err("libvirt is not asked in this test".into()),
        hostinfo::thin_pools().map_err(|e| e.last_line().to_string()),
    );
    let report = health::report(Some(&facts), &host);
    schemas.check("nodectl-NodeCheck.json", &envelope("NodeCheck", &report));
    schemas.check(
        "health-Report.json",
        &serde_json::to_value(&report).unwrap(),
    );
    // `nodectl rollback --json` on the same node, before it is confirmed.
    let plan = update::plan_rollback(&facts, None, false).unwrap();
    schemas.check(
        "nodectl-Rollback.json",
        &envelope("Rollback", json!({ "plan": plan, "applied": false })),
    );

    schemas.assert_covered(&[
        "nodectl-NodeInfo.json",
        "nodectl-NodeCheck.json",
        "health-Report.json",
        "hostinfo-Firmware.json",
    ]);

    // A wrong shape is refused: each of these is a change the schemas must see.
    let mut extra = check.clone();
    extra["uptime"] = json!(1);
    schemas.rejects("nodectl-NodeCheck.json", &extra);
    let mut word = check.clone();
    word["groups"][0]["checks"][0]["status"] = json!("degraded");
    let errors = schemas.rejects("nodectl-NodeCheck.json", &word);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/groups/0/checks/0/status")),
        "{errors:?}"
    );
    let mut missing = check.clone();
    missing["groups"][0]["checks"][0]
        .as_object_mut()
        .unwrap()
        .remove("detail");
    schemas.rejects("nodectl-NodeCheck.json", &missing);
    let mut version = recorded.clone();
    version["apiVersion"] = json!("hvnode.io/v2");
    schemas.rejects("nodectl-NodeInfo.json", &version);
    let mut entry = recorded.clone();
    let first = recorded["bootloader"]["entries"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    entry["bootloader"]["entries"][&first]["kernel"] = json!(null);
    schemas.rejects("nodectl-NodeInfo.json", &entry);
    let mut backend = recorded.clone();
    backend["backend"] = json!("zfs");
    schemas.rejects("nodectl-NodeInfo.json", &backend);
    let mut firmware = recorded.clone();
    firmware["firmware"]["kind"] = json!("coreboot");
    schemas.rejects("nodectl-NodeInfo.json", &firmware);
    let mut lockdown = recorded;
    lockdown["firmware"]["lockdown"] = json!("[integrity]");
    schemas.rejects("nodectl-NodeInfo.json", &lockdown);
}

/// `nodectl update --json` that cannot start (here: a failpoint that names no step,
/// refused before the node is looked at) writes one line, the error. The lines of
/// real updates (progress, plan, result, errors) are checked against the same schema
/// by `crates/update/tests/json_lines.rs`, which runs updates on a loop device.
#[test]
fn update_error_line_matches_its_schema() {
    let schemas = Schemas::load();
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(["update", "/nonexistent/hvnode-9-9.update.tar", "--json"])
        .env(update::FAILPOINT_ENV, "etc_merge")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert!(
        line["error"].as_str().unwrap().contains("etc-merge"),
        "{line}"
    );
    assert_eq!(
        (&line["node_unchanged"], &line["cancelled"]),
        (&json!(true), &json!(false))
    );
    schemas.check("nodectl-UpdateLine.json", line);
    let mut cancelled = line.clone();
    cancelled["cancelled"] = json!("no");
    schemas.rejects("nodectl-UpdateLine.json", &cancelled);
}

/// A scratch node for `nodectl register`.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let node = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        node.put("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
        node.put(
            "/etc/ssh/ssh_host_ed25519_key.pub",
            &format!("{HOST_KEY}\n"),
        );
        node.put("/sys/class/dmi/id/product_uuid", &format!("{DMI_UUID}\n"));
        node
    }

    fn put(&self, path: &str, text: &str) {
        let p = self.dir.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn sysroot(&self) -> Sysroot {
        Sysroot::new(self.dir.path())
    }

    fn register(&self, args: &[&str]) -> Value {
        let mut all = vec!["register"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--sysroot", path(self.dir.path())]);
        nodectl(&all, &[0])
    }

    fn status(&self) -> Value {
        self.register(&["--status", "--json"])
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

// Longer than the workspace's 120 lines on purpose: one engine and one node walked
// through registration in order (registered, managed, re-registered), each output
// checked where it is printed.
#[test]
fn registration_kinds_match_their_schemas() {
    let schemas = Schemas::load();
    let engine = TestEngine::start();
    let node = Node::new();

    let status = node.status();
    assert_eq!(status["status"]["state"], "unregistered", "{status}");
    schemas.check("nodectl-Registration.json", &status);

    let port = engine.port().to_string();
    let fingerprint = engine.ca_sha256_hex();
    let register = [
        "--engine-fqdn",
        "127.0.0.1",
        "--engine-port",
        port.as_str(),
        "--fingerprint",
        fingerprint.as_str(),
        "--node-name",
        "node1",
        "--node-address",
        "node1.example.com",
        "--timeout",
        "5",
        "--json",
    ];
    let result = node.register(&register);
    assert_eq!(result["state"]["state"], "registered", "{result}");
    schemas.check("nodectl-RegistrationResult.json", &result);
    schemas.check("nodectl-Registration.json", &node.status());
    // The state file the node keeps: `--status --json` without the engine's link.
    let file = fs::read_to_string(
        node.dir
            .path()
            .join(registration::STATE_PATH.trim_start_matches('/')),
    )
    .unwrap();
    schemas.check(
        "registration-StateFile.json",
        &serde_json::from_str(&file).unwrap(),
    );

    // The engine deployed the host: its certificate makes the node managed, and a
    // second registration answers with that state.
    node.put(
        registration::MANAGED_CERT_PATH,
        &engine.issue_host_certificate("node1.example.com"),
    );
    let managed = node.status();
    assert_eq!(managed["status"]["state"], "managed", "{managed}");
    assert_eq!(managed["vdsm"]["state"], "not-running", "{managed}");
    schemas.check("nodectl-Registration.json", &managed);
    // The engine's link keeps its status file: waiting for the certificates, then
    // serving the engine.
    let link = node
        .dir
        .path()
        .join(vdsm::status::STATUS_PATH.trim_start_matches('/'));
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    let waiting = vdsm::status::Status {
        waiting_for: Some("/etc/pki/vdsm/keys/vdsmkey.pem is missing".into()),
        pid: 812,
        started: 1_764_100_000,
        ..Default::default()
    };
    waiting.write(&link).unwrap();
    let status = node.status();
    assert_eq!(status["vdsm"]["state"], "not-serving", "{status}");
    schemas.check("nodectl-Registration.json", &status);
    let serving = vdsm::status::Status {
        serving: true,
        waiting_for: None,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(1_764_100_000),
        last_request: Some(1_764_100_003),
        last_method: Some("Host.getStats".into()),
        requests: 42,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        engine_cluster_level: Some("4.7".into()),
        ..waiting
    };
    serving.write(&link).unwrap();
    let managed = node.status();
    assert_eq!(managed["vdsm"]["state"], "connected", "{managed}");
    schemas.check("nodectl-Registration.json", &managed);
    let mut again = register.to_vec();
    again.push("--yes");
    let result = node.register(&again);
    assert_eq!(result["state"]["state"], "managed", "{result}");
    schemas.check("nodectl-RegistrationResult.json", &result);

    // The states a registration passes through on its way, as the state file keeps
    // them: each printed by `--status`.
    let engine_addr = EngineAddr::new("engine.example.com", 443).unwrap();
    let ca = CaFingerprints::of_der(b"the engine's CA");
    let previous = CaFingerprints::of_der(b"the CA confirmed before");
    let states = [
        RegistrationState::TrustFetched {
            engine: engine_addr.clone(),
            ca: ca.clone(),
            fetched_at: 1_764_100_000,
        },
        RegistrationState::AwaitingConfirmation {
            engine: engine_addr.clone(),
            ca: ca.clone(),
            previous_ca: Some(previous),
            since: 1_764_100_000,
        },
        RegistrationState::AwaitingConfirmation {
            engine: engine_addr.clone(),
            ca: ca.clone(),
            previous_ca: None,
            since: 1_764_100_000,
        },
        RegistrationState::Failed {
            engine: engine_addr.clone(),
            ca: Some(ca.clone()),
            attempts: 3,
            error_kind: ErrorKind::Unreachable,
            last_error: "the engine cannot be reached: connection refused".into(),
            failed_at: 1_764_100_000,
            next_retry_at: 1_764_100_040,
        },
        RegistrationState::Failed {
            engine: engine_addr.clone(),
            ca: None,
            attempts: 1,
            error_kind: ErrorKind::EngineRejected,
            last_error: "the engine refused the registration".into(),
            failed_at: 1_764_100_000,
            next_retry_at: 1_764_100_004,
        },
        RegistrationState::Registered(Registration {
            engine: engine_addr,
            ca,
            unique_id: DMI_UUID.to_lowercase(),
            name: None,
            address: None,
            ssh_user: "root".into(),
            ssh_port: 22,
            ssh_key_fingerprint: None,
            vds_port: 54321,
            registered_at: 1_764_100_000,
        }),
    ];
    for state in &states {
        let scratch = Node::new();
        registration::save_state(&scratch.sysroot(), state).unwrap();
        let status = scratch.status();
        assert_eq!(status["status"]["state"], state.name(), "{status}");
        schemas.check("nodectl-Registration.json", &status);
    }

    schemas.assert_covered(&[
        "nodectl-Registration.json",
        "nodectl-RegistrationResult.json",
        "registration-State.json",
        "registration-StateFile.json",
        "vdsm-Report.json",
    ]);

    // Wrong shapes are refused.
    let mut unknown = status.clone();
    unknown["status"]["state"] = json!("approved");
    schemas.rejects("nodectl-Registration.json", &unknown);
    let mut extra = managed.clone();
    extra["status"]["token"] = json!("secret");
    schemas.rejects("nodectl-Registration.json", &extra);
    let mut link = managed.clone();
    link["vdsm"]["state"] = json!("managed");
    schemas.rejects("nodectl-Registration.json", &link);
    let mut link = managed.clone();
    link["vdsm"]["service"]["connections"] = json!(-1);
    schemas.rejects("nodectl-Registration.json", &link);
    let mut no_link = managed.clone();
    no_link.as_object_mut().unwrap().remove("vdsm");
    schemas.rejects("nodectl-Registration.json", &no_link);
    let mut kind = result.clone();
    kind["kind"] = json!("Registration");
    schemas.rejects("nodectl-RegistrationResult.json", &kind);
    let mut fingerprint = result.clone();
    fingerprint["state"]["ca"]["sha256"] = json!("AB:CD");
    schemas.rejects("nodectl-RegistrationResult.json", &fingerprint);
    let mut unregistered = result;
    unregistered["state"] = json!({ "state": "unregistered" });
    schemas.rejects("nodectl-RegistrationResult.json", &unregistered);
}

/// The console's first step (`--fetch-ca`) and the failures every form of `register
/// --json` prints, against the loopback engine: a CA not trusted yet, one that differs
/// from the CA confirmed before, a wrong fingerprint, an engine that does not answer,
/// and a failure of nodectl's own.
#[test]
fn fetched_cas_and_registration_errors_match_their_schemas() {
    let schemas = Schemas::load();
    let engine = TestEngine::start();
    let node = Node::new();
    let port = engine.port().to_string();
    let fetch = |node: &Node, extra: &[&str], code: i32| {
        let mut args = vec!["register", "--fetch-ca", "--engine-fqdn", "127.0.0.1"];
        args.extend_from_slice(&["--engine-port", &port, "--timeout", "5", "--json"]);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--sysroot", path(node.dir.path())]);
        nodectl(&args, &[code])
    };

    let fetched = fetch(&node, &[], 0);
    assert_eq!(fetched["kind"], "EngineCa", "{fetched}");
    assert_eq!(fetched["ca"]["sha256"], engine.ca_sha256_hex().as_str());
    assert_eq!(fetched["previous"], Value::Null);
    schemas.check("nodectl-EngineCa.json", &fetched);
    assert_eq!(node.status()["status"]["state"], "awaiting-confirmation");

    // Registered with this engine under another CA: the fetch names the one before.
    let registered = Node::new();
    let before = CaFingerprints::of_der(b"the CA confirmed before");
    registration::save_state(
        &registered.sysroot(),
        &RegistrationState::Registered(Registration {
            engine: EngineAddr::new("127.0.0.1", engine.port()).unwrap(),
            ca: before.clone(),
            unique_id: DMI_UUID.to_lowercase(),
            name: None,
            address: None,
            ssh_user: "root".into(),
            ssh_port: 22,
            ssh_key_fingerprint: None,
            vds_port: 54321,
            registered_at: 1_764_100_000,
        }),
    )
    .unwrap();
    let changed = fetch(&registered, &[], 0);
    assert_eq!(changed["previous"]["sha256"], before.sha256.as_str());
    schemas.check("nodectl-EngineCa.json", &changed);
    assert_eq!(registered.status()["status"]["state"], "registered");

    let wrong = format!("SHA256:{}", "00".repeat(32));
    let mismatch = fetch(&node, &["--fingerprint", &wrong], 1);
    assert_eq!(mismatch["errorKind"], "fingerprint-mismatch", "{mismatch}");
    schemas.check("nodectl-RegistrationError.json", &mismatch);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let unreachable = nodectl(
        &[
            "register",
            "--engine-fqdn",
            "127.0.0.1",
            "--engine-port",
            &closed_port,
            "--fingerprint",
            &wrong,
            "--timeout",
            "5",
            "--json",
            "--sysroot",
            path(node.dir.path()),
        ],
        &[1],
    );
    assert_eq!(unreachable["errorKind"], "unreachable", "{unreachable}");
    schemas.check("nodectl-RegistrationError.json", &unreachable);

    // Not a registration's error: nodectl's own, as a local one.
    let own = fetch(&node, &["--fingerprint", "SHA256:zz"], 1);
    assert_eq!(own["kind"], "RegistrationError", "{own}");
    schemas.check("nodectl-RegistrationError.json", &own);

    schemas.assert_covered(&["nodectl-EngineCa.json", "nodectl-RegistrationError.json"]);
    let mut extra = fetched;
    extra["pem"] = json!("-----BEGIN CERTIFICATE-----");
    schemas.rejects("nodectl-EngineCa.json", &extra);
    let mut kind = mismatch;
    kind["errorKind"] = json!("oops");
    schemas.rejects("nodectl-RegistrationError.json", &kind);
}

/// Every schema in `docs/schemas/` is a draft 2020-12 schema that follows the house
/// rules (checked by `Schemas::load`), and the README describes each one.
#[test]
fn every_schema_is_valid_and_documented() {
    let schemas = Schemas::load();
    let readme = fs::read_to_string(schema_check::dir().join("README.md")).unwrap();
    let undocumented: Vec<&str> = schemas
        .names()
        .into_iter()
        .filter(|n| !readme.contains(&format!("`{n}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/schemas/README.md does not describe {undocumented:?}"
    );
    for name in NODECTL_SCHEMAS {
        assert!(schemas.names().contains(name), "no docs/schemas/{name}");
    }
}

/// Each kind nodectl prints (`print_json("Kind", …)` in its source) has its schema,
/// `nodectl-Kind.json`.
#[test]
fn every_kind_nodectl_prints_has_a_schema() {
    let schemas = Schemas::load();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut kinds = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // On one line or spread over several.
        let compact: String = fs::read_to_string(&path)
            .unwrap()
            .split_whitespace()
            .collect();
        for rest in compact.split("print_json(\"").skip(1) {
            kinds.extend(rest.split_once('"').map(|(kind, _)| kind.to_string()));
        }
    }
    kinds.sort();
    kinds.dedup();
    assert!(
        kinds.len() >= 4,
        "the kinds were not found in src/: {kinds:?}"
    );
    let missing: Vec<String> = kinds
        .iter()
        .map(|k| format!("nodectl-{k}.json"))
        .filter(|n| !schemas.names().contains(&n.as_str()))
        .collect();
    assert!(missing.is_empty(), "no docs/schemas/{missing:?}");
}
