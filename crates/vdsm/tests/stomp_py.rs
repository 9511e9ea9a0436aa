//! The engine's calls made by a second, independent client: stomp.py (PyPI
//! `stomp-py`, in the venv `tests/deps.sh` makes), driven by `stomp_client.py`
//! beside this file. Our own STOMP parser reads the frames in `engine_link.rs`; here
//! another implementation reads them, so a framing fault both our ends share (a
//! content-length, a heart-beat, a header) shows.
//!
//! The service runs in-process over TLS with certificates of a CA made for the test,
//! with libvirt's test driver. The script connects as the engine does and calls the
//! verbs that bring a host Up one at a time and as one batch while an event goes out
//! every 300 ms; then, with no events, it keeps a second connection idle with short
//! heart-beats both ways. It prints what it received, which is checked here: every
//! id answered without an error, the answers in the engine's JSON types, the events,
//! the receipt, the heart-beats, no framing problem.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_engine::pki::Ca;

/// The script's exit status when stomp.py cannot be imported.
const NO_STOMP: i32 = 77;
/// The heart-beat interval of the script's second connection, both ways (the
/// service grants 1 s at least).
const BEAT_MS: u64 = 2000;
/// The verbs the script calls, in its order.
const VERBS: [&str; 5] = [
    "Host.ping2",
    "Host.getCapabilities",
    "Host.getHardwareInfo",
    "Host.getStats",
    "Host.getAllVmStats",
];

/// libvirt's test driver node the VM verbs read: one running domain.
const NODE_XML: &str = "<node>
  <domain type='test'>
    <name>alpha</name>
    <uuid>6f5c1e2a-0001-4002-8003-000000000042</uuid>
    <memory unit='KiB'>524288</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
</node>";
const ALPHA: &str = "6f5c1e2a-0001-4002-8003-000000000042";

/// The venv `tests/deps.sh` makes: `HVNODE_VENV`, else under `HVNODE_CACHE`, else
/// under `~/.cache/hvnode`.
fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("HVNODE_VENV") {
        return v.into();
    }
    let cache = std::env::var_os("HVNODE_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/hvnode"),
        PathBuf::from,
    );
    cache.join("venv")
}

/// The service on a loopback port, its PKI and the client's files under a folder of
/// its own, and an event every 300 ms until [`Service::stop_events`].
struct Service {
    port: u16,
    dir: tempfile::TempDir,
    sending: Arc<AtomicBool>,
    sender: Option<std::thread::JoinHandle<()>>,
    _runtime: tokio::runtime::Runtime,
}

impl Service {
    fn file(&self, path: &str) -> String {
        self.dir.path().join(path).display().to_string()
    }

    /// No more events, once the last one went out.
    fn stop_events(&mut self) {
        self.sending.store(false, Ordering::Relaxed);
        if let Some(sender) = self.sender.take() {
            sender.join().unwrap();
        }
    }
}

