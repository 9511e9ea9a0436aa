//! An installed node's life after day one, on the thin LVM store: the admin
//! changes `/etc` and `/var`, `nodectl update` applies a v2 built by the
//! test (fetched over http) and signed with the key the customised ISO
//! made the node trust (refused while that key is set aside), the trial
//! boot makes it the default and the merge is checked; a v3 whose console
//! cannot start fails its trial and the node comes back to v2 by itself;
//! `nodectl rollback` returns to v1.
//!
//! Every reboot ends qemu (`-no-reboot`), as a host's power cycle would
//! end its firmware's run; the next boot is a new qemu on the same disk.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use vmtest::release::{self, Changes, Release, TestKey};
use vmtest::{Firmware, Image};

const CMD: Duration = Duration::from_secs(300);
const BOOT: Duration = Duration::from_secs(900);
/// `nodectl update` in a TCG guest: the bundle over http, the new base
/// written into the thin pool, the `/etc` merge.
const UPDATE: Duration = Duration::from_secs(1200);

/// The admin's line in a file the v2 image changes too: a conflict.
const ADMIN_SSHD: &str = "# admin: kept through updates";
const SSHD_CONF: &str = "/etc/ssh/sshd_config.d/hvnode.conf";

/// The two test releases, built while the v1 node installs.
pub struct Releases {
    pub key: TestKey,
    pub v2: Release,
    /// Built only for the scenario that fails a trial.
    pub v3: Option<Release>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Starts building v2 (a changed sshd drop-in, a new file in `/etc` and a
/// new folder in `/var`) and, with `with_v3`, v3 (its agent cannot start; a
/// trial limit of 30 s in `/etc/hvnode/update.toml`), signed with `key`.
pub fn build_releases(dir: &Path, key: TestKey, with_v3: bool) -> JoinHandle<Releases> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let ws = workspace();
        let sshd = std::fs::read_to_string(ws.join("image/files").join(&SSHD_CONF[1..])).unwrap();
        let v2 = Changes {
            release_suffix: ".2".into(),
            files: vec![
                (
                    SSHD_CONF.into(),
                    format!("{sshd}# v2: a line of the image\n"),
                ),
                ("/etc/hvnode/release-note".into(), "v2\n".into()),
                ("/var/lib/hvnode-v2/seed".into(), "v2 seed\n".into()),
            ],
        };
        let t = std::time::Instant::now();
        let v2 = release::build(&ws, &v2, &key, &dir.join("v2")).unwrap();
        eprintln!(
            "update: built {} in {:.0} s",
            v2.nvr,
            t.elapsed().as_secs_f64()
        );
        if !with_v3 {
            return Releases { key, v2, v3: None };
        }
        let v3 = Changes {
            release_suffix: ".3".into(),
            files: vec![
                (
                    "/etc/systemd/system/hvnode-agent.service.d/50-broken.conf".into(),
                    "[Service]\nExecStart=\nExecStart=/bin/false\n".into(),
                ),
                (
                    "/etc/hvnode/update.toml".into(),
                    "[trial]\ncheck_seconds = 30\n".into(),
                ),
            ],
        };
        let t = std::time::Instant::now();
        let v3 = release::build(&ws, &v3, &key, &dir.join("v3")).unwrap();
        eprintln!(
            "update: built {} in {:.0} s",
            v3.nvr,
            t.elapsed().as_secs_f64()
        );
        Releases {
            key,
            v2,
            v3: Some(v3),
        }
    })
}

fn boot(dir: &Path, name: &str, disk: &Path) -> vmtest::install::Installed {
    let log = vmtest::image::serial_log(dir, name);
    let mut node = vmtest::install::boot_installed(Firmware::UefiSecureBoot, disk, &log, BOOT)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}: login prompt after {:.0} s", node.login_prompt);
    // Each layer's entry and grub's one-time entry, through shim and
    // Debian's signed grub.
    super::secure_boot::check_secure_boot(&mut node.vm.console, name);
    super::secure_boot::node_reports_secure_boot(&mut node.vm.console, name, false);
    node
}

