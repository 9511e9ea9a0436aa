//! The engine's networks on a booted node (`Host.setupNetworks`), as the
//! engine's host deploy makes its management network: the NIC that carries the
//! default route moved behind a bridge `ovirtmgmt` that takes its DHCP address,
//! confirmed by the engine's `Host.confirmConnectivity` calls and committed;
//! then a change the engine never confirms (a static address), rolled back by
//! the node after the connectivity timeout. Each time the node's traffic is
//! shown to leave through qemu's user network to a listener on the host's
//! loopback (`10.0.2.2` inside the guest).

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;

use crate::Console;
use crate::live::ENGINE_PKI;

const CMD: Duration = Duration::from_secs(300);

/// The guest's script; `PORT` is the host listener's port.
const SCRIPT: &str = r#"set -e
d=$(mktemp -d); cd "$d"
# The previous check's certificates may still be loaded: let the service see
# them go before new ones come.
sleep 6
HVNODE_ENGINE_PKI
nic=$(ip -o -4 route show default | awk '{print $5; exit}')
echo "nic: $nic"
# Made at first boot (hvnode-unique-id.service) from the firmware's UUID.
sed 's/^/unique id: /' /etc/vdsm/vdsm.id
ip -o -4 addr show dev "$nic" | awk '{print "address before: " $4}'
req() { printf '{"jsonrpc":"2.0","method":"%s","params":%s,"id":"%s"}' "$1" "$2" "$3"; }
send() { printf 'SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:%d\nreply-to:jms.topic.vdsm_responses\n\n%s\0' ${#1} "$1"; }
answered() { tr '\0' '\n' < out | grep -aq "\"id\":\"$1\""; }
wait_for() { for i in $(seq 240); do answered "$1" && return 0; sleep 0.5; done; return 1; }
mkfifo in
: > out
mgmt='{"networks":{"ovirtmgmt":{"nic":"'$nic'","bridged":"true","bootproto":"dhcp","defaultRoute":true,"STP":"no","mtu":1500,"switch":"legacy"}},"bondings":{},"options":{"connectivityCheck":"true","connectivityTimeout":60,"commitOnSuccess":true}}'
static='{"networks":{"ovirtmgmt":{"nic":"'$nic'","bridged":true,"bootproto":"none","ipaddr":"10.0.2.99","netmask":"255.255.255.0","gateway":"10.0.2.2","defaultRoute":true}},"bondings":{},"options":{"connectivityCheck":true,"connectivityTimeout":8}}'
(printf 'CONNECT\naccept-version:1.2\nheart-beat:0,15000\n\n\0SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nid:s1\n\n\0'
 send "$(req Host.setupNetworks "$mgmt" n1)"
 # The engine polls confirmConnectivity every 2 s while the change is made.
 for i in $(seq 30); do sleep 2; answered n1 && break; send "$(req Host.confirmConnectivity '{}' cc$i)"; done
 wait_for n1
 send "$(req Host.getCapabilities '{}' c1)"; wait_for c1
 touch bridged
 while [ ! -e checked ]; do sleep 0.5; done
 # A change nobody confirms: no call for its 8 s.
 send "$(req Host.setupNetworks "$static" n2)"
 wait_for n2
 sleep 300) > in &
feeder=$!
timeout 400 openssl s_client -quiet -connect 127.0.0.1:54321 -cert engine.pem -key engine.key -CAfile ca.pem < in > out 2> err &
for i in $(seq 240); do [ -e bridged ] && break; sleep 0.5; done
tr '\0' '\n' < out | grep -a '"id":"n1"' | sed 's/^/setup answer: /'
cat /sys/class/net/ovirtmgmt/address | sed 's/^/bridge mac: /'
cat /sys/class/net/$nic/address | sed 's/^/nic mac: /'
ls /sys/class/net/ovirtmgmt/brif | sed 's/^/port: /'
for i in $(seq 60); do ip -o -4 addr show dev ovirtmgmt | grep -q inet && break; sleep 0.5; done
ip -o -4 addr show dev ovirtmgmt | awk '{print "bridge address: " $4}'
ip -o -4 addr show dev "$nic" | awk '{print "nic address: " $4}'
ip -o -4 route show default | awk '{print "default via: " $3 " dev " $5}'
echo reached-bridged > /dev/tcp/10.0.2.2/PORT || echo 'unreached: bridged'
tr '\0' '\n' < out | grep -a '"id":"c1"' | grep -ao '"ovirtmgmt":{[^}]*"southbound":"[a-z0-9]*"[^}]*}' | head -1 | sed 's/^/reported: /'
grep -c ovirtmgmt /etc/hvnode/networks/safe.json | sed 's/^/safe: /'
ls /etc/systemd/network | grep '^05-hvnode-engine-' | sed 's/^/file: /'
touch checked
# While the unconfirmed change is in place: the static address.
for i in $(seq 20); do ip -o -4 addr show dev ovirtmgmt | grep -q 10.0.2.99 && break; sleep 0.5; done
ip -o -4 addr show dev ovirtmgmt | awk '{print "during: " $4}'
for i in $(seq 120); do answered n2 && break; sleep 0.5; done
tr '\0' '\n' < out | grep -a '"id":"n2"' | sed 's/^/unconfirmed answer: /'
for i in $(seq 60); do ip -o -4 addr show dev ovirtmgmt | grep -q '10.0.2.15/' && break; sleep 0.5; done
ip -o -4 addr show dev ovirtmgmt | awk '{print "after rollback: " $4}'
echo reached-rolled-back > /dev/tcp/10.0.2.2/PORT || echo 'unreached: rolled back'
grep -c 10.0.2.99 /etc/hvnode/networks/running.json | sed 's/^/static in running: /' || true
kill $feeder 2>/dev/null || true
# The engine's client certificate, for a call from the host through qemu's
# port forward; the node's certificates stay until it is done.
for f in ca.pem engine.pem engine.key; do echo "file $f $(base64 -w0 $f)"; done
rm -rf "$d"
"#;

/// Runs the check in the guest behind `c`; `name` names the boot in errors;
/// `forward` is the host's port that qemu forwards to the guest's 54321, where
/// the engine's calls come from at the end, as a real engine's would.
pub fn check_engine_networks(c: &mut Console, name: &str, forward: u16) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").context("a listener for the guest")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut text = String::new();
            if let Ok(mut s) = stream {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.read_to_string(&mut text);
            }
            if tx.send(text.trim().to_string()).is_err() {
                break;
            }
        }
    });
    let script = SCRIPT
        .replace("HVNODE_ENGINE_PKI", ENGINE_PKI.trim_end())
        .replace("PORT", &port.to_string());
    c.send(&format!(
        "cat > /tmp/engine-net.sh <<'HVNODE_EOF'
{script}HVNODE_EOF
"
    ))?;
    let out = c.check("bash /tmp/engine-net.sh", CMD)?;
    eprintln!("{name}: the engine's networks\n{out}");
    let reached: Vec<String> = rx.try_iter().collect();
    let line = |prefix: &str| {
        out.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let nic = line("nic:")
        .first()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let before = line("address before:").first().map(|s| s.to_string());
    ensure!(
        line("unique id:") == [qemu::SYSTEM_UUID],
        "{name}: /etc/vdsm/vdsm.id is not the firmware's UUID {}:\n{out}",
        qemu::SYSTEM_UUID
    );
    ensure!(
        line("setup answer:")
            .first()
            .is_some_and(|a| a.contains("\"code\":0")),
        "{name}: Host.setupNetworks of ovirtmgmt did not succeed:\n{out}"
    );
    ensure!(
        line("port:") == [nic.as_str()] && line("bridge mac:") == line("nic mac:"),
        "{name}: ovirtmgmt does not have {nic} as its port, with its MAC:\n{out}"
    );
    ensure!(
        line("bridge address:").first().map(|s| s.to_string()) == before
            && line("nic address:").is_empty(),
        "{name}: the bridge did not take the NIC's DHCP address {before:?}:\n{out}"
    );
    ensure!(
        line("default via:") == ["10.0.2.2 dev ovirtmgmt"],
        "{name}: the default route does not go through ovirtmgmt:\n{out}"
    );
    ensure!(
        line("reported:")
            .first()
            .is_some_and(|r| r.contains("\"dhcpv4\":true") && r.contains("\"bridged\":true")),
        "{name}: getCapabilities does not report the engine's ovirtmgmt:\n{out}"
    );
    ensure!(
        line("safe:") == ["1"] && line("file:").len() == 3,
        "{name}: the confirmed ovirtmgmt was not committed (commitOnSuccess) or its \
         networkd files are not there:\n{out}"
    );
    ensure!(
        line("during:")
            .first()
            .is_some_and(|a| a.starts_with("10.0.2.99/")),
        "{name}: the unconfirmed static address was not applied:\n{out}"
    );
    ensure!(
        line("unconfirmed answer:")
            .first()
            .is_some_and(|a| a.contains("\"code\":10") && a.contains("rolled back")),
        "{name}: a change the engine never confirmed was not answered vdsm's code 10:\n{out}"
    );
    ensure!(
        line("after rollback:").first().map(|s| s.to_string()) == before
            && line("static in running:") == ["0"],
        "{name}: the rollback did not bring the DHCP address back:\n{out}"
    );
    ensure!(
        reached == ["reached-bridged", "reached-rolled-back"],
        "{name}: the node's traffic did not reach the host through the bridge \
         (received {reached:?}):\n{out}"
    );
    let files = tempfile_dir()?;
    for l in out.lines() {
        if let Some((file, b64)) = l
            .trim()
            .strip_prefix("file ")
            .and_then(|r| r.split_once(' '))
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .with_context(|| format!("{name}: the guest's {file}"))?;
            std::fs::write(files.join(file), bytes)?;
        }
    }
    let answers = from_the_host(&files, forward);
    let _ = std::fs::remove_dir_all(&files);
    c.check("rm -rf /etc/pki/vdsm", CMD)?;
    let answers = answers?;
    eprintln!("{name}: from the host through the port forward:\n{answers}");
    ensure!(
        answers.contains("CONNECTED")
            && answers.contains("\"id\":\"hp1\",\"jsonrpc\":\"2.0\",\"result\":true")
            && answers.contains("\"id\":\"hc1\"")
            && answers.contains("\"ovirtmgmt\":{"),
        "{name}: hvnode-vdsm did not answer the host's ping2 and getCapabilities through \
         qemu's port forward:\n{answers}"
    );
    crate::live::no_avc(c, name)
}