fn start() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::named("engine CA");
    let (cert, key) = ca.issue("localhost");
    let (client_cert, client_key) = ca.issue("engine.example.com");
    for (path, text) in [
        (vdsm::pki::KEY, key),
        (vdsm::pki::CERT, cert),
        (vdsm::pki::CA, ca.pem()),
        ("client/cert.pem", client_cert),
        ("client/key.pem", client_key),
    ] {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let config = vdsm::pki::server_config(dir.path()).unwrap();
    let tls: vdsm::Tls = Arc::new(RwLock::new(Some(config.into())));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let node = dir.path().join("node.xml");
    std::fs::write(&node, NODE_XML).unwrap();
    let verbs = Arc::new(vdsm::host::HostVerbs::new(
        "/",
        &format!("test://{}", node.display()),
    ));
    let (events, _) = tokio::sync::broadcast::channel(16);
    let mut options = vdsm::ServeOptions::default();
    options.connection.events = Some(events.clone());
    runtime.spawn(vdsm::serve(listener, tls, verbs, options));
    let sending = Arc::new(AtomicBool::new(true));
    let flag = sending.clone();
    let sender = std::thread::spawn(move || {
        let mut time = 0;
        while flag.load(Ordering::Relaxed) {
            time += 1;
            let event =
                vdsm::events::Event::vm_status(ALPHA, json!({"vmId": ALPHA, "status": "Up"}), time);
            // No connection subscribed yet: nobody to send it to.
            let _ = events.send(event);
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    Service {
        port,
        dir,
        sending,
        sender: Some(sender),
        _runtime: runtime,
    }
}

/// What the script printed and its exit status, within `limit`.
fn run_script(python: &Path, args: &[String], limit: Duration) -> (Option<i32>, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stomp_client.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {} {}: {e}", python.display(), script.display()));
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            from.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "stomp_client.py still ran after {limit:?}; its stderr: {}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// The script's `part` (its `--parts`) against the service `connection` names: what
/// it printed of that part, or `None` when stomp.py is not installed.
fn run_part(python: &Path, connection: &[String], part: &str) -> Option<Value> {
    let mut args = connection.to_vec();
    for (flag, value) in [
        ("--beat-ms", BEAT_MS.to_string()),
        ("--event-wait", "3".to_string()),
        ("--parts", part.to_string()),
    ] {
        args.push(flag.to_string());
        args.push(value);
    }
    let (code, stdout, stderr) = run_script(python, &args, Duration::from_secs(60));
    if code == Some(NO_STOMP) {
        return None;
    }
    assert_eq!(
        code,
        Some(0),
        "stomp_client.py --parts {part} failed; stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    let summary: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stomp_client.py printed no JSON ({e}): {stdout}"));
    assert!(
        summary["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("stomp.py ")),
        "{summary}"
    );
    Some(summary[part].clone())
}

/// An answer to `request`: its id, JSON-RPC 2.0, a result and no error.
fn result_of<'a>(request: &Value, answer: &'a Value) -> &'a Value {
    let method = &request["method"];
    assert_eq!(answer["id"], request["id"], "{method}: {answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{method}: {answer}");
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer
        .get("result")
        .unwrap_or_else(|| panic!("{method} has no result: {answer}"))
}

/// The JSON type of each field named, as the engine reads it.
fn check_types(what: &str, value: &Value, fields: &[(&str, &str)]) {
    for (field, kind) in fields {
        let v = value
            .get(field)
            .unwrap_or_else(|| panic!("{what} has no {field}"));
        let ok = match *kind {
            "string" => v.is_string(),
            "number" => v.is_number(),
            "bool" => v.is_boolean(),
            "map" => v.is_object(),
            "array" => v.is_array(),
            "strings" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "percent" => v
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .is_some_and(|p| (0.0..=100.0).contains(&p)),
            "number string" => v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
            other => panic!("no check for {other}"),
        };
        assert!(ok, "{what}: {field} is not a {kind}: {v}");
    }
}

/// The result of each verb, checked for the engine's fields and types.
fn check_result(method: &str, result: &Value) {
    match method {
        "Host.ping2" => assert_eq!(result, &json!(true)),
        "Host.getCapabilities" => {
            check_types(
                method,
                result,
                &[
                    ("HBAInventory", "map"),
                    ("clusterLevels", "strings"),
                    ("supportedENGINEs", "strings"),
                    ("cpuFlags", "string"),
                    ("cpuModel", "string"),
                    ("cpuCores", "number string"),
                    ("cpuSockets", "number string"),
                    ("cpuThreads", "number string"),
                    ("cpuTopology", "array"),
                    ("kvmEnabled", "string"),
                    ("emulatedMachines", "strings"),
                    ("memSize", "number string"),
                    ("numaNodes", "map"),
                    ("networks", "map"),
                    ("nics", "map"),
                    ("bridges", "map"),
                    ("bondings", "map"),
                    ("vlans", "map"),
                    ("operatingSystem", "map"),
                    ("packages2", "map"),
                    ("software_version", "string"),
                    ("uuid", "string"),
                    ("vmTypes", "strings"),
                ],
            );
            assert!(
                result["HBAInventory"]["iSCSI"].is_array()
                    && result["HBAInventory"]["FC"].is_array(),
                "HBAInventory: {}",
                result["HBAInventory"]
            );
            assert!(
                !result["clusterLevels"].as_array().unwrap().is_empty(),
                "no cluster level"
            );
            assert!(
                ["true", "false"].contains(&result["kvmEnabled"].as_str().unwrap()),
                "kvmEnabled: {}",
                result["kvmEnabled"]
            );
        }
        "Host.getHardwareInfo" => {
            let info = result.as_object().expect("getHardwareInfo is a map");
            // Each field only when the firmware gives it; each one a string.
            for (k, v) in info {
                assert!(v.is_string(), "getHardwareInfo {k}: {v}");
            }
        }
        "Host.getStats" => check_types(
            method,
            result,
            &[
                ("cpuIdle", "percent"),
                ("cpuUser", "percent"),
                ("cpuSys", "percent"),
                ("cpuLoad", "number string"),
                ("cpuStatistics", "map"),
                ("memFree", "number"),
                ("memUsed", "number"),
                ("swapTotal", "number"),
                ("swapFree", "number"),
                ("network", "map"),
                ("haStats", "map"),
                ("storageDomains", "map"),
                ("numaNodeMemFree", "map"),
                ("bootTime", "number string"),
                ("elapsedTime", "number string"),
                ("dateTime", "string"),
                ("momStatus", "string"),
            ],
        ),
        "Host.getAllVmStats" => {
            let vms = result.as_array().expect("getAllVmStats is a list");
            assert!(
                vms.iter()
                    .any(|vm| vm["vmId"] == ALPHA && vm["status"] == "Up"),
                "alpha is not in {result}"
            );
        }
        other => panic!("no check for {other}"),
    }
}

#[test]
fn stomp_py_makes_the_engines_calls_and_reads_every_answer() {
    if !Path::new("/run/libvirt/libvirt-sock-ro").exists() {
        hvnode_testutil::skip("libvirtd does not run (tests/deps.sh starts it)");
        return;
    }
    let python = venv().join("bin/python3");
    if !hvnode_testutil::require_path(&python) {
        return;
    }
    let mut service = start();
    let connection = [
        "--port".to_string(),
        service.port.to_string(),
        "--ca".to_string(),
        service.file(vdsm::pki::CA),
        "--cert".to_string(),
        service.file("client/cert.pem"),
        "--key".to_string(),
        service.file("client/key.pem"),
    ];
    let run = |part: &str| run_part(&python, &connection, part);
    let Some(engine) = &run("engine") else {
        hvnode_testutil::skip(format!(
            "stomp.py is not in the venv {} (install it with tests/deps.sh)",
            venv().display()
        ));
        return;
    };

    // The engine's heart-beats, mirrored: the service writes every 15 s.
    assert_eq!(engine["connected"]["version"], "1.2", "{engine}");
    assert_eq!(engine["connected"]["heart-beat"], "15000,0", "{engine}");

    // Each verb alone: its id answered, with no error, in the engine's types.
    let calls = engine["calls"].as_array().unwrap();
    assert_eq!(calls.len(), VERBS.len(), "{engine}");
    for (call, method) in calls.iter().zip(VERBS) {
        assert_eq!(call["request"]["method"], method);
        check_result(method, result_of(&call["request"], &call["answer"]));
    }

    // The same verbs as one batch: one answer holding every id.
    let requests = engine["batch"]["request"].as_array().unwrap();
    let answers = engine["batch"]["answer"]
        .as_array()
        .unwrap_or_else(|| panic!("a batch is answered with a list: {}", engine["batch"]));
    assert_eq!(answers.len(), requests.len(), "{}", engine["batch"]);
    for request in requests {
        let answer = answers
            .iter()
            .find(|a| a["id"] == request["id"])
            .unwrap_or_else(|| panic!("{} not answered in the batch", request["id"]));
        check_result(
            request["method"].as_str().unwrap(),
            result_of(request, answer),
        );
    }

    // Events on jms.queue.events, between the answers.
    let event = &engine["events"][0];
    assert_eq!(
        event["method"],
        format!("|virt|VM_status|{ALPHA}"),
        "{engine}"
    );
    assert_eq!(event["params"][ALPHA]["status"], "Up", "{event}");
    assert!(event["params"]["notify_time"].is_number(), "{event}");
    assert!(
        event.get("id").is_none(),
        "an event is a notification: {event}"
    );

    // DISCONNECT with a receipt: RECEIPT.
    assert_eq!(engine["receipts"], json!(["goodbye"]), "{engine}");

    // Short heart-beats both ways, on a link with nothing else to carry: the
    // client's kept the connection open past the service's limit of 1.5 intervals,
    // the service's reached stomp.py. (Events stop first: while they go to other
    // connections, the service counts them as written to this one too, which did
    // not subscribe to them, and sends it no heart-beat.)
    service.stop_events();
    let beats = &run("heart_beats").expect("stomp.py, there a moment ago");
    let interval = format!("{BEAT_MS},{BEAT_MS}");
    assert_eq!(
        beats["connected"]["heart-beat"],
        interval.as_str(),
        "{beats}"
    );
    assert!(beats["server_beats"].as_u64().unwrap() >= 1, "{beats}");
    assert_eq!(beats["heartbeat_timeouts"], 0, "{beats}");
    let ping = json!({"jsonrpc": "2.0", "method": "Host.ping2", "id": "after-idle"});
    assert_eq!(result_of(&ping, &beats["answer_after_idle"]), &json!(true));

    for part in [engine, beats] {
        assert_eq!(part["errors"], json!([]), "{part}");
        assert_eq!(part["problems"], json!([]), "{part}");
    }
}