fn reboot(node: &mut vmtest::install::Installed, name: &str) {
    node.vm.console.send("systemctl reboot\n").unwrap();
    node.vm
        .wait_exit(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{name}: did not reboot: {e}"));
}

/// `nodectl info --json`.
fn info(c: &mut vmtest::Console) -> serde_json::Value {
    let text = c.check("nodectl info --json", CMD).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("nodectl info --json: {e}: {text}"))
}

/// Waits for the trial unit's verdict on this boot.
fn trial_done(c: &mut vmtest::Console, name: &str) {
    let (rc, out) = c
        .run(
            "timeout 600 sh -c 'until [ \"$(systemctl show -P ActiveState hvnode-trial.service)\" = active ]; do sleep 2; done'; journalctl -b -u hvnode-trial.service --no-pager -o cat | tail -n 5",
            Duration::from_secs(660),
        )
        .unwrap();
    eprintln!("{name}: hvnode-trial.service\n{out}");
    assert_eq!(rc, 0, "{name}: the trial unit did not finish: {out}");
}

fn apply(c: &mut vmtest::Console, name: &str, url: &str) {
    let pool = "lvs --noheadings --units m -o lv_name,lv_tags,data_percent,metadata_percent,lv_size | grep hvnode:pool || true";
    let before = c.check(pool, CMD).unwrap();
    let t = std::time::Instant::now();
    let (rc, out) = c
        .run(
            &format!("nodectl update {url} --yes 2>&1 | tail -n 30; (exit ${{PIPESTATUS[0]}})"),
            UPDATE,
        )
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("{name}: nodectl update\n{out}");
    assert_eq!(rc, 0, "{name}: nodectl update failed:\n{out}");
    // The admin's /etc/hvnode/trusted.d (made by root's shell, unconfined_u)
    // and the image's (system_u) are the same folder to the merge.
    assert!(
        !out.contains("trusted.d ("),
        "{name}: a label's SELinux user reported as a conflict:\n{out}"
    );
    let after = c.check(pool, CMD).unwrap();
    eprintln!(
        "{name}: update took {secs:.0} s; thin pool (name, tags, data %, metadata %, size) before: {} after: {}",
        before.trim(),
        after.trim()
    );
}

/// The admin's changes on v1 that an update must carry over.
fn admin_changes(c: &mut vmtest::Console) {
    c.check(&format!("echo '{ADMIN_SSHD}' >> {SSHD_CONF}"), CMD)
        .unwrap();
    c.check("echo mine > /etc/hvnode/admin-note", CMD).unwrap();
    c.check("useradd -m -u 1500 opsadmin", CMD).unwrap();
    c.check(
        "mkdir -p /var/lib/site && echo node data > /var/lib/site/state",
        CMD,
    )
    .unwrap();
}

/// The admin trusts the test's key (as a kickstart %post can).
fn trust(c: &mut vmtest::Console, key: &TestKey) {
    let public = key.public_text().unwrap();
    c.send(&format!(
        "mkdir -p /etc/hvnode/trusted.d && cat > /etc/hvnode/trusted.d/test.pub <<'HVNODE_EOF'\n{public}HVNODE_EOF\n"
    ))
    .unwrap();
    c.check("test -s /etc/hvnode/trusted.d/test.pub", CMD)
        .unwrap();
}

