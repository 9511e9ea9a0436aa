//! What a booted node must be, checked from a root shell inside it: SELinux
//! enforcing, libvirtd up with the selinux security model, every enabled
//! hvnode unit up, the serial console's long device timeout, the image's
//! identity, each network-facing process in its own SELinux domain, the engine's
//! link (`hvnode-vdsm`) answering a client of the engine's CA and sending VM events,
//! the web console used as an administrator uses it (pages, a VM started and forced
//! off, a terminal shell), and no AVC denial since boot.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};

use crate::profile::{BootProfile, boot_profile};
use crate::{Console, Image};

const CMD: Duration = Duration::from_secs(300);

/// Waits for the boot to finish, keeps its profile in `dir` (see
/// [`crate::profile`]), and fails with the failed units' status and
/// journal unless the system is `running`.
pub fn boot_finished(
    c: &mut Console,
    dir: &Path,
    name: &str,
    timeout: Duration,
) -> Result<BootProfile> {
    let state = c.run("systemctl is-system-running --wait", timeout)?.1;
    let profile = boot_profile(c, dir, name)?;
    eprintln!(
        "{name}: {} (plot {})",
        profile.summary,
        profile.svg.display()
    );
    if !state.trim().ends_with("running") {
        let failed = c.failed_units(CMD)?;
        bail!(
            "{name}: system state {:?}, failed units:\n{failed}",
            state.trim()
        );
    }
    Ok(profile)
}

/// The node's own checks (see the module's text); `slow` bounds libvirt's
/// first capability probe, which runs qemu (TCG inside TCG).
pub fn check_node(c: &mut Console, name: &str, img: &Image, slow: Duration) -> Result<()> {
    ensure!(
        c.check("getenforce", CMD)?.trim() == "Enforcing",
        "{name}: SELinux is not enforcing"
    );
    let active = c.check(
        "systemctl is-active libvirtd.service hvnode-helper.service hvnode-agent.service",
        CMD,
    )?;
    ensure!(
        active.split_whitespace().collect::<Vec<_>>() == ["active", "active", "active"],
        "{name}: libvirtd, hvnode-helper and hvnode-agent: {active}"
    );
    let secmodel = c.check(
        "virsh -c qemu:///system capabilities | grep -c '<model>selinux</model>'",
        slow,
    )?;
    ensure!(
        secmodel.trim() == "1",
        "{name}: libvirt's security model is not selinux"
    );
    // Every hvnode unit that is enabled is up (or, for one-shot units that
    // found nothing to do, not failed).
    let units = c.check(
        "systemctl list-unit-files 'hvnode-*' --state=enabled --no-legend --plain | cut -d' ' -f1",
        CMD,
    )?;
    let units: Vec<&str> = units.split_whitespace().collect();
    ensure!(
        units.contains(&"hvnode-agent.service"),
        "{name}: enabled hvnode units {units:?}"
    );
    for u in &units {
        let (rc, _) = c.run(&format!("systemctl is-failed --quiet {u}"), CMD)?;
        ensure!(rc != 0, "{name}: {u} failed");
    }
    // The serial console's device waits past systemd's 90 s default, so a
    // slow boot still gets its serial login.
    let timeout = c.check(
        "systemctl show -p JobRunningTimeoutUSec dev-ttyS0.device",
        CMD,
    )?;
    ensure!(
        timeout.trim() == "JobRunningTimeoutUSec=10min",
        "{name}: {}",
        timeout.trim()
    );
    let identity = c.check("cat /usr/lib/hvnode/image.json", CMD)?;
    ensure!(identity.contains(&img.nvr), "{name}: {identity}");
    // The processes that parse network traffic hold no privilege and run in
    // SELinux domains of their own (image/selinux/hvnode.te); the console's
    // helper is root's, in its own domain.
    let procs = c.check(
        "ps -o comm=,user:32=,label= -C hvnode-agent,hvnode-helper,hvnode-vdsm | sort",
        CMD,
    )?;
    let procs: Vec<Vec<&str>> = procs
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected = [
        [
            "hvnode-agent",
            "hvnode-ws",
            "system_u:system_r:hvnode_ws_t:s0",
        ],
        [
            "hvnode-helper",
            "root",
            "system_u:system_r:hvnode_helper_t:s0",
        ],
        ["hvnode-vdsm", "vdsm", "system_u:system_r:hvnode_vdsm_t:s0"],
    ];
    ensure!(
        procs.len() == expected.len()
            && procs.iter().zip(&expected).all(|(p, e)| p.as_slice() == e),
        "{name}: the console's and the engine link's processes, their users and \
         domains: {procs:?}, expected {expected:?}"
    );
    check_vdsm(c, name)?;
    use_console(c, name)?;
    no_avc(c, name)
}

