//! The console's JSON API against the schemas of `docs/schemas/`: every GET endpoint
//! of `/api/v1` is called on a console on loopback (libvirt's test driver, a scratch
//! sysroot, this host's facts, and recorded facts of an installed node in the layer
//! cache), and its answer validated; parts this host cannot produce (a thin pool, a
//! systemd unit list, a streamed log row) are shaped by the console's own code from
//! recorded output. Every property the schemas declare must have been seen, and
//! wrong shapes are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../nodectl/tests/schema_check/mod.rs"]
mod schema_check;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{Server, Session, get, post_form};
use console::facts::Snapshot;
use layers::lvm::{Lv, TAG_BASE, TAG_LAYER, TAG_POOL, inventory_of};
use layers::status::{Backend, Facts};
use registration::{CaFingerprints, EngineAddr, ErrorKind, RegistrationState};
use schema_check::Schemas;
use serde_json::{Value, json};

const OLD: &str = "hvnode-1.0-0.20261125.0";
const NEW: &str = "hvnode-1.1-0.20261201.0";

/// GET `path`, which must answer 200.
#[track_caller]
fn ok(server: &Server, s: &Session, path: &str) -> Value {
    let r = get(&server.url(path), Some(s), &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

/// The console's envelope, for what the test shapes itself with the console's code.
fn envelope(kind: &str, data: impl serde::Serialize) -> Value {
    json!({
        "apiVersion": console::api::API_VERSION,
        "kind": kind,
        "data": serde_json::to_value(data).unwrap(),
    })
}

fn lv(name: &str, tag: &str, size: &str, data: &str, meta: &str) -> Lv {
    Lv {
        lv_name: name.into(),
        vg_name: "hvnode".into(),
        lv_tags: tag.into(),
        origin: String::new(),
        lv_attr: String::new(),
        lv_size: size.into(),
        data_percent: data.into(),
        metadata_percent: meta.into(),
    }
}

/// An installed LVM node updated once, running the new layer, its thin pool over
/// the limit: the facts `layers::status::gather` records there.
fn lvm_node() -> Facts {
    use layers::boot::{BootEntry, grub_cfg};
    let layer_names = [format!("{OLD}+1"), format!("{NEW}+1")];
    let lvs = vec![
        lv("pool00", TAG_POOL, "21474836480", "85.5", "7.5"),
        lv(OLD, TAG_BASE, "", "", ""),
        lv(&layer_names[0], TAG_LAYER, "", "", ""),
        lv(NEW, TAG_BASE, "", "", ""),
        lv(&layer_names[1], TAG_LAYER, "", "", ""),
    ];
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
        inventory: Some(inventory_of(&lvs)),
        lvs,
        current_layer: Some(layer_names[1].parse().unwrap()),
        boot_entries: layers::status::parse_grub_cfg(&grub_cfg("1234-abcd", &entries, 5)),
        grubenv: vec![
            ("saved_entry".into(), layer_names[1].clone()),
            ("next_entry".into(), layer_names[0].clone()),
        ],
        // An earlier update that failed its trial, and this one's conflicts.
        trials: vec![layers::history::TrialRecord {
            layer: "hvnode-1.0-0.20261120.0+1".into(),
            passed: false,
            reason: "the web console does not answer on port 9090".into(),
            at: "2026-12-04 10:00:00".into(),
        }],
        etc_conflicts: vec!["/etc/ssh/sshd_config.d/hvnode.conf".into()],
        ..Facts::default()
    }
}

/// The same node on btrfs: no pool, the file system's use instead.
fn btrfs_node() -> Facts {
    Facts {
        backend: Some(Backend::Btrfs),
        vg: String::new(),
        lvs: Vec::new(),
        store_used_percent: Some(42.0),
        ..lvm_node()
    }
}

/// Puts `snapshot` into the console's layer cache, as if it had just gathered it.
fn prime(server: &Server, snapshot: Snapshot) {
    server.state.layers.invalidate();
    server.state.layers.get_with(|| snapshot);
}

fn installed(facts: Facts) -> Snapshot {
    Snapshot {
        facts: Ok(facts),
        image: Some(NEW.into()),
    }
}

/// The `data:` of the first event named `event` on a server-sent event stream.
fn first_event(server: &Server, s: &Session, path: &str, event: &str) -> Value {
    let mut resp = common::client()
        .get(&server.url(path))
        .header("Cookie", &s.cookie)
        .header("Origin", &server.origin())
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut lines = BufReader::new(resp.body_mut().as_reader()).lines();
    let mut named = false;
    for _ in 0..50 {
        let line = lines.next().unwrap().unwrap();
        named |= line == format!("event: {event}");
        if let Some(data) = line.strip_prefix("data: ").filter(|_| named) {
            return serde_json::from_str(data).unwrap();
        }
    }
    panic!("no {event} event on {path}");
}

// Longer than the workspace's 120 lines on purpose: one server, started once, walked
// through every route and state in order, each answer checked where it is made.
#[test]
fn every_api_answer_matches_its_schema() {
    let schemas = Schemas::load();
    let server = Server::start(|_| {});
    // Every session starts limited; the walk below changes things, as an
    // administrator, and ends by turning the access off again.
    let limited = ok(&server, &server.session("root"), "/api/v1/session");
    assert_eq!(limited["data"]["admin"], false, "{limited}");
    schemas.check("api-v1-session.json", &limited);
    let s = server.admin_session("root");
    let session = ok(&server, &s, "/api/v1/session");
    assert_eq!(session["data"]["admin"], true, "{session}");
    schemas.check("api-v1-session.json", &session);

    // This host as it is: a live system (a build host does not run from a layer).
    schemas.check("api-v1-overview.json", &ok(&server, &s, "/api/v1/overview"));
    schemas.check("api-v1-node.json", &ok(&server, &s, "/api/v1/node"));
    // An installed node on LVM whose pool is too full, then on btrfs, then a store
    // that could not be read: the layers part of the Node page, and the health
    // report with the layered root's groups on the overview.
    prime(&server, installed(lvm_node()));
    let node = ok(&server, &s, "/api/v1/node");
    let layers = &node["data"]["layers"];
    assert_eq!(layers["installed"], true, "{layers}");
    assert_eq!(layers["store"]["backend"], "lvm", "{layers}");
    assert!(!layers["store"]["warnings"].as_array().unwrap().is_empty());
    assert!(layers["health"]["groups"].is_array(), "{layers}");
    schemas.check("api-v1-node.json", &node);
    schemas.check("api-v1-overview.json", &ok(&server, &s, "/api/v1/overview"));
    prime(&server, installed(btrfs_node()));
    let node = ok(&server, &s, "/api/v1/node");
    assert_eq!(node["data"]["layers"]["store"]["backend"], "btrfs");
    schemas.check("api-v1-node.json", &node);
    prime(
        &server,
        Snapshot {
            facts: Err("lvs: no volume groups found".into()),
            image: None,
        },
    );
    let node = ok(&server, &s, "/api/v1/node");
    assert!(node["data"]["layers"]["error"].is_string(), "{node}");
    schemas.check("api-v1-node.json", &node);

    // The sampler's history, its stream, and each interface's rate.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = ok(&server, &s, "/api/v1/metrics");
        let rates = ok(&server, &s, "/api/v1/network");
        if !m["data"].as_array().unwrap().is_empty()
            && !rates["data"]["rates"].as_object().unwrap().is_empty()
        {
            break m;
        }
        assert!(Instant::now() < deadline, "the sampler took no sample: {m}");
        std::thread::sleep(Duration::from_millis(200));
    };
    schemas.check("api-v1-metrics.json", &metrics);
    schemas.check("api-v1-network.json", &ok(&server, &s, "/api/v1/network"));
    let point = first_event(&server, &s, "/api/v1/metrics/stream", "point");
    schemas.check("api-v1-metrics-stream.json", &point);

    // libvirt's test driver; the second look at a running VM has its CPU use.
    schemas.check("api-v1-vms.json", &ok(&server, &s, "/api/v1/vms"));
    schemas.check("api-v1-vms.json", &ok(&server, &s, "/api/v1/vms"));
    schemas.check("api-v1-vms-name.json", &ok(&server, &s, "/api/v1/vms/test"));
    // A denial in the kernel's log, as the kernel writes one (journald reads
    // /dev/kmsg): the API finds it, folded and explained.
    let avc = "audit: type=1400 audit(1767225600.512:231): avc:  denied  { read } for  \
               pid=812 comm=\"hvnode-schema-test\" path=\"/srv/vm/a.img\" dev=\"vda3\" \
               ino=131 scontext=system_u:system_r:svirt_t:s0:c1,c2 \
               tcontext=system_u:object_r:var_t:s0 tclass=file permissive=0";
    // A line without its newline would wait in the kernel for its continuation.
    std::fs::write("/dev/kmsg", format!("{avc}\n"))
        .expect("writing to /dev/kmsg (tests run as root)");
    let deadline = Instant::now() + Duration::from_secs(10);
    let denials = loop {
        let d = ok(&server, &s, "/api/v1/selinux/denials");
        let found = d["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["process"] == "hvnode-schema-test");
        if found {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the journal never showed the denial: {d}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    schemas.check("api-v1-selinux-denials.json", &denials);
    let pools = ok(&server, &s, "/api/v1/pools");
    schemas.check("api-v1-pools.json", &pools);
    assert_eq!(pools["data"]["pools"][0]["name"], "images", "{pools}");
    assert_eq!(pools["data"]["networks"][0]["bridge"], "virbr0", "{pools}");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let r = post_form(
        &server.url("/api/v1/vms/idle/shutdown"),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    schemas.check("api-v1-vms-name.json", &r.json());

    schemas.check("api-v1-storage.json", &ok(&server, &s, "/api/v1/storage"));
    // A thin pool and a failing part, as the console shapes them.
    let storage = console::views::Storage {
        thin_pools: Ok(vec![hostinfo::ThinPool {
            vg: "hvnode".into(),
            name: "pool00".into(),
            size: 21_474_836_480,
            data_percent: 42.25,
            metadata_percent: 7.5,
        }]),
        filesystems: Err("df --output=source,target,fstype,size,used,avail failed".into()),
        block_devices: Ok(Vec::new()),
    };
    schemas.check("api-v1-storage.json", &envelope("Storage", &storage));

    // Without systemd (a container) the unit list is a 502 that names systemctl.
    let r = get(&server.url("/api/v1/services"), Some(&s), &[]);
    match r.status {
        200 => schemas.check("api-v1-services.json", &r.json()),
        _ => schemas.check("api-v1-error.json", &r.json()),
    }
    let units = console::services::parse_units(
        r#"[{"unit":"libvirtd.service","load":"loaded","active":"active","sub":"running","description":"libvirt legacy monolithic daemon"}]"#,
        r#"[{"unit_file":"libvirtd.service","state":"enabled","preset":"enabled"}]"#,
    )
    .unwrap();
    schemas.check(
        "api-v1-services.json",
        &envelope("UnitList", json!({ "items": units })),
    );

    // The journal, and a row of its stream from a recorded entry.
    let r = get(&server.url("/api/v1/logs?lines=20"), Some(&s), &[]);
    match r.status {
        200 => schemas.check("api-v1-logs.json", &r.json()),
        _ => schemas.check("api-v1-error.json", &r.json()),
    }
    let entry = console::journal::parse_entry(
        r#"{"__REALTIME_TIMESTAMP":"1764100000000000","PRIORITY":"3","SYSLOG_IDENTIFIER":"libvirtd","_SYSTEMD_UNIT":"libvirtd.service","MESSAGE":"internal error: no such domain"}"#,
    )
    .unwrap();
    schemas.check(
        "api-v1-logs.json",
        &envelope("LogEntryList", json!({ "items": [&entry] })),
    );
    schemas.check(
        "api-v1-logs-stream.json",
        &serde_json::to_value(console::views::LogRow::from(&entry)).unwrap(),
    );

    // The registration: none yet, then each state the state file can hold.
    schemas.check(
        "api-v1-registration.json",
        &ok(&server, &s, "/api/v1/registration"),
    );
    let sysroot = registration::Sysroot::new(&server.state.config.sysroot);
    let engine = EngineAddr::new("engine.example.com", 443).unwrap();
    let ca = CaFingerprints::of_der(b"the engine's CA");
    for state in [
        RegistrationState::AwaitingConfirmation {
            engine: engine.clone(),
            ca: ca.clone(),
            previous_ca: None,
            since: 1_764_100_000,
        },
        RegistrationState::Failed {
            engine,
            ca: Some(ca),
            attempts: 2,
            error_kind: ErrorKind::Unreachable,
            last_error: "the engine cannot be reached: connection refused".into(),
            failed_at: 1_764_100_000,
            next_retry_at: 1_764_100_004,
        },
    ] {
        registration::save_state(&sysroot, &state).unwrap();
        let r = ok(&server, &s, "/api/v1/registration");
        assert_eq!(r["data"]["status"]["state"], state.name(), "{r}");
        schemas.check("api-v1-registration.json", &r);
    }
    // The engine's link: not running (no status file), then serving the engine.
    let r = ok(&server, &s, "/api/v1/registration");
    assert_eq!(r["data"]["vdsm"]["state"], "not-running", "{r}");
    let link = sysroot.path(vdsm::status::STATUS_PATH);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    vdsm::status::Status {
        serving: true,
        connections: 1,
        peers: vec!["192.0.2.5:40212".into()],
        last_connected: Some(1_764_100_000),
        last_request: Some(1_764_100_003),
        last_method: Some("Host.getStats".into()),
        requests: 42,
        cluster_levels: vec!["4.6".into(), "4.7".into()],
        engine_cluster_level: None,
        pid: 812,
        started: 1_764_099_000,
        ..Default::default()
    }
    .write(&link)
    .unwrap();
    let r = ok(&server, &s, "/api/v1/registration");
    assert_eq!(r["data"]["vdsm"]["state"], "connected", "{r}");
    assert_eq!(r["data"]["vdsm"]["service"]["pid"], 812, "{r}");
    schemas.check("api-v1-registration.json", &r);
    std::fs::remove_file(&link).unwrap();

    // The update job: none yet; then one as nodectl update --json reported it
    // on a node (its lines recorded there, shortened).
    let r = ok(&server, &s, "/api/v1/node/update");
    assert!(r["data"].is_null(), "{r}");
    schemas.check("api-v1-node-update.json", &r);
    let mut run = console::node_update::Run::default();
    for l in [
        r#"{"step":"verify","state":"start","message":"checking and extracting the bundle"}"#,
        r#"{"step":"verify","state":"done","message":"signed by key 1A2B3C4D5E6F7081"}"#,
        r#"{"message":"store: lvm","details":{"plan":{"trial":"hvnode-1.0-0.20261125.0.2+1"}}}"#,
        r#"{"step":"labels","state":"done","message":"labelling the new /etc by the new SELinux policy"}"#,
        r#"{"result":{"plan":{"trial":"hvnode-1.0-0.20261125.0.2+1"},"merge":{"conflicts":[{"path":"ssh/sshd_config.d/hvnode.conf"}]}}}"#,
    ] {
        run.push(l);
    }
    server.state.updates.set(console::node_update::Job {
        source: "http://10.0.2.2:8000/updates/hvnode-1.0-0.20261125.0.2.update.tar".into(),
        running: false,
        conflicts: run.conflicts(),
        trial: run.trial(),
        run,
    });
    let r = ok(&server, &s, "/api/v1/node/update");
    assert_eq!(r["data"]["trial"], "hvnode-1.0-0.20261125.0.2+1", "{r}");
    schemas.check("api-v1-node-update.json", &r);
    let mut failed = console::node_update::Run::default();
    failed.push(r#"{"error":"the bundle is signed by a key this node does not trust","node_unchanged":true,"cancelled":false}"#);
    server.state.updates.set(console::node_update::Job {
        source: "/var/tmp/b.update.tar".into(),
        running: false,
        run: failed,
        ..Default::default()
    });
    schemas.check(
        "api-v1-node-update.json",
        &ok(&server, &s, "/api/v1/node/update"),
    );

    // Failures: not logged in, nothing there, a bad query.
    let r = get(&server.url("/api/v1/overview"), None, &[]);
    assert_eq!(r.status, 401);
    schemas.check("api-v1-error.json", &r.json());
    let r = get(&server.url("/api/v1/nothing-here"), Some(&s), &[]);
    assert_eq!(r.status, 404);
    schemas.check("api-v1-error.json", &r.json());
    let r = get(&server.url("/api/v1/logs?priority=9"), Some(&s), &[]);
    assert_eq!(r.status, 400);
    schemas.check("api-v1-error.json", &r.json());
    // Turning administrative access off answers the session, as it now is.
    let r = common::request(
        &server,
        "DELETE",
        "/api/v1/session/admin",
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["admin"], false, "{}", r.body);
    schemas.check("api-v1-session.json", &r.json());
    drop(server);

    // libvirt unreachable: the VM list fails, the Node page says why in its place.
    let server =
        Server::start(|c| c.libvirt_uri = "qemu+unix:///system?socket=/nonexistent".into());
    let s = server.session("root");
    let r = get(&server.url("/api/v1/vms"), Some(&s), &[]);
    assert_eq!(r.status, 503, "{}", r.body);
    schemas.check("api-v1-error.json", &r.json());
    let node = ok(&server, &s, "/api/v1/node");
    assert!(
        node["data"]["security_models"]["error"].is_string(),
        "{node}"
    );
    schemas.check("api-v1-node.json", &node);

    let mut api: Vec<&str> = schemas
        .names()
        .into_iter()
        .filter(|n| n.starts_with("api-v1-"))
        .collect();
    api.push("vdsm-Report.json");
    schemas.assert_covered(&api);
}

/// Each route of `/api/v1` that answers JSON with GET has its schema, named after
/// the route (`/api/v1/vms/{name}` → `api-v1-vms-name.json`).
#[test]
fn every_get_route_has_a_schema() {
    let schemas = Schemas::load();
    let app =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/router.rs")).unwrap();
    // `.route("/api/v1/…", get(…))`, on one line or spread over several.
    let compact: String = app.split_whitespace().collect();
    let mut missing = Vec::new();
    let mut routes = 0;
    for rest in compact.split(".route(\"/api/v1/").skip(1) {
        let Some((route, handler)) = rest.split_once("\",") else {
            continue;
        };
        if !handler.starts_with("get(") {
            continue;
        }
        routes += 1;
        let name = format!(
            "api-v1-{}.json",
            route.replace('/', "-").replace(['{', '}'], "")
        );
        if !schemas.names().contains(&name.as_str()) {
            missing.push(format!("/api/v1/{route} → docs/schemas/{name}"));
        }
    }
    assert!(routes >= 10, "the routes were not found in src/router.rs");
    assert!(missing.is_empty(), "no schema for {missing:?}");
}

/// The validator refuses what the schemas do not describe.
#[test]
fn wrong_shapes_are_refused() {
    let schemas = Schemas::load();
    let server = Server::start(|_| {});
    let s = server.session("root");
    prime(&server, installed(lvm_node()));
    let node = ok(&server, &s, "/api/v1/node");
    schemas.check("api-v1-node.json", &node);

    let mut extra = node.clone();
    extra["data"]["layers"]["layers"][0]["pinned"] = json!(true);
    let errors = schemas.rejects("api-v1-node.json", &extra);
    assert!(
        errors.iter().any(|e| e.contains("/data/layers/layers/0")),
        "{errors:?}"
    );
    let mut missing = node.clone();
    missing["data"]["layers"]
        .as_object_mut()
        .unwrap()
        .remove("next_entry");
    schemas.rejects("api-v1-node.json", &missing);
    let mut status = node.clone();
    status["data"]["layers"]["health"]["status"] = json!("degraded");
    schemas.rejects("api-v1-node.json", &status);
    let mut backend = node.clone();
    backend["data"]["layers"]["store"]["backend"] = json!("zfs");
    schemas.rejects("api-v1-node.json", &backend);
    let mut firmware = node.clone();
    firmware["data"]["firmware"]["secure_boot"] = json!("on");
    schemas.rejects("api-v1-node.json", &firmware);
    let mut version = node;
    version["apiVersion"] = json!("hvnode.console/v2");
    schemas.rejects("api-v1-node.json", &version);

    let vms = ok(&server, &s, "/api/v1/vms");
    let mut state = vms.clone();
    state["data"]["items"][0]["state"] = json!("hibernating");
    schemas.rejects("api-v1-vms.json", &state);
    let mut memory = vms;
    memory["data"]["items"][0]["memory_kib"] = json!("2 GiB");
    schemas.rejects("api-v1-vms.json", &memory);
    schemas.rejects("api-v1-error.json", &json!({ "error": "x", "status": 200 }));
    schemas.rejects(
        "api-v1-storage.json",
        &json!({ "apiVersion": "hvnode.console/v1", "kind": "Storage",
                 "data": { "thin_pools": { "error": "lvs failed", "status": 502 },
                           "filesystems": [], "block_devices": [] } }),
    );
}