/// What a passed trial leaves on the v2 node: the running layer and the
/// default, nothing on trial, the admin's changes carried over beside the
/// image's, `nodectl check` OK and no denial.
fn check_v2(c: &mut vmtest::Console, name: &str, v2: &str) {
    trial_done(c, name);
    let i = info(c);
    assert_eq!(i["current_layer"], v2, "{name}: {i}");
    assert_eq!(i["bootloader"]["default"], v2, "{name}: {i}");
    assert!(i["bootloader"]["trial"].is_null(), "{name}: {i}");
    assert_eq!(i["failed_trials"], serde_json::json!([]), "{name}: {i}");
    assert_eq!(
        i["etc_conflicts"],
        serde_json::json!([SSHD_CONF]),
        "{name}: {i}"
    );
    // The merge: both changed → the admin's, the image's beside it.
    let sshd = c.check(&format!("cat {SSHD_CONF}"), CMD).unwrap();
    assert!(
        sshd.contains(ADMIN_SSHD) && !sshd.contains("# v2:"),
        "{name}: {sshd}"
    );
    let new = c.check(&format!("cat {SSHD_CONF}.hvnew"), CMD).unwrap();
    assert!(
        new.contains("# v2:") && !new.contains(ADMIN_SSHD),
        "{name}: {new}"
    );
    // Admin-added file and account kept, the image's new file arrived,
    // /var kept and the image's new path added.
    for (cmd, want) in [
        ("cat /etc/hvnode/admin-note", "mine"),
        ("id -u opsadmin", "1500"),
        ("cat /etc/hvnode/release-note", "v2"),
        ("cat /var/lib/site/state", "node data"),
        ("cat /var/lib/hvnode-v2/seed", "v2 seed"),
    ] {
        assert_eq!(c.check(cmd, CMD).unwrap().trim(), want, "{name}: {cmd}");
    }
    let (rc, report) = c.run("nodectl check", CMD).unwrap();
    assert_eq!(rc, 0, "{name}: nodectl check:\n{report}");
    vmtest::live::no_avc(c, name).unwrap();
}

/// The short scenario for a second store: v2 applied with `nodectl
/// update`, its trial boot passes, the merge is there; then powered off.
pub fn run_v2(
    mut node: vmtest::install::Installed,
    dir: &Path,
    disk: &Path,
    releases: JoinHandle<Releases>,
    name: &str,
) {
    admin_changes(&mut node.vm.console);
    let r = releases.join().expect("building the test release");
    let v2 = format!("{}+1", r.v2.nvr);
    let served = dir.join("served");
    let _ = std::fs::remove_dir_all(&served);
    std::fs::create_dir_all(&served).unwrap();
    for f in [r.v2.bundle.clone(), bundle::signature_path(&r.v2.bundle)] {
        std::os::unix::fs::symlink(&f, served.join(f.file_name().unwrap())).unwrap();
    }
    let http = vmtest::http::Server::start(&served, "/updates/", 0).unwrap();
    let url = format!(
        "http://10.0.2.2:{}/updates/{}",
        http.port,
        r.v2.bundle.file_name().unwrap().to_string_lossy()
    );
    trust(&mut node.vm.console, &r.key);
    apply(&mut node.vm.console, name, &url);
    reboot(&mut node, name);
    drop(http);
    let trial = format!("{name}-trial");
    let mut node = boot(dir, &trial, disk);
    check_v2(&mut node.vm.console, &trial, &v2);
    node.vm.console.send("poweroff\n").unwrap();
    let _ = node.vm.wait_exit(Duration::from_secs(180));
}