/// The web console as an administrator uses it, each request crossing from the
/// web process's domain to what it reads or asks the helper for: a login with
/// administrative access (an account made for it), every page, systemd's units over
/// D-Bus, a VM started and forced off (sVirt labels it), and a shell on the terminal
/// page over its WebSocket. What a domain may not do shows as an answer that is not
/// 200, or as an AVC denial that [`no_avc`] then reports.
pub fn use_console(c: &mut Console, name: &str) -> Result<()> {
    let user = crate::install::ADMIN_USER;
    c.check(
        &format!(
            "id {user} >/dev/null 2>&1 || {{ useradd -m -G sudo {user} && echo '{user}:{}' | chpasswd; }}",
            crate::install::ROOT_PASSWORD
        ),
        CMD,
    )?;
    console_login(c)?;
    let pages = "/ /vms /services /logs /storage /networking /node /registration /terminal \
        /api/v1/overview /api/v1/metrics /api/v1/vms /api/v1/services /api/v1/logs \
        /api/v1/storage /api/v1/network /api/v1/node";
    let answers = c.check(
        &format!(
            "for p in {pages}; do curl -sk -b /tmp/jar -o /dev/null -w \"%{{http_code}} $p\\n\" {CONSOLE_URL}$p; done"
        ),
        CMD,
    )?;
    let failed: Vec<&str> = answers.lines().filter(|l| !l.starts_with("200 ")).collect();
    ensure!(
        failed.is_empty(),
        "{name}: the console's pages that did not answer 200: {failed:?}"
    );
    put_probe(c)?;
    c.check("virsh -q -c qemu:///system define /tmp/probe.xml", CMD)?;
    for action in ["start", "force-off"] {
        let answer = c.check(
            &console_post(&format!("/api/v1/vms/probe/{action}"), ""),
            CMD,
        )?;
        ensure!(
            answer.trim_end().ends_with("200"),
            "{name}: the console's VM {action}: {answer}"
        );
        if action == "start" {
            let vm = c.check(
                &format!("curl -sk -b /tmp/jar {CONSOLE_URL}/api/v1/vms/probe"),
                CMD,
            )?;
            // The probe is an emulated (TCG) guest: the domain with
            // executable memory; KVM guests keep svirt_t, which has none.
            ensure!(
                vm.contains("svirt_prot_exec_t"),
                "{name}: the started TCG VM is not labelled svirt_prot_exec_t: {vm}"
            );
            let execmem = c.check("cat /sys/fs/selinux/booleans/virt_use_execmem", CMD)?;
            ensure!(
                execmem.trim() == "0 0",
                "{name}: virt_use_execmem is on (every guest may map executable memory): {execmem}"
            );
        }
    }
    c.check("virsh -q -c qemu:///system undefine probe", CMD)?;
    // The terminal: a WebSocket upgrade, then one binary frame of input, masked
    // with a zero key (the payload as it is), as a browser's xterm.js sends it.
    // The shell says who it is, its SELinux domain and its audit login uid:
    // the user's login domain and uid, as after an ssh login (the transient
    // unit's PAM stack, /etc/pam.d/hvnode-terminal), not init's scripts'.
    let input = "echo TERM-$(id -un)-$(id -Z | cut -d: -f3)-$(cat /proc/self/loginuid)-OK; exit\n";
    let script = format!(
        r#"cookie=$(awk '$6 ~ /^__Host/ {{print $6"="$7}}' /tmp/jar)
input='{input}'
input=$(printf "$input")$'\n'
( printf 'GET /terminal/socket HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {CONSOLE_URL}\r\nCookie: %s\r\n\r\n' "$cookie"
  sleep 5; printf "\x82\x$(printf %02x $((${{#input}} | 128)))\x00\x00\x00\x00"; printf '%s' "$input"; sleep 10
) | timeout 30 openssl s_client -quiet -connect 127.0.0.1:9090 2>/dev/null | tr -c '[:print:]\n' '.' | grep -ao 'TERM-[a-z]*-[a-z_]*-[0-9]*-OK' | head -1
"#
    );
    c.send(&format!(
        "cat > /tmp/terminal.sh <<'HVNODE_EOF'\n{script}HVNODE_EOF\n"
    ))?;
    let shell = c.check("bash /tmp/terminal.sh", CMD)?;
    let uid = c.check(&format!("id -u {user}"), CMD)?;
    let uid = uid.trim();
    ensure!(
        shell.trim() == format!("TERM-{user}-unconfined_t-{uid}-OK"),
        "{name}: the console's terminal gave no shell of {user} (uid {uid}) in unconfined_t: {shell:?} \
         (journalctl -u hvnode-helper has why)"
    );
    Ok(())
}

