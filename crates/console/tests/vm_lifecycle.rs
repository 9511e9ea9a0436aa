//! A VM's whole life through the API against the real libvirtd (`qemu:///system`)
//! and a real TCG guest: a directory pool made through the API, a VM created in it
//! and started, its memory and autostart changed, a snapshot taken, reverted to
//! and deleted, and the VM deleted with its storage. Each step is checked through
//! libvirt's own C library (the `virt` crate), not through the console.
//! The guest's network is an isolated libvirt network made for the test (a bridge
//! with no address and no forwarding): nothing leaves the host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod real_libvirt;

use common::{Server, get, post_form, request};
use virt::domain::Domain;
use virt::storage_pool::StoragePool;

use real_libvirt::{Made, URI, conn};

#[test]
fn a_vm_is_created_changed_snapshotted_and_deleted_with_its_storage() {
    common::require_root();
    let made = Made::with_network("hvnode-life", "hvl");
    let c = conn();
    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("pool");
    let server = Server::start(|c| c.libvirt_uri = URI.into());
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let post = |path: &str, body: &str| post_form(&server.url(path), Some(&s), &csrf, body);

    // The pool.
    let r = post(
        "/api/v1/pools",
        &serde_json::json!({ "name": made.pool, "path": pool_dir }).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let pool = StoragePool::lookup_by_name(&c, &made.pool).unwrap();
    assert!(pool.is_active().unwrap() && pool.get_autostart().unwrap());
    assert!(pool_dir.is_dir());
    let r = get(&server.url("/api/v1/pools"), Some(&s), &[]);
    let pools = r.json()["data"]["pools"].clone();
    assert!(
        pools
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == made.pool.as_str()
                && p["state"] == "running"
                && p["path"] == pool_dir.to_str().unwrap()),
        "{pools}"
    );

    // A bad request makes nothing and says which field is wrong.
    let spec = |memory: u64| {
        serde_json::json!({
            "name": made.vm, "vcpus": 1, "memory_mib": memory, "disk_gib": 1,
            "pool": made.pool, "network": made.net, "firmware": "bios", "start": true
        })
        .to_string()
    };
    let r = post("/api/v1/vms", &spec(1));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("memory_mib 1 is out of range"),
        "{}",
        r.body
    );
    assert!(pool.list_all_volumes(0).unwrap().is_empty());

    // The VM: created, started, confined, its disk a new volume in the pool.
    let r = post("/api/v1/vms", &spec(64));
    assert_eq!(r.status, 201, "{}", r.body);
    let vm = r.json()["data"].clone();
    assert_eq!(vm["state"], "running", "{vm}");
    assert!(!vm["seclabels"].as_array().unwrap().is_empty(), "{vm}");
    let dom = Domain::lookup_by_name(&c, &made.vm).unwrap();
    let vols = pool.list_all_volumes(0).unwrap();
    assert_eq!(vols.len(), 1);
    let vol_path = vols[0].get_path().unwrap();
    assert!(
        vol_path.ends_with(&format!("{}.qcow2", made.vm)),
        "{vol_path}"
    );
    let xml = dom.get_xml_desc(0).unwrap();
    assert!(xml.contains(&vol_path), "{xml}");
    assert!(
        xml.contains(&format!("<source network='{}'", made.net)),
        "{xml}"
    );
    // VNC on a unix socket libvirt made: no TCP port at all.
    assert!(xml.contains("<listen type='socket' socket='/"), "{xml}");
    assert!(!xml.contains("<graphics type='vnc' port="), "{xml}");
    // The running guest's disk and NIC counters (SeaBIOS has read its disk).
    let detail = get(
        &server.url(&format!("/api/v1/vms/{}", made.vm)),
        Some(&s),
        &[],
    )
    .json();
    let disk = &detail["data"]["disks"][0];
    assert!(disk["read_bytes"].as_u64().is_some(), "{disk}");
    assert!(disk["write_bytes"].as_u64().is_some(), "{disk}");
    let nic = &detail["data"]["nics"][0];
    assert!(nic["rx_bytes"].as_u64().is_some(), "{nic}");
    // A second VM of the same name is a conflict.
    let r = post("/api/v1/vms", &spec(64));
    assert_eq!(r.status, 409, "{}", r.body);

    // Memory and autostart, in the definition (and live where the balloon can).
    let r = request(
        &server,
        "PATCH",
        &format!("/api/v1/vms/{}", made.vm),
        Some(&s),
        &csrf,
        r#"{"memory_mib": 96, "autostart": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(dom.get_autostart().unwrap());
    let inactive = dom
        .get_xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)
        .unwrap();
    assert!(
        inactive.contains("<memory unit='KiB'>98304</memory>"),
        "{inactive}"
    );

    // A snapshot of the running guest (memory and disk), reverted to, deleted.
    let r = post(
        &format!("/api/v1/vms/{}/snapshots", made.vm),
        r#"{"name": "first", "description": "before the change"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let names = || {
        dom.list_all_snapshots(0)
            .unwrap()
            .iter()
            .map(|s| s.get_name().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(), ["first"]);
    let r = post(
        &format!("/api/v1/vms/{}/snapshots/first/revert", made.vm),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["state"], "running", "{}", r.body);
    let r = request(
        &server,
        "DELETE",
        &format!("/api/v1/vms/{}/snapshots/first", made.vm),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(names().is_empty());

    // Deleted with its storage: forced off, undefined, its volume gone.
    let r = request(
        &server,
        "DELETE",
        &format!("/api/v1/vms/{}?storage=true", made.vm),
        Some(&s),
        &csrf,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(Domain::lookup_by_name(&c, &made.vm).is_err());
    pool.refresh(0).unwrap();
    assert!(pool.list_all_volumes(0).unwrap().is_empty());
    assert!(!std::path::Path::new(&vol_path).exists());
    let r = get(
        &server.url(&format!("/api/v1/vms/{}", made.vm)),
        Some(&s),
        &[],
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // The pool stops through the API.
    let r = post(&format!("/api/v1/pools/{}/stop", made.pool), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!pool.is_active().unwrap());
    drop(made);
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// The VM console WebSocket `/vms/{vm}/{kind}` of session `s`, asking for noVNC's
/// subprotocol.
fn console_socket(server: &Server, s: &common::Session, vm: &str, kind: &str) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/vms/{vm}/{kind}", server.addr)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Cookie", s.cookie.parse().unwrap());
    h.insert("Origin", format!("http://{}", server.addr).parse().unwrap());
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    let (mut ws, resp) = tungstenite::connect(req).unwrap();
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("binary")
    );
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_mut() {
        t.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
    }
    ws
}

/// Bytes from the socket until `n` are there (binary frames, any split).
struct Reader {
    ws: Ws,
    buf: Vec<u8>,
}

impl Reader {
    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.ws.read().unwrap() {
                tungstenite::Message::Binary(b) => self.buf.extend_from_slice(&b),
                tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
        self.buf.drain(..n).collect()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.ws
            .send(tungstenite::Message::Binary(bytes.to_vec().into()))
            .unwrap();
    }
}

/// A boot sector that writes a line to COM1 about once a second, for ever.
fn serial_boot_sector() -> Vec<u8> {
    let msg = b"hvnode-serial-ok\r\n\0";
    let mut code = vec![
        0xFA, // cli
        0x31, 0xC0, // xor ax, ax
        0x8E, 0xD8, // mov ds, ax
        0xBE, 0x1E, 0x7C, // start: mov si, 0x7c1e (msg)
        0xFC, // cld
        0xAC, // next: lodsb
        0x84, 0xC0, // test al, al
        0x74, 0x06, // jz pause
        0xBA, 0xF8, 0x03, // mov dx, 0x3f8
        0xEE, // out dx, al
        0xEB, 0xF5, // jmp next
        0xB9, 0x12, 0x00, // pause: mov cx, 18 (timer ticks)
        0xFB, // wait: sti
        0xF4, // hlt
        0xE2, 0xFC, // loop wait
        0xFA, // cli
        0xEB, 0xE7, // jmp start
    ];
    assert_eq!(code.len(), 0x1E);
    code.extend_from_slice(msg);
    code.resize(510, 0);
    code.extend_from_slice(&[0x55, 0xAA]);
    code
}

/// noVNC's view of a VM made through the API, and the serial console of a guest
/// that writes to its serial port, both relayed from the real qemu through the
/// console; and both closed once the session logs out.
#[test]
fn vnc_and_serial_consoles_are_relayed_from_real_guests() {
    common::require_root();
    let made = Made::with_network("hvnode-vnc", "hvv");
    let serial_vm = Made::vm(format!("hvnode-serial-{}", std::process::id()));
    let c = conn();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(|c| c.libvirt_uri = URI.into());
    let s = server.admin_session("root");
    let csrf = [("X-CSRF-Token", s.csrf.as_str())];
    let post = |path: &str, body: &str| post_form(&server.url(path), Some(&s), &csrf, body);
    let r = post(
        "/api/v1/pools",
        &serde_json::json!({ "name": made.pool, "path": dir.path().join("pool") }).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let spec = serde_json::json!({
        "name": made.vm, "vcpus": 1, "memory_mib": 64, "disk_gib": 1,
        "pool": made.pool, "network": made.net, "firmware": "bios", "start": true
    });
    let r = post("/api/v1/vms", &spec.to_string());
    assert_eq!(r.status, 201, "{}", r.body);

    // RFB: the server's greeting, security "None", the server's init, then a
    // framebuffer update for the whole screen.
    let mut vnc = Reader {
        ws: console_socket(&server, &s, &made.vm, "vnc"),
        buf: Vec::new(),
    };
    let greeting = vnc.take(12);
    assert!(greeting.starts_with(b"RFB 003.00"), "{greeting:?}");
    vnc.send(b"RFB 003.008\n");
    let n = vnc.take(1)[0] as usize;
    let types = vnc.take(n);
    assert!(types.contains(&1), "no security type None: {types:?}");
    vnc.send(&[1]);
    assert_eq!(vnc.take(4), [0, 0, 0, 0], "security result");
    vnc.send(&[1]); // ClientInit: shared
    let init = vnc.take(24);
    let (w, h) = (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    );
    assert!(w > 0 && h > 0, "{init:?}");
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    let name = String::from_utf8(vnc.take(name_len)).unwrap();
    assert!(name.contains(&made.vm), "{name}");
    let mut req = vec![3, 0, 0, 0, 0, 0];
    req.extend_from_slice(&w.to_be_bytes());
    req.extend_from_slice(&h.to_be_bytes());
    vnc.send(&req);
    let update = vnc.take(4);
    assert_eq!(update[0], 0, "FramebufferUpdate: {update:?}");
    assert!(u16::from_be_bytes([update[2], update[3]]) >= 1);

    // A guest that writes to its serial port.
    let disk = dir.path().join("serial.img");
    std::fs::write(&disk, serial_boot_sector()).unwrap();
    let xml = format!(
        "<domain type='qemu'><name>{}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='hda' bus='ide'/></disk>\
         <serial type='pty'><target port='0'/></serial>\
         <console type='pty'><target type='serial' port='0'/></console>\
         <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\
         <memballoon model='none'/></devices></domain>",
        serial_vm.vm,
        disk.display()
    );
    let guest = Domain::define_xml(&c, &xml).unwrap();
    guest.create().unwrap();
    let mut serial = Reader {
        ws: console_socket(&server, &s, &serial_vm.vm, "serial"),
        buf: Vec::new(),
    };
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains("hvnode-serial-ok") {
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        seen.extend(serial.take(1));
    }

    // libvirt's usual display, a VNC port on the loopback address, is relayed too.
    let mut tcp_vnc = Reader {
        ws: console_socket(&server, &s, &serial_vm.vm, "vnc"),
        buf: Vec::new(),
    };
    assert!(tcp_vnc.take(12).starts_with(b"RFB 003.00"));
    let live = guest.get_xml_desc(0).unwrap();
    assert!(live.contains("<graphics type='vnc' port='59"), "{live}");

    // libvirt keeps one session per console: a second one takes it over, and the
    // first one's socket closes.
    let mut second = Reader {
        ws: console_socket(&server, &s, &serial_vm.vm, "serial"),
        buf: Vec::new(),
    };
    let t = std::time::Instant::now();
    loop {
        match serial.ws.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "the first session stayed"
        );
    }
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("hvnode-serial-ok") {
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        seen.extend(second.take(1));
    }

    // A console of a VM that does not run is refused with its reason.
    guest.destroy().unwrap();
    let r = get(
        &server.url(&format!("/vms/{}/serial", serial_vm.vm)),
        Some(&s),
        &[("Origin", &format!("http://{}", server.addr))],
    );
    assert!(
        r.status == 409 || r.status == 400,
        "{}: {}",
        r.status,
        r.body
    );

    // Logging out closes the VNC relay within 5 s (and a little).
    let r = post_form(
        &server.url("/logout"),
        Some(&s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert!(r.status < 400, "{}", r.body);
    let t = std::time::Instant::now();
    loop {
        match vnc.ws.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(8),
            "still open"
        );
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(7),
        "{:?}",
        t.elapsed()
    );
    drop(serial_vm);
}
