//! The service on loopback, over TLS with certificates of a CA made per test, as the
//! engine's Java client and vdsm's own client talk to it: the frames they send, the
//! answers they read, heart-beats, and what closes a connection (no certificate of
//! the engine's CA, garbage, oversized frames, a client slow to connect, too many
//! connections) without stopping the service for others, and events to the
//! connections that subscribed to them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use test_engine::pki::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vdsm::stomp::{Decoder, Frame};

/// A running service and the engine's CA.
struct Service {
    addr: SocketAddr,
    ca: Ca,
    _pki: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// libvirt's test driver node the service's VM verbs read: one running domain.
const NODE_XML: &str = "<node>
  <domain type='test'>
    <name>alpha</name>
    <uuid>6f5c1e2a-0001-4002-8003-000000000042</uuid>
    <memory unit='KiB'>524288</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
  <device>
    <name>pci_0000_00_1f_2</name>
    <parent>computer</parent>
    <capability type='pci'>
      <domain>0</domain><bus>0</bus><slot>31</slot><function>2</function>
      <product id='0x2922'>82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]</product>
      <vendor id='0x8086'>Intel Corporation</vendor>
      <iommuGroup number='7'><address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/></iommuGroup>
    </capability>
  </device>
</node>";
const ALPHA: &str = "6f5c1e2a-0001-4002-8003-000000000042";