/// A VM with no disk, `probe`, in `/tmp/probe.xml`: SeaBIOS finds nothing to boot
/// and waits, which is all a VM start needs to show.
fn put_probe(c: &mut Console) -> Result<()> {
    c.send(
        "cat > /tmp/probe.xml <<'HVNODE_EOF'
<domain type='qemu'><name>probe</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>
HVNODE_EOF
",
    )?;
    Ok(())
}

/// Shell lines (in a scratch folder) that make an engine's CA, a host
/// certificate and key put where the engine's host deploy puts them, and an
/// engine's client certificate and key (`engine.pem`, `engine.key`, with
/// `ca.pem`), then wait until `hvnode-vdsm` serves with them.
pub(crate) const ENGINE_PKI: &str = r#"key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" -addext "subjectAltName=DNS:$1" -addext "extendedKeyUsage=serverAuth,clientAuth" 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -subj /CN=engine-ca -days 2 2>/dev/null
for n in node engine; do key $n; openssl x509 -req -in $n.csr -copy_extensions copy -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 2>/dev/null; done
install -d /etc/pki/vdsm/keys /etc/pki/vdsm/certs
install -m 0440 -o vdsm -g kvm node.key /etc/pki/vdsm/keys/vdsmkey.pem
install -m 0644 node.pem /etc/pki/vdsm/certs/vdsmcert.pem
install -m 0644 ca.pem /etc/pki/vdsm/certs/cacert.pem
for i in $(seq 60); do systemctl show -p StatusText hvnode-vdsm | grep -q 'serving the engine' && break; sleep 1; done
"#;

