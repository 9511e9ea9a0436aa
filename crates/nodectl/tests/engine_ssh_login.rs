//! The engine's next step after registration, played for real: `sshd` on a loopback
//! port trusts the scratch tree's `authorized_keys`, and the engine's key logs in,
//! checking the node's host key against the fingerprint that registration sent.
//!
//! Needs root, `/usr/sbin/sshd`, `ssh` and `ssh-keygen` (tests/deps.sh installs them);
//! skipped with a message where they are missing, a failure in CI (`hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_engine::TestEngine;

const SSHD: &str = "/usr/sbin/sshd";

/// Kills the `sshd` this test started when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn keygen(path: &Path, comment: &str) -> String {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path));
    fs::read_to_string(path.with_extension("pub")).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// sshd's StrictModes refuses paths under group- or world-writable directories.
fn ancestors_are_private(path: &Path) -> bool {
    path.ancestors()
        .all(|p| fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.permissions().mode() & 0o022 == 0))
}

fn ssh_login(key: &Path, port: u16, known_hosts: &Path) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .arg("-p")
        .arg(port.to_string())
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["root@127.0.0.1", "echo engine-login-ok"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn engine_key_logs_in_after_registration() {
    if !(hvnode_testutil::require_root()
        && hvnode_testutil::require_path(Path::new(SSHD))
        && hvnode_testutil::require_tools(&["ssh", "ssh-keygen"]))
    {
        return;
    }
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sysroot = base.path().join("sysroot");
    fs::create_dir_all(sysroot.join("etc/ssh")).unwrap();
    fs::write(
        sysroot.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();

    let engine_key = base.path().join("engine_key");
    let engine_pub = keygen(&engine_key, "ovirt-engine");
    let host_key = base.path().join("host_key");
    let host_pub = keygen(&host_key, "root@node");
    fs::write(sysroot.join("etc/ssh/ssh_host_ed25519_key.pub"), &host_pub).unwrap();

    let engine = TestEngine::builder().ssh_public_key(&engine_pub).start();
    let ssh_port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(["register", "--engine-fqdn", "127.0.0.1", "--engine-port"])
        .arg(engine.port().to_string())
        .args(["--fingerprint", &engine.ca_sha256_hex(), "--ssh-port"])
        .arg(ssh_port.to_string())
        .arg("--sysroot")
        .arg(&sysroot)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The fingerprint sent is the one ssh-keygen prints for the host key.
    let listed = run(Command::new("ssh-keygen")
        .arg("-lf")
        .arg(host_key.with_extension("pub")));
    let listed = String::from_utf8_lossy(&listed.stdout);
    let expected = listed.split_whitespace().nth(1).unwrap();
    let hosts = engine.hosts();
    let host = hosts.values().next().unwrap();
    assert_eq!(host.param("sshKeyFingerprint"), Some(expected));
    assert_eq!(host.param("sshPort"), Some(ssh_port.to_string().as_str()));

    // Play the engine: sshd trusting the scratch authorized_keys.
    fs::create_dir_all("/run/sshd").unwrap();
    let authorized = sysroot.join("root/.ssh/authorized_keys");
    let strict = ancestors_are_private(&authorized);
    let config = base.path().join("sshd_config");
    fs::write(
        &config,
        format!(
            "Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
             AuthorizedKeysFile {}\nStrictModes {}\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\n",
            host_key.display(),
            base.path().join("sshd.pid").display(),
            authorized.display(),
            if strict { "yes" } else { "no" },
        ),
    )
    .unwrap();
    let daemon = Daemon(
        Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", ssh_port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }

    let known_hosts = base.path().join("known_hosts");
    fs::write(&known_hosts, format!("[127.0.0.1]:{ssh_port} {host_pub}")).unwrap();
    let login = ssh_login(&engine_key, ssh_port, &known_hosts);
    assert!(
        login.status.success(),
        "engine login failed (StrictModes {strict}): {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&login.stdout).trim(),
        "engine-login-ok"
    );

    // A key the engine did not serve does not get in: sshd really reads that file.
    let stranger = base.path().join("stranger_key");
    keygen(&stranger, "stranger");
    let refused = ssh_login(&stranger, ssh_port, &known_hosts);
    assert!(!refused.status.success());
    drop(daemon);
}