/// A scratch folder on the host.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("hvnode-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    Ok(dir)
}

/// `Host.ping2` and `Host.getCapabilities` asked from the host through qemu's
/// forward to the guest's 54321 (`openssl s_client` with the engine's client
/// certificate in `files`): what came back, once both are answered.
fn from_the_host(files: &std::path::Path, port: u16) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(files.join("engine.pem"))
        .arg("-key")
        .arg(files.join("engine.key"))
        .arg("-CAfile")
        .arg(files.join("ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting openssl s_client on the host")?;
    let mut stdin = child.stdin.take().context("openssl's input")?;
    let mut stdout = child.stdout.take().context("openssl's output")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let send = |body: &str| {
        format!(
            "SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:{}\nreply-to:jms.topic.vdsm_responses\n\n{body}\0",
            body.len()
        )
    };
    let frames = format!(
        "CONNECT\naccept-version:1.2\nheart-beat:0,15000\n\n\0SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nid:h\n\n\0{}{}",
        send(r#"{"jsonrpc":"2.0","method":"Host.ping2","id":"hp1"}"#),
        send(r#"{"jsonrpc":"2.0","method":"Host.getCapabilities","id":"hc1"}"#)
    );
    let written = stdin
        .write_all(frames.as_bytes())
        .and_then(|()| stdin.flush());
    let mut got = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(120);
    while written.is_ok() && std::time::Instant::now() < until {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
            got.extend(chunk);
        }
        let text = String::from_utf8_lossy(&got);
        if text.contains("\"id\":\"hp1\"") && text.contains("\"id\":\"hc1\"") {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    written.context("writing to openssl s_client")?;
    Ok(String::from_utf8_lossy(&got).replace('\0', "\n"))
}