/// The engine's link, `hvnode-vdsm`, on the node as the image runs it (its user,
/// its sandbox, the node's libvirt): waiting without certificates; serving once a
/// CA, a host certificate and key are put where the engine's host deploy puts them;
/// and, to a client with a certificate of that CA, answering the verbs the engine
/// calls to take a host Up (`openssl s_client` speaks the STOMP frames), and sending a
/// `VM_status` event when a VM starts and when it is destroyed.
pub fn check_vdsm(c: &mut Console, name: &str) -> Result<()> {
    put_probe(c)?;
    let script = r#"set -e
d=$(mktemp -d); cd "$d"
ps -o user=,group= -C hvnode-vdsm | sed 's/^/user: /'
systemctl show -p StatusText hvnode-vdsm | sed 's/^/before: /'
HVNODE_ENGINE_PKI
systemctl show -p StatusText hvnode-vdsm | sed 's/^/after: /'
body='[{"jsonrpc":"2.0","method":"Host.ping2","id":"p1"},{"jsonrpc":"2.0","method":"Host.getCapabilities","id":"c1"},{"jsonrpc":"2.0","method":"Host.getStats","id":"s1"},{"jsonrpc":"2.0","method":"Host.getAllVmStats","id":"v1"},{"jsonrpc":"2.0","method":"Host.hostdevListByCaps","id":"h1"},{"jsonrpc":"2.0","method":"Host.getHardwareInfo","id":"w1"}]'
mkfifo in
send() { printf 'SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:%d\n\n%s\0' ${#1} "$1"; }
# The second batch (the engine's VM verbs) is sent once the file "next" holds it.
(printf 'CONNECT\naccept-version:1.2\nheart-beat:0,15000\n\n\0SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nid:s1\n\n\0SUBSCRIBE\ndestination:jms.queue.events\nid:s2\n\n\0'; send "$body"
 while [ ! -s next ]; do sleep 0.2; done; send "$(cat next)"; sleep 240) > in &
feeder=$!
timeout 240 openssl s_client -quiet -connect 127.0.0.1:54321 -cert engine.pem -key engine.key -CAfile ca.pem < in > out 2> err &
for i in $(seq 120); do grep -aq '"id":"h1"' out 2>/dev/null && break; sleep 1; done
# A VM started while the engine listens, then its statistics and its power-off
# asked by the engine (VM.getStats, VM.destroy through the helper): an event for
# each change.
virsh -q -c qemu:///system define /tmp/probe.xml >/dev/null
uuid=$(virsh -q -c qemu:///system domuuid probe)
virsh -q -c qemu:///system start probe >/dev/null
for i in $(seq 60); do grep -a '|virt|VM_status|' out 2>/dev/null | grep -q '"status":"Up"' && break; sleep 1; done
echo "[{\"jsonrpc\":\"2.0\",\"method\":\"VM.getStats\",\"params\":{\"vmID\":\"$uuid\"},\"id\":\"g1\"},{\"jsonrpc\":\"2.0\",\"method\":\"VM.destroy\",\"params\":{\"vmID\":\"$uuid\"},\"id\":\"d1\"},{\"jsonrpc\":\"2.0\",\"method\":\"Host.setMOMPolicyParameters\",\"params\":{\"key_value_store\":{\"balloonEnabled\":false,\"ksmEnabled\":true,\"ksmMergeAcrossNodes\":true}},\"id\":\"m1\"}]" > next.tmp && mv next.tmp next
for i in $(seq 60); do grep -a '|virt|VM_status|' out 2>/dev/null | grep -q '"status":"Down"' && break; sleep 1; done
virsh -q -c qemu:///system domstate probe | sed 's/^/state after VM.destroy: /'
virsh -q -c qemu:///system destroy probe >/dev/null 2>&1 || true
virsh -q -c qemu:///system undefine probe >/dev/null
kill $feeder 2>/dev/null || true
tr '\0' '\n' < out | grep -c '^CONNECTED' | sed 's/^/connected: /'
for i in $(seq 30); do grep -aq '"id":"m1"' out && break; sleep 1; done
sed 's/^/ksm run: /' /sys/kernel/mm/ksm/run
for id in p1 c1 s1 v1 h1 w1 g1 d1 m1; do grep -ao "\"id\":\"$id\"" out | head -1 | sed 's/^/answered: /'; done
grep -ao '"id":"d1"[^}]*"result":true' out | head -1 | sed 's/^/destroyed: /'
grep -ac '"error":{' out | sed 's/^/errors: /' || true
tr '\0' '\n' < out | grep -a '|virt|VM_status|' | grep -ao '"status":"[A-Za-z ]*"' | sed 's/^/event: /'
grep -ao '"emulatedMachines":\[[^]]*' out | head -c 120 | sed 's/^/machines: /'; echo
grep -ao '"pci_0000_00_[0-9a-f_]*":{"params"' out | wc -l | sed 's/^/pci devices: /'
# Root's facts, read by the helper for the unprivileged service.
grep -ao '"systemSerialNumber":"[^"]*"' out | head -1 | sed 's/^/hardware: /'
grep -ao '"systemUUID":"[^"]*"' out | head -1 | sed 's/^/hardware: /'
grep -ao '"cpuFlags":"[^"]*"' out | head -1 | tr ',' '\n' | grep -c '^model_' | sed 's/^/cpu models: /'
rm -rf /etc/pki/vdsm "$d"
"#;
    let script = script.replace("HVNODE_ENGINE_PKI", ENGINE_PKI.trim_end());
    c.send(&format!(
        "cat > /tmp/vdsm-check.sh <<'HVNODE_EOF'
{script}HVNODE_EOF
"
    ))?;
    let out = c.check("bash /tmp/vdsm-check.sh", CMD)?;
    eprintln!("{name}: hvnode-vdsm\n{out}");
    let line = |prefix: &str| {
        out.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    ensure!(
        line("user:")
            .first()
            .map(|u| u.split_whitespace().collect::<Vec<_>>())
            == Some(vec!["vdsm", "kvm"]),
        "{name}: hvnode-vdsm does not run as vdsm:kvm:\n{out}"
    );
    ensure!(
        line("before:")
            .first()
            .is_some_and(|s| s.contains("vdsmkey.pem is missing")),
        "{name}: hvnode-vdsm without certificates:\n{out}"
    );
    ensure!(
        line("after:")
            .first()
            .is_some_and(|s| s.contains("serving the engine")),
        "{name}: hvnode-vdsm did not take the certificates:\n{out}"
    );
    ensure!(
        line("connected:") == ["1"],
        "{name}: no CONNECTED from hvnode-vdsm:\n{out}"
    );
    let answered = line("answered:");
    ensure!(
        answered.len() == 9,
        "{name}: hvnode-vdsm answered {answered:?} of ping2, getCapabilities, getStats, \
         getAllVmStats, hostdevListByCaps, getHardwareInfo, VM.getStats, VM.destroy, \
         setMOMPolicyParameters:\n{out}"
    );
    ensure!(
        line("ksm run:") == ["1"],
        "{name}: the engine's policy (ksmEnabled) did not turn KSM on:\n{out}"
    );
    // The firmware's serial number and UUID are root's to read: the helper's to
    // give the unprivileged service.
    ensure!(
        line("hardware:")
            == [
                format!("\"systemSerialNumber\":\"{}\"", qemu::SYSTEM_SERIAL),
                format!("\"systemUUID\":\"{}\"", qemu::SYSTEM_UUID),
            ],
        "{name}: hvnode-vdsm's getHardwareInfo lacks the firmware's serial number or UUID:\n{out}"
    );
    ensure!(
        line("cpu models:")
            .first()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 1),
        "{name}: hvnode-vdsm's cpuFlags name the host's model only, not libvirt's usable \
         ones (the helper's domain capabilities):\n{out}"
    );
    ensure!(
        line("destroyed:").len() == 1 && line("state after VM.destroy:") == ["shut off"],
        "{name}: the engine's VM.destroy (through the helper) did not power the VM off:\n{out}"
    );
    ensure!(
        line("pci devices:")
            .first()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0),
        "{name}: hvnode-vdsm listed no PCI device:\n{out}"
    );
    ensure!(
        line("errors:") == ["0"],
        "{name}: hvnode-vdsm answered with errors:\n{out}"
    );
    ensure!(
        line("machines:").first().is_some_and(|m| m.contains("pc-")),
        "{name}: no machine types in the capabilities:\n{out}"
    );
    let events = line("event:");
    ensure!(
        events.contains(&"\"status\":\"Up\"") && events.last() == Some(&"\"status\":\"Down\""),
        "{name}: hvnode-vdsm's VM_status events for a VM started and destroyed: {events:?}\n{out}"
    );
    Ok(())
}

/// No SELinux denial since boot.
pub fn no_avc(c: &mut Console, name: &str) -> Result<()> {
    let avcs = c.run("dmesg | grep 'avc:  denied'", CMD)?.1;
    let count = avcs.lines().filter(|l| l.contains("avc:")).count();
    eprintln!("{name}: {count} AVC denials since boot");
    ensure!(count == 0, "{name}: AVC denials since boot:\n{avcs}");
    Ok(())
}

/// The node's web console as a browser on the node reaches it.
pub const CONSOLE_URL: &str = "https://127.0.0.1:9090";

/// Logs in to the node's web console as the kickstart's admin
/// ([`crate::install::ADMIN_USER`]) with curl inside the guest (PAM, over
/// TLS), after checking that root is refused, and turns on the session's
/// administrative access with the same password (sudo's rules for the
/// `sudo` group allow it); the session's cookie is kept in `/tmp/jar` for
/// [`console_post`]. The login's PAM session must be held by the privileged
/// helper (hvnode-helper.service), not by the web process.
pub fn console_login(c: &mut Console) -> Result<()> {
    let login = |user: &str| {
        format!(
            "curl -sk -c /tmp/jar -o /dev/null -w '%{{http_code}}' -H 'Origin: {CONSOLE_URL}' --data-urlencode username={user} --data-urlencode password={} {CONSOLE_URL}/login",
            crate::install::ROOT_PASSWORD
        )
    };
    let root = c.check(&login("root"), CMD)?;
    ensure!(
        root.trim() == "401",
        "the console's login answered {root} to root's right password (root is refused)"
    );
    let answer = c.check(&login(crate::install::ADMIN_USER), CMD)?;
    ensure!(
        answer.trim().starts_with('3'),
        "the console's login answered {answer}"
    );
    // Every session starts limited (read-only).
    let admin = c.check(
        &console_post(
            "/api/v1/session/admin",
            &format!(
                "--data-urlencode password={}",
                crate::install::ROOT_PASSWORD
            ),
        ),
        CMD,
    )?;
    ensure!(
        admin.trim_end().ends_with("200"),
        "turning on the console session's administrative access answered {admin}"
    );
    // The login's PAM session is the privileged helper's, not the web process's.
    let opened = |unit: &str| {
        format!(
            "journalctl -b -u {unit} -o cat | grep -c 'session opened for user {}' || true",
            crate::install::ADMIN_USER
        )
    };
    let helper = c.check(&opened("hvnode-helper.service"), CMD)?;
    let agent = c.check(&opened("hvnode-agent.service"), CMD)?;
    ensure!(
        helper.trim() != "0" && agent.trim() == "0",
        "the console login's PAM session was opened {} times by hvnode-helper and {} by \
         hvnode-agent (the helper must hold it)",
        helper.trim(),
        agent.trim()
    );
    Ok(())
}

/// A shell command that POSTs to the console's `path` in the session of
/// [`console_login`], with its CSRF token and Origin, `curl_args` added
/// (a body, its type); it prints the answer, then its status code on a
/// line of its own.
pub fn console_post(path: &str, curl_args: &str) -> String {
    console_request("POST", path, curl_args)
}

/// As [`console_post`], with another method (`PUT` for an upload).
pub fn console_request(method: &str, path: &str, curl_args: &str) -> String {
    format!(
        "token=$(curl -sk -b /tmp/jar {CONSOLE_URL}/api/v1/session | sed -n 's/.*\"csrf\" *: *\"\\([^\"]*\\)\".*/\\1/p'); curl -sk -b /tmp/jar -w '\\n%{{http_code}}' -X {method} -H \"X-CSRF-Token: $token\" -H 'Origin: {CONSOLE_URL}' {curl_args} {CONSOLE_URL}{path}"
    )
}