fn write_pki(dir: &Path, ca: &Ca) {
    let (cert, key) = ca.issue("localhost");
    for (path, text) in [
        (vdsm::pki::KEY, key),
        (vdsm::pki::CERT, cert),
        (vdsm::pki::CA, ca.pem()),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn start(options: vdsm::ServeOptions) -> Service {
    start_with(options, false)
}

/// The service; with `helper`, with a privileged helper of its own for the VM
/// actions (the node's helper backend, on the same libvirt), serving this test's
/// user as the engine link's.
fn start_with(options: vdsm::ServeOptions, helper: bool) -> Service {
    let ca = Ca::named("engine CA");
    let pki = tempfile::tempdir().unwrap();
    write_pki(pki.path(), &ca);
    let config = vdsm::pki::server_config(pki.path()).unwrap();
    let tls: vdsm::Tls = Arc::new(RwLock::new(Some(config.into())));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    // This host's own facts, and VMs of libvirt's test driver (through libvirtd,
    // which tests/deps.sh starts).
    let node = pki.path().join("node.xml");
    std::fs::write(&node, NODE_XML).unwrap();
    let uri = format!("test://{}", node.display());
    let mut verbs = vdsm::host::HostVerbs::new("/", &uri);
    if helper {
        let socket = pki.path().join("helper-engine");
        let me = nix::unistd::getuid();
        let listener = helper::server::bind_for_user(&socket, me).unwrap();
        let config = console::Config {
            libvirt_uri: uri.clone(),
            ..console::Config::default()
        };
        let server = helper::Server::new(
            listener,
            console::auth::remote::PamBackend::from_config(&config),
            helper::Options {
                engine_uids: vec![me.as_raw()],
                ..helper::Options::default()
            },
        );
        std::thread::spawn(move || server.serve());
        verbs = verbs.with_helper(socket);
    }
    let verbs = Arc::new(verbs);
    runtime.spawn(vdsm::serve(listener, tls, verbs, options));
    Service {
        addr,
        ca,
        _pki: pki,
        _runtime: runtime,
    }
}

/// A client connection, as the engine opens it: TLS with its certificate signed by
/// `identity` (none: no client certificate), trusting the engine's CA.
struct Client {
    stream: TlsStream<TcpStream>,
    decoder: Decoder,
}

async fn connect(service: &Service, identity: Option<&Ca>) -> std::io::Result<Client> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(service.ca.der())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(ca) => {
            let (cert, key) = ca.issue("engine.example.com");
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(service.addr).await?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    Ok(Client {
        stream,
        decoder: Decoder::default(),
    })
}

impl Client {
    async fn send(&mut self, frame: Frame) {
        self.stream.write_all(&frame.encode()).await.unwrap();
    }

    /// The next frame, or `None` when the server closed the connection; heart-beats
    /// are counted in `beats`.
    async fn frame(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(f) = self.decoder.next_frame().unwrap() {
                return Some(f);
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("the server answers in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// CONNECT as the engine does, and SUBSCRIBE to its two destinations.
    async fn engine_handshake(&mut self, heart_beat: &str) -> Frame {
        self.send(
            Frame::new("CONNECT")
                .header("accept-version", "1.2")
                .header("host", "engine")
                .header("heart-beat", heart_beat),
        )
        .await;
        let connected = self.frame(Duration::from_secs(5)).await.unwrap();
        for (id, destination) in [
            ("sub-responses", vdsm::server::RESPONSE_QUEUE),
            ("sub-events", vdsm::server::EVENT_QUEUE),
        ] {
            self.send(
                Frame::new("SUBSCRIBE")
                    .header("destination", destination)
                    .header("id", id)
                    .header("ack", "auto"),
            )
            .await;
        }
        connected
    }

    async fn call(&mut self, reply_to: &str, body: &Value) -> (Frame, Value) {
        let text = serde_json::to_vec(body).unwrap();
        self.send(
            Frame::new("SEND")
                .header("destination", "jms.topic.vdsm_requests")
                .header("reply-to", reply_to)
                .header("ovirtCorrelationId", "flow-1")
                .body(text),
        )
        .await;
        let frame = self.frame(Duration::from_secs(10)).await.unwrap();
        let value = serde_json::from_slice(&frame.body).unwrap();
        (frame, value)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_engines_conversation_from_connect_to_disconnect() {
    let service = start(vdsm::ServeOptions::default());
    rt().block_on(async {
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        let connected = c.engine_handshake("0,1000").await;
        assert_eq!(connected.command, "CONNECTED", "{connected:?}");
        assert_eq!(connected.get("version"), Some("1.2"));
        assert_eq!(connected.get("heart-beat"), Some("1000,0"));

        let request = json!({"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "a1"});
        let (message, answer) = c.call(vdsm::server::RESPONSE_QUEUE, &request).await;
        assert_eq!(message.command, "MESSAGE");
        assert_eq!(message.get("destination"), Some(vdsm::server::RESPONSE_QUEUE));
        assert_eq!(message.get("subscription"), Some("sub-responses"));
        assert_eq!(message.get("content-type"), Some("application/json"));
        assert_eq!(
            message.get("content-length"),
            Some(message.body.len().to_string().as_str())
        );
        assert_eq!(answer, json!({"jsonrpc": "2.0", "id": "a1", "result": true}));

        // Not served yet: answered, not fatal.
        let request = json!({"jsonrpc": "2.0", "method": "Host.getStorageRepoStats", "params": {}, "id": "a2"});
        let (_, answer) = c.call(vdsm::server::RESPONSE_QUEUE, &request).await;
        assert_eq!(answer["error"]["code"], -32601, "{answer}");

        // Idle: the server's heart-beat, a newline, comes within the interval.
        let mut beat = [0u8; 1];
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(3), c.stream.read_exact(&mut beat))
            .await
            .expect("a heart-beat within 3 s")
            .unwrap();
        assert_eq!(beat, *b"\n");
        assert!(started.elapsed() < Duration::from_millis(2500));

        c.send(Frame::new("DISCONNECT").header("receipt", "bye-1")).await;
        let receipt = c.frame(Duration::from_secs(5)).await.unwrap();
        assert_eq!(receipt.command, "RECEIPT");
        assert_eq!(receipt.get("receipt-id"), Some("bye-1"));
        assert!(c.frame(Duration::from_secs(5)).await.is_none(), "closed after DISCONNECT");
    });
}

/// The engine's own heart-beat, `0,15000`, across 40 s of an idle link: the
/// service writes a newline at least every 15 s (the engine drops a link silent
/// for 22.5 s), and the link still answers after it.
#[test]
fn the_engines_heart_beats_keep_an_idle_link_for_40_s() {
    let service = start(vdsm::ServeOptions::default());
    rt().block_on(async {
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        let connected = c.engine_handshake("0,15000").await;
        assert_eq!(connected.get("heart-beat"), Some("15000,0"));
        let started = tokio::time::Instant::now();
        let mut last = started;
        let mut beats = 0;
        let mut longest = Duration::ZERO;
        let mut buf = [0u8; 64];
        while started.elapsed() < Duration::from_secs(40) {
            let until = started + Duration::from_secs(40);
            match tokio::time::timeout_at(until, c.stream.read(&mut buf)).await {
                Err(_) => break,
                Ok(read) => {
                    let n = read.unwrap();
                    assert!(n > 0, "the service closed an idle engine link");
                    assert!(buf[..n].iter().all(|b| *b == b'\n'), "{:?}", &buf[..n]);
                    beats += n;
                    longest = longest.max(last.elapsed());
                    last = tokio::time::Instant::now();
                }
            }
        }
        longest = longest.max(last.elapsed());
        assert!(beats >= 2, "{beats} heart-beats in 40 s at 15 s");
        assert!(
            longest < Duration::from_millis(22_500),
            "the link was silent for {longest:?}, past the engine's 22.5 s"
        );
        let ping = json!({"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "late"});
        let (_, answer) = c.call(vdsm::server::RESPONSE_QUEUE, &ping).await;
        assert_eq!(answer["result"], true, "{answer}");
    });
}

#[test]
fn vdsms_own_client_sends_a_batch_to_its_own_reply_queue() {
    let service = start(vdsm::ServeOptions::default());
    rt().block_on(async {
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        c.send(
            Frame::new("CONNECT")
                .header("accept-version", "1.2")
                .header("heart-beat", "0,24000"),
        )
        .await;
        assert_eq!(
            c.frame(Duration::from_secs(5)).await.unwrap().command,
            "CONNECTED"
        );
        let queue = "0d6f2b1e-5c1a-4f7e-9a7d-4d1c2b3a4f5e";
        c.send(
            Frame::new("SUBSCRIBE")
                .header("destination", queue)
                .header("id", "s1"),
        )
        .await;
        let batch = json!([
            {"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "1"},
            {"jsonrpc": "2.0", "method": "Host.getHardwareInfo", "id": "2"},
            {"jsonrpc": "2.0", "method": "Host.getStats", "params": {}, "id": "3"},
        ]);
        let (message, answer) = c.call(queue, &batch).await;
        assert_eq!(message.get("destination"), Some(queue));
        let items = answer.as_array().expect("a batch answered with a batch");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["result"], true);
        assert!(items[1]["result"].is_object(), "{answer}");
        // This host's usage, in the engine's shapes: percentages as strings, MiB.
        let stats = &items[2]["result"];
        let idle: f64 = stats["cpuIdle"].as_str().unwrap().parse().unwrap();
        assert!((0.0..=100.0).contains(&idle), "{stats}");
        assert!(stats["memFree"].as_u64().unwrap() > 0, "{stats}");
        assert!(
            stats["dateTime"].as_str().unwrap().ends_with(" GMT"),
            "{stats}"
        );
    });
}

#[test]
fn only_clients_with_a_certificate_of_the_engines_ca_are_served() {
    let service = start(vdsm::ServeOptions::default());
    let rogue = Ca::named("another CA");
    rt().block_on(async {
        for identity in [None, Some(&rogue)] {
            // The refusal shows at the handshake or at the first read (TLS 1.3 sends
            // the client's certificate after the client considers itself connected).
            let refused = match connect(&service, identity).await {
                Err(_) => true,
                Ok(mut c) => {
                    c.send(Frame::new("CONNECT").header("accept-version", "1.2"))
                        .await;
                    let mut buf = [0u8; 64];
                    !matches!(c.stream.read(&mut buf).await, Ok(n) if n > 0)
                }
            };
            assert!(
                refused,
                "served a client with {}",
                if identity.is_some() {
                    "another CA's certificate"
                } else {
                    "no certificate"
                }
            );
        }
        // The service still serves the engine.
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        assert_eq!(c.engine_handshake("0,15000").await.command, "CONNECTED");
    });
}

#[test]
fn garbage_and_oversized_frames_close_only_their_own_connection() {
    let service = start(vdsm::ServeOptions::default());
    rt().block_on(async {
        let mut engine = connect(&service, Some(&service.ca)).await.unwrap();
        engine.engine_handshake("0,15000").await;

        let mut garbage = connect(&service, Some(&service.ca)).await.unwrap();
        garbage
            .stream
            .write_all(b"GET / HTTP/1.1\r\nHost: node\r\n\r\n")
            .await
            .unwrap();
        let error = garbage.frame(Duration::from_secs(5)).await.unwrap();
        assert_eq!(error.command, "ERROR");
        assert!(
            error.get("message").unwrap().contains("not a command"),
            "{error:?}"
        );
        assert!(garbage.frame(Duration::from_secs(5)).await.is_none());

        let mut huge = connect(&service, Some(&service.ca)).await.unwrap();
        huge.engine_handshake("0,15000").await;
        huge.stream
            .write_all(b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:999999999\n\n")
            .await
            .unwrap();
        let error = huge.frame(Duration::from_secs(5)).await.unwrap();
        assert_eq!(error.command, "ERROR");
        assert!(
            error.get("message").unwrap().contains("longer than"),
            "{error:?}"
        );

        let mut early = connect(&service, Some(&service.ca)).await.unwrap();
        early
            .send(Frame::new("SEND").header("destination", "jms.topic.vdsm_requests"))
            .await;
        let error = early.frame(Duration::from_secs(5)).await.unwrap();
        assert!(
            error.get("message").unwrap().contains("before CONNECT"),
            "{error:?}"
        );

        let mut old = connect(&service, Some(&service.ca)).await.unwrap();
        old.send(Frame::new("CONNECT").header("accept-version", "1.0,1.1"))
            .await;
        let error = old.frame(Duration::from_secs(5)).await.unwrap();
        assert!(
            error.get("message").unwrap().contains("1.2 only"),
            "{error:?}"
        );

        let request = json!({"jsonrpc": "2.0", "method": "Host.ping2", "id": "still"});
        let (_, answer) = engine.call(vdsm::server::RESPONSE_QUEUE, &request).await;
        assert_eq!(answer["result"], true);
    });
}

#[test]
fn slow_clients_and_too_many_connections_are_closed() {
    let mut options = vdsm::ServeOptions {
        max_connections: 3,
        ..Default::default()
    };
    options.connection.connect_timeout = Duration::from_millis(300);
    let service = start(options);
    rt().block_on(async {
        // Connected over TLS, silent: closed once the time to CONNECT is up.
        let mut silent = connect(&service, Some(&service.ca)).await.unwrap();
        let error = silent.frame(Duration::from_secs(5)).await.unwrap();
        assert!(
            error.get("message").unwrap().contains("no CONNECT"),
            "{error:?}"
        );
        assert!(silent.frame(Duration::from_secs(5)).await.is_none());

        // A client that promised heart-beats and went quiet: closed.
        let mut quiet = connect(&service, Some(&service.ca)).await.unwrap();
        quiet.engine_handshake("1000,0").await;
        let error = quiet.frame(Duration::from_secs(5)).await.unwrap();
        assert!(
            error.get("message").unwrap().contains("heart-beat"),
            "{error:?}"
        );
        assert!(quiet.frame(Duration::from_secs(5)).await.is_none());
        // Its slot is given back as its task ends, just after the close.
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Three held open; a fourth is closed at once; the three still work.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut c = connect(&service, Some(&service.ca)).await.unwrap();
            c.engine_handshake("0,15000").await;
            held.push(c);
        }
        let fourth = connect(&service, Some(&service.ca)).await;
        let closed = match fourth {
            Err(_) => true,
            Ok(mut c) => c.frame(Duration::from_secs(5)).await.is_none(),
        };
        assert!(closed, "a fourth connection was served");
        for c in &mut held {
            let request = json!({"jsonrpc": "2.0", "method": "Host.ping2", "id": "x"});
            assert_eq!(
                c.call(vdsm::server::RESPONSE_QUEUE, &request).await.1["result"],
                true
            );
        }
    });
}

/// The engine's view of the VMs the node runs: their statistics, their list, and
/// their XML by id (how it adds a VM it did not start as an external one).
#[test]
fn running_vms_are_reported_and_their_xml_given_by_id() {
    if !Path::new("/run/libvirt/libvirt-sock-ro").exists() {
        hvnode_testutil::skip("libvirtd does not run (tests/deps.sh starts it)");
        return;
    }
    let service = start(vdsm::ServeOptions::default());
    rt().block_on(async {
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        c.engine_handshake("0,15000").await;
        let call = |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params, "id": method});
        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.getAllVmStats", json!({})))
            .await;
        let stats = answer["result"].as_array().expect("a list").clone();
        assert_eq!(stats.len(), 1, "{answer}");
        let alpha = &stats[0];
        assert_eq!(alpha["vmId"], ALPHA);
        assert_eq!(alpha["vmName"], "alpha");
        assert_eq!(alpha["status"], "Up");
        assert_eq!(alpha["vcpuCount"], "2");
        assert!(alpha["hash"].as_str().is_some_and(|h| !h.is_empty()));

        // The capabilities of this host, libvirt's machine types among them.
        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.getCapabilities", json!({})))
            .await;
        let caps = &answer["result"];
        assert!(caps["cpuFlags"].as_str().is_some_and(|f| f.contains("model_")), "{answer}");
        assert!(caps["clusterLevels"].as_array().is_some_and(|l| !l.is_empty()), "{answer}");
        assert!(caps["HBAInventory"].is_object(), "{answer}");

        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.getVMList", json!({})))
            .await;
        assert_eq!(answer["result"], json!([{"vmId": ALPHA, "status": "Up"}]));

        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.dumpxmls", json!({"vmList": [ALPHA]})))
            .await;
        let xml = answer["result"][ALPHA].as_str().expect("the XML by id");
        assert!(xml.contains("<name>alpha</name>"), "{xml}");

        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.getVMFullList", json!({"vmList": [ALPHA]})))
            .await;
        let conf = &answer["result"][0];
        assert_eq!(conf["vmId"], ALPHA, "{answer}");
        assert_eq!(conf["vmName"], "alpha");
        assert_eq!(conf["status"], "Up");
        assert_eq!(conf["smp"], "2");
        assert!(conf["memSize"].as_u64().is_some_and(|m| m > 0), "{answer}");
        assert!(conf["xml"].as_str().is_some_and(|x| x.contains("<name>alpha</name>")));

        // The host's devices, as libvirt's node-device driver lists them.
        let (_, answer) = c
            .call(
                vdsm::server::RESPONSE_QUEUE,
                &call("Host.hostdevListByCaps", json!({"caps": ["pci"]})),
            )
            .await;
        let sata = &answer["result"]["pci_0000_00_1f_2"]["params"];
        assert_eq!(sata["capability"], "pci", "{answer}");
        assert_eq!(sata["vendor_id"], "0x8086", "{answer}");
        assert_eq!(sata["iommu_group"], "7", "{answer}");
        assert_eq!(sata["address"]["slot"], "31", "{answer}");
        let (_, answer) = c
            .call(
                vdsm::server::RESPONSE_QUEUE,
                &call("Host.hostdevListByCaps", json!({"caps": "pci"})),
            )
            .await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");

        let missing = "00000000-0000-0000-0000-000000000001";
        let (_, answer) = c
            .call(vdsm::server::RESPONSE_QUEUE, &call("Host.dumpxmls", json!({"vmList": [missing]})))
            .await;
        assert_eq!(answer["error"]["code"], 1, "{answer}");
    });
}

/// Events go to every connection that subscribed to `jms.queue.events`, as a
/// JSON-RPC notification in a MESSAGE frame of that destination, between the
/// answers; a connection that did not subscribe gets none.
#[test]
fn events_reach_the_connections_subscribed_to_the_event_queue() {
    let (events, _) = tokio::sync::broadcast::channel(16);
    let mut options = vdsm::ServeOptions::default();
    options.connection.events = Some(events.clone());
    let service = start(options);
    rt().block_on(async {
        let mut engine = connect(&service, Some(&service.ca)).await.unwrap();
        engine.engine_handshake("0,15000").await;
        // vdsm's own client: answers only, no events.
        let mut other = connect(&service, Some(&service.ca)).await.unwrap();
        other
            .send(Frame::new("CONNECT").header("accept-version", "1.2"))
            .await;
        assert_eq!(
            other.frame(Duration::from_secs(5)).await.unwrap().command,
            "CONNECTED"
        );
        other
            .send(
                Frame::new("SUBSCRIBE")
                    .header("destination", vdsm::server::RESPONSE_QUEUE)
                    .header("id", "answers"),
            )
            .await;
        // Both subscriptions are in once a call through them is answered.
        let ping = json!({"jsonrpc": "2.0", "method": "Host.ping2", "id": "p"});
        engine.call(vdsm::server::RESPONSE_QUEUE, &ping).await;
        other.call(vdsm::server::RESPONSE_QUEUE, &ping).await;

        let event =
            vdsm::events::Event::vm_status(ALPHA, json!({"vmId": ALPHA, "status": "Up"}), 1234);
        events.send(event.clone()).unwrap();
        let message = engine.frame(Duration::from_secs(5)).await.unwrap();
        assert_eq!(message.command, "MESSAGE");
        assert_eq!(message.get("destination"), Some(vdsm::server::EVENT_QUEUE));
        assert_eq!(message.get("subscription"), Some("sub-events"));
        let body: Value = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(
            body,
            json!({
                "jsonrpc": "2.0",
                "method": format!("|virt|VM_status|{ALPHA}"),
                "params": {ALPHA: {"vmId": ALPHA, "status": "Up"}, "notify_time": 1234}
            })
        );
        // The other connection's next frame is the answer to its next call.
        let (_, answer) = other
            .call(
                vdsm::server::RESPONSE_QUEUE,
                &json!({"jsonrpc": "2.0", "method": "Host.ping2", "id": "q"}),
            )
            .await;
        assert_eq!(answer["id"], "q", "{answer}");
    });
}

/// The engine's VM actions go through the privileged helper: the service asks, the
/// helper (serving the engine link's user only) acts on libvirt. libvirt's test
/// driver keeps a state per connection, so the helper's copy of `alpha` is the one
/// that stops, and the service's read-only view still lists it running.
#[test]
fn vm_actions_go_through_the_helper_and_vm_stats_come_from_libvirt() {
    if !Path::new("/run/libvirt/libvirt-sock").exists() {
        hvnode_testutil::skip("libvirtd does not run (tests/deps.sh starts it)");
        return;
    }
    let service = start_with(vdsm::ServeOptions::default(), true);
    rt().block_on(async {
        let mut c = connect(&service, Some(&service.ca)).await.unwrap();
        c.engine_handshake("0,15000").await;
        let call = |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params, "id": method});
        let mut ask = async |method: &str, params: Value| {
            c.call(vdsm::server::RESPONSE_QUEUE, &call(method, params)).await.1
        };
        let stats = ask("VM.getStats", json!({"vmID": ALPHA})).await;
        assert_eq!(stats["result"][0]["vmId"], ALPHA, "{stats}");
        assert_eq!(stats["result"][0]["status"], "Up", "{stats}");
        let missing = "00000000-0000-0000-0000-000000000001";
        let answer = ask("VM.getStats", json!({"vmID": missing})).await;
        assert_eq!(answer["error"]["code"], 1, "{answer}");

        // A reboot, then a shutdown (ACPI), then the power off: each made.
        let answer = ask("VM.shutdown", json!({"vmID": ALPHA, "reboot": true})).await;
        assert_eq!(answer["result"], true, "{answer}");
        let answer = ask("VM.shutdown", json!({"vmID": ALPHA, "delay": 30, "message": "bye"})).await;
        assert_eq!(answer["result"], true, "{answer}");
        // The test driver's shutdown stops the domain at once: destroying it now
        // is libvirt's "not running", a failure the engine is told.
        let answer = ask("VM.destroy", json!({"vmID": ALPHA, "gracefulAttempts": 1})).await;
        assert_eq!(answer["error"]["code"], 100, "{answer}");
        assert!(
            answer["error"]["message"].as_str().is_some_and(|m| m.contains("not running")),
            "{answer}"
        );
        let answer = ask("VM.destroy", json!({"vmID": missing})).await;
        assert_eq!(answer["error"]["code"], 1, "{answer}");
        let answer = ask("VM.destroy", json!({"vmID": "not-a-uuid"})).await;
        assert_eq!(answer["error"]["code"], 100, "{answer}");
        let answer = ask("VM.destroy", json!({})).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
    });
}