/// An update through the node's web console, as an admin's browser does
/// it: a PAM login; the bundle and its signature (fetched into the guest
/// from `url`) uploaded to the agent; the check (`UpdatePlan`) of the
/// uploaded path; then the job, followed to its end. The job's `nodectl`
/// runs in a transient unit: the update's mounts are confined there.
fn console_update(c: &mut vmtest::Console, name: &str, url: &str, layer: &str) {
    let console = vmtest::live::CONSOLE_URL;
    let file = url.rsplit('/').next().unwrap();
    c.check(
        &format!(
            "mkdir -p /var/tmp/dl && curl -sf -o /var/tmp/dl/{file} {url} && curl -sf -o /var/tmp/dl/{file}.minisig {url}.minisig"
        ),
        UPDATE,
    )
    .unwrap();
    vmtest::live::console_login(c).unwrap_or_else(|e| panic!("{name}: {e}"));
    let t = std::time::Instant::now();
    let mut path = String::new();
    for f in [format!("{file}.minisig"), file.to_string()] {
        let put = vmtest::live::console_request(
            "PUT",
            &format!("/api/v1/node/update/upload/{f}"),
            &format!("-T /var/tmp/dl/{f} -H 'Content-Type: application/octet-stream'"),
        );
        let answer = c.check(&put, UPDATE).unwrap();
        assert!(
            answer.trim_end().ends_with("201"),
            "{name}: upload of {f}: {answer}"
        );
        path = format!("/var/lib/hvnode-console/uploads/{f}");
        assert!(
            answer.contains(&format!("\"path\":\"{path}\"")),
            "{name}: {answer}"
        );
    }
    eprintln!(
        "{name}: bundle uploaded to the console in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    c.check("rm -rf /var/tmp/dl", CMD).unwrap();
    let post = |confirm: bool| {
        vmtest::live::console_post(
            "/api/v1/node/update",
            &format!(
                "-H 'Content-Type: application/json' --data '{{\"source\":\"{path}\",\"confirm\":{confirm}}}'"
            ),
        )
    };
    let plan = c.check(&post(false), UPDATE).unwrap();
    assert!(
        plan.trim_end().ends_with("200"),
        "{name}: the check: {plan}"
    );
    assert!(plan.contains("\"kind\":\"UpdatePlan\""), "{name}: {plan}");
    assert!(
        plan.contains(&format!("\"trial\":\"{layer}\"")),
        "{name}: {plan}"
    );
    let started = c.check(&post(true), CMD).unwrap();
    assert!(started.trim_end().ends_with("202"), "{name}: {started}");
    let job = c
        .check(
            &format!(
                "for i in $(seq 600); do j=$(curl -sk -b /tmp/jar {console}/api/v1/node/update); case \"$j\" in *'\"running\":false'*) break;; esac; sleep 2; done; echo \"$j\""
            ),
            UPDATE,
        )
        .unwrap();
    eprintln!("{name}: the console's update job: {job}");
    assert!(job.contains("\"running\":false"), "{name}: {job}");
    assert!(job.contains("\"error\":null"), "{name}: {job}");
    assert!(
        job.contains(&format!("\"trial\":\"{layer}\"")),
        "{name}: {job}"
    );
    let i = info(c);
    assert_eq!(i["bootloader"]["trial"], layer, "{i}");
    vmtest::live::no_avc(c, name).unwrap();
}

/// The update scenario on the booted, logged-in v1 node `node` (its disk
/// `disk`), which trusts the releases' key through `trusted` (the key file
/// the customised ISO put in `/etc/hvnode/trusted.d`); powers the node off
/// at the end.
pub fn run(
    mut node: vmtest::install::Installed,
    dir: &Path,
    disk: &Path,
    img: &Image,
    releases: JoinHandle<Releases>,
    trusted: &str,
) {
    let v1 = format!("{}+1", img.nvr);
    admin_changes(&mut node.vm.console);
    let r = releases.join().expect("building the test releases");
    let r3 = r.v3.clone().expect("v3 was built");
    let (v2, v3) = (format!("{}+1", r.v2.nvr), format!("{}+1", r3.nvr));
    let served = dir.join("served");
    let _ = std::fs::remove_dir_all(&served);
    std::fs::create_dir_all(&served).unwrap();
    for b in [&r.v2.bundle, &r3.bundle] {
        for f in [b.clone(), bundle::signature_path(b)] {
            std::os::unix::fs::symlink(&f, served.join(f.file_name().unwrap())).unwrap();
        }
    }
    let http = vmtest::http::Server::start(&served, "/updates/", 0).unwrap();
    let url = |rel: &Release| {
        format!(
            "http://10.0.2.2:{}/updates/{}",
            http.port,
            rel.bundle.file_name().unwrap().to_string_lossy()
        )
    };
    {
        let c = &mut node.vm.console;
        // Without the key the ISO gave: signed by no trusted key, refused,
        // nothing changed.
        let aside = format!("/root/{}.aside", trusted.rsplit('/').next().unwrap());
        c.check(&format!("mv {trusted} {aside}"), CMD).unwrap();
        let (rc, out) = c
            .run(
                &format!(
                    "nodectl update {} --yes 2>&1 | tail -n 5; (exit ${{PIPESTATUS[0]}})",
                    url(&r.v2)
                ),
                UPDATE,
            )
            .unwrap();
        assert_ne!(
            rc, 0,
            "an update signed by an unknown key was applied: {out}"
        );
        assert!(out.contains("Nothing on the node was changed"), "{out}");
        c.check(&format!("mv {aside} {trusted}"), CMD).unwrap();
        apply(c, "update-v2", &url(&r.v2));
        let i = info(c);
        assert_eq!(i["bootloader"]["trial"], v2.as_str(), "{i}");
        assert_eq!(i["bootloader"]["default"], v1.as_str(), "{i}");
    }
    reboot(&mut node, "update-v2");

    // v2's trial boot: healthy, so it becomes the default.
    let mut node = boot(dir, "update-v2-trial", disk);
    {
        let c = &mut node.vm.console;
        check_v2(c, "update-v2-trial", &v2);
        // v3 from the web console: uploaded, checked (the plan), then
        // applied as the console's job.
        console_update(c, "update-v3", &url(&r3), &v3);
    }
    reboot(&mut node, "update-v3");
    drop(http);

    // v3's trial boot: its console never answers; the node reboots by
    // itself, no one at the console.
    {
        let log = vmtest::image::serial_log(dir, "update-v3-trial");
        let mut cfg = vmtest::Config::new(Firmware::UefiSecureBoot, vmtest::Boot::Disk);
        cfg.disks = vec![disk.to_path_buf()];
        let mut vm = vmtest::Vm::start(&cfg, &log).unwrap();
        vm.wait_exit(BOOT)
            .unwrap_or_else(|e| panic!("update-v3-trial: the node did not reboot by itself: {e}"));
        eprintln!(
            "update-v3-trial: rebooted by itself after {:.0} s",
            vm.uptime()
        );
        // The serial log holds grub's terminal escapes: not all UTF-8.
        let serial = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
        assert!(
            serial.contains(&v3),
            "update-v3-trial: grub did not boot the trial layer (serial log {})",
            log.display()
        );
    }
    let mut node = boot(dir, "update-v3-fallback", disk);
    {
        let c = &mut node.vm.console;
        trial_done(c, "update-v3-fallback");
        let i = info(c);
        assert_eq!(i["current_layer"], v2.as_str(), "{i}");
        assert_eq!(i["bootloader"]["default"], v2.as_str(), "{i}");
        assert!(i["bootloader"]["trial"].is_null(), "{i}");
        let failed = i["failed_trials"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{i}");
        assert_eq!(failed[0]["layer"], v3.as_str(), "{i}");
        let reason = failed[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("port 9090"),
            "the console's failure is named: {reason}"
        );
        let motd = c.check("nodectl motd", CMD).unwrap();
        assert!(
            motd.contains(&format!("FAILED its trial boot: {v3}")),
            "{motd}"
        );
        // Back to v1: the newest older layer (v3 is newer and failed).
        let out = c.check("nodectl rollback --yes", CMD).unwrap();
        assert!(out.contains(&format!("{v1} is the default layer")), "{out}");
        vmtest::live::no_avc(c, "update-v3-fallback").unwrap();
    }
    reboot(&mut node, "rollback");

    let mut node = boot(dir, "rollback-v1", disk);
    {
        let c = &mut node.vm.console;
        let i = info(c);
        assert_eq!(i["current_layer"], v1.as_str(), "{i}");
        assert_eq!(i["bootloader"]["default"], v1.as_str(), "{i}");
        // v1's /etc is as the admin left it.
        let sshd = c.check(&format!("cat {SSHD_CONF}"), CMD).unwrap();
        assert!(sshd.contains(ADMIN_SSHD), "{sshd}");
        c.check(&format!("test ! -e {SSHD_CONF}.hvnew"), CMD)
            .unwrap();
        let (rc, report) = c.run("nodectl check", CMD).unwrap();
        assert_eq!(rc, 0, "rollback-v1: nodectl check:\n{report}");
        vmtest::live::no_avc(c, "rollback-v1").unwrap();
        c.send("poweroff\n").unwrap();
    }
    let _ = node.vm.wait_exit(Duration::from_secs(180));
}
