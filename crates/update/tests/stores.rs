//! `update` end to end on real btrfs and plain (XFS) stores on loop
//! devices: the new base and layer, the merged `/etc`, the `/var`
//! additions, the kernel, the boot menu and the trial; and, with a
//! failpoint at each step, a node left exactly as it was (store, `/boot`,
//! root, mounts). Needs root and loop devices (skipped with a message
//! otherwise; a failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::fs;
use std::os::unix::fs::MetadataExt;

use layers::boot;
use layers::status::parse_grub_cfg;
use update::{Failpoint, Recorded, State, Step, UpdateError};

mod common;

use common::{Fixture, IMAGE_ID, Kind, NEW, NODE_ID, OLD};

fn yes(_: &update::Plan) -> bool {
    true
}

// Longer than the workspace's 120 lines on purpose: one update on one store, and every
// outcome of it checked in the order a node would see it.
fn updates_and_arms_a_trial(kind: Kind) {
    let Some(fx) = Fixture::new(kind) else { return };
    // A work folder an interrupted update left behind.
    let stale = fx.node.scratch.join(".update-stale/bundle");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("half.img"), b"half").unwrap();
    let mut progress = Recorded::default();
    let out = update::update(&fx.node, &fx.options(), &mut yes, &mut progress).unwrap();
    assert!(
        progress
            .0
            .iter()
            .any(|e| e.message.contains("left by an interrupted update")),
        "the stale work folder was not reported"
    );
    let new_layer = format!("{NEW}+1");
    let old_layer = format!("{OLD}+1");

    // The store: the new base and layer beside the old ones.
    let inv = fx.node.store.store().inventory().unwrap();
    assert_eq!(inv.bases.len(), 2);
    assert_eq!(
        inv.layers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [old_layer.clone(), new_layer.clone()]
    );
    // /etc: merged into the new layer.
    let layer = fx.top().join(format!("hvnode/layers/{new_layer}"));
    let etc = |p: &str| fs::read_to_string(layer.join("etc").join(p)).ok();
    assert_eq!(
        etc("hostname").as_deref(),
        Some("node1\n"),
        "admin-only change kept"
    );
    assert_eq!(
        etc("untouched.conf").as_deref(),
        Some("a=2\n"),
        "untouched: new image's"
    );
    assert_eq!(
        etc("motd").as_deref(),
        Some("admin motd\n"),
        "both changed: admin's"
    );
    assert_eq!(
        etc("motd.hvnew").as_deref(),
        Some("motd 2\n"),
        "…and the image's beside"
    );
    assert_eq!(
        etc("admin.conf").as_deref(),
        Some("mine\n"),
        "admin-added kept"
    );
    assert_eq!(etc("deleted.conf"), None, "admin-deleted stays deleted");
    assert_eq!(etc("new-in-image.conf").as_deref(), Some("new\n"));
    assert!(!layer.join(".etc.merged").exists() && !layer.join(".etc.image").exists());
    assert_eq!(out.merge.conflicts.len(), 1, "{:?}", out.merge.conflicts);
    // fstab's root follows the layer where it names it (btrfs).
    let fstab = etc("fstab").unwrap();
    assert_eq!(out.fstab_root_retargeted, kind == Kind::Btrfs, "{fstab}");
    assert!(!fstab.contains(&old_layer), "{fstab}");
    // The old layer's /etc (the running one here) is untouched.
    assert_eq!(
        fs::read_to_string(fx.node.root.join("etc/motd")).unwrap(),
        "admin motd\n"
    );
    // /var: the new path added, the node's data kept.
    let var = fx.node.root.join("var");
    assert_eq!(
        fs::read_to_string(var.join("lib/newapp/seed")).unwrap(),
        "seed\n"
    );
    assert_eq!(
        fs::read_to_string(var.join("lib/app/state")).unwrap(),
        "node data\n"
    );
    assert_eq!(out.var_added, [std::path::PathBuf::from("lib/newapp")]);
    // The new account got a free id; its files in the layer and in /var
    // follow, set-id bit kept.
    let passwd = etc("passwd").unwrap();
    assert!(passwd.contains("alice:x:995:995:"), "{passwd}");
    assert!(
        passwd.contains(&format!("newsvc:x:{NODE_ID}:{NODE_ID}:")),
        "{passwd}"
    );
    let tool = fs::metadata(layer.join("usr/lib/newsvc/tool")).unwrap();
    assert_eq!((tool.uid(), tool.gid()), (NODE_ID, NODE_ID));
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    let seed = fs::metadata(var.join("lib/newapp/seed")).unwrap();
    assert_eq!((seed.uid(), seed.gid()), (NODE_ID, NODE_ID));
    assert_ne!(IMAGE_ID, NODE_ID);
    // /boot: the kernel, both entries, the trial armed, the default kept.
    let b = &fx.node.boot;
    assert_eq!(
        fs::read_to_string(b.join(format!("{new_layer}/vmlinuz"))).unwrap(),
        "kernel 2\n"
    );
    assert_eq!(
        fs::read_to_string(b.join(format!("{new_layer}/initrd.img"))).unwrap(),
        "initrd 2\n"
    );
    let entries = parse_grub_cfg(&fs::read_to_string(b.join("grub/grub.cfg")).unwrap());
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [old_layer.as_str(), new_layer.as_str()]
    );
    let new_args = &entries[1].args;
    assert!(
        new_args.contains(&new_layer) && new_args.ends_with("console=ttyS0"),
        "{new_args}"
    );
    let env = boot::read_env(b).unwrap();
    assert!(
        env.contains(&("next_entry".into(), new_layer.clone())),
        "{env:?}"
    );
    assert!(
        env.contains(&("saved_entry".into(), old_layer.clone())),
        "{env:?}"
    );
    assert!(
        env.contains(&(boot::TRIAL_KEY.into(), new_layer.clone())),
        "the layer is on trial: {env:?}"
    );
    // The conflicts are kept in the shared /var for `nodectl info` on the
    // new layer.
    let record = layers::history::History::at(&var.join("lib/hvnode"))
        .update(&new_layer)
        .unwrap()
        .expect("the update's record");
    assert_eq!(record.etc_conflicts, ["/etc/motd"]);
    assert_eq!(record.from, old_layer);
    assert_eq!(
        layers::history::open_conflicts(&record, &layer),
        ["/etc/motd"],
        "open while motd.hvnew is there"
    );
    // Progress: every step started and ended, in order; nothing left over.
    let done: Vec<Step> = progress
        .0
        .iter()
        .filter(|e| e.state == Some(State::Done))
        .filter_map(|e| e.step)
        .collect();
    assert_eq!(done, Step::ALL);
    assert!(
        !fx.top().join("hvnode/.update").exists(),
        "scratch left behind"
    );
    // The JSON result carries the merge report.
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["merge"]["conflicts"][0]["path"], "motd");
    assert_eq!(json["plan"]["trial"], new_layer);

    // The same bundle again is refused, and changes nothing.
    let before = fx.state();
    let e =
        update::update(&fx.node, &fx.options(), &mut yes, &mut Recorded::default()).unwrap_err();
    assert!(matches!(e, UpdateError::Refused(_)), "{e}");
    assert!(e.to_string().contains("already in the store"), "{e}");
    assert_eq!(fx.state(), before);

    // The new layer passed its trial: with one image to keep, the old one
    // goes with its layer, kernel folder, boot entry and record.
    collects_the_old_image(&fx, &old_layer, &new_layer);
}

fn collects_the_old_image(fx: &Fixture, old_layer: &str, new_layer: &str) {
    let b = &fx.node.boot;
    let history = layers::history::History::at(&fx.node.root.join("var/lib/hvnode"));
    let new: layers::LayerName = new_layer.parse().unwrap();
    let protected = update::gc::Protected {
        booted: Some(new.clone()),
        default: Some(new.clone()),
        trial: None,
    };
    let store = fx.node.store.store();
    let plan = update::gc::plan_gc(
        &store.inventory().unwrap(),
        &protected,
        1,
        &Default::default(),
    );
    assert_eq!(plan.remove.len(), 1, "{plan:?}");
    let removed = update::gc::apply_gc(&plan, store, b, &history).unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    let inv = store.inventory().unwrap();
    assert_eq!(inv.bases, std::slice::from_ref(&new.base));
    assert_eq!(inv.layers, std::slice::from_ref(&new));
    assert!(!b.join(old_layer).exists(), "the old kernel folder is gone");
    assert!(b.join(new_layer).join("vmlinuz").is_file());
    let entries = parse_grub_cfg(&fs::read_to_string(b.join("grub/grub.cfg")).unwrap());
    assert_eq!(
        entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [new_layer]
    );
    assert!(
        history.update(new_layer).unwrap().is_some(),
        "the kept layer's record stays"
    );
}

#[test]
fn btrfs_updates_and_arms_a_trial() {
    updates_and_arms_a_trial(Kind::Btrfs);
}

#[test]
fn plain_updates_and_arms_a_trial() {
    updates_and_arms_a_trial(Kind::Plain);
}

/// A failure at `step` leaves the node exactly as it was.
fn failure_leaves_the_node_as_it_was(kind: Kind, step: Step) {
    let Some(fx) = Fixture::new(kind) else { return };
    let before = fx.state();
    let mut opts = fx.options();
    opts.failpoint = Failpoint::fail(step);
    let mut progress = Recorded::default();
    let e = update::update(&fx.node, &opts, &mut yes, &mut progress).unwrap_err();
    assert!(e.node_unchanged(), "{e}");
    assert!(e.to_string().contains("failpoint"), "{e}");
    if step >= Step::Base {
        assert!(
            matches!(e, UpdateError::RolledBack { step: s, .. } if s == step),
            "{e}"
        );
    }
    assert_eq!(fx.state(), before, "after a failure at {step}");
    let failed: Vec<Step> = progress
        .0
        .iter()
        .filter(|e| e.state == Some(State::Failed))
        .filter_map(|e| e.step)
        .collect();
    assert_eq!(failed, [step]);
}

/// An update killed at `step` takes nothing back itself; its journal
/// does, and the node is then exactly as it was; the next update works.
fn a_killed_update_is_taken_back_from_its_journal(kind: Kind, step: Step) {
    let Some(fx) = Fixture::new(kind) else { return };
    let before = fx.state();
    let mut opts = fx.options();
    opts.failpoint = Failpoint::crash(step);
    let e = update::update(&fx.node, &opts, &mut yes, &mut Recorded::default()).unwrap_err();
    assert!(
        matches!(e, UpdateError::Crashed { step: s } if s == step),
        "{e}"
    );
    assert!(!e.node_unchanged());
    assert!(fx.node.journal().is_file(), "the journal stays");
    assert_ne!(fx.state(), before, "a kill at {step} leaves its changes");
    let mut progress = Recorded::default();
    let r = update::recover(
        &fx.node.journal(),
        &fx.node.current_layer,
        fx.node.store.store(),
        &mut progress,
    )
    .unwrap();
    assert!(
        matches!(&r, update::Recovered::TakenBack { left, .. } if left.is_empty()),
        "{r:?}"
    );
    assert_eq!(fx.state(), before, "after taking back a kill at {step}");
    // A second kill, then the next update takes it back itself and goes on.
    update::update(&fx.node, &opts, &mut yes, &mut Recorded::default()).unwrap_err();
    let mut progress = Recorded::default();
    update::update(&fx.node, &fx.options(), &mut yes, &mut progress).unwrap();
    assert!(
        progress
            .0
            .iter()
            .any(|e| e.message.contains("was taken back")),
        "{:?}",
        progress.0
    );
    assert!(
        !fx.node.journal().exists(),
        "the journal goes with a success"
    );
}

macro_rules! kills {
    ($($name:ident: $kind:expr, $step:expr;)*) => {$(
        #[test]
        fn $name() {
            a_killed_update_is_taken_back_from_its_journal($kind, $step);
        }
    )*};
}

kills! {
    btrfs_killed_at_base: Kind::Btrfs, Step::Base;
    btrfs_killed_at_layer: Kind::Btrfs, Step::Layer;
    btrfs_killed_at_etc_merge: Kind::Btrfs, Step::EtcMerge;
    btrfs_killed_at_var: Kind::Btrfs, Step::Var;
    btrfs_killed_at_labels: Kind::Btrfs, Step::Labels;
    btrfs_killed_at_kernel: Kind::Btrfs, Step::Kernel;
    btrfs_killed_at_boot_entry: Kind::Btrfs, Step::BootEntry;
    btrfs_killed_at_trial: Kind::Btrfs, Step::Trial;
    plain_killed_at_base: Kind::Plain, Step::Base;
    plain_killed_at_layer: Kind::Plain, Step::Layer;
    plain_killed_at_etc_merge: Kind::Plain, Step::EtcMerge;
    plain_killed_at_var: Kind::Plain, Step::Var;
    plain_killed_at_labels: Kind::Plain, Step::Labels;
    plain_killed_at_kernel: Kind::Plain, Step::Kernel;
    plain_killed_at_boot_entry: Kind::Plain, Step::BootEntry;
    plain_killed_at_trial: Kind::Plain, Step::Trial;
}

macro_rules! failpoints {
    ($($name:ident: $kind:expr, $step:expr;)*) => {$(
        #[test]
        fn $name() {
            failure_leaves_the_node_as_it_was($kind, $step);
        }
    )*};
}

failpoints! {
    btrfs_fails_at_verify: Kind::Btrfs, Step::Verify;
    btrfs_fails_at_open: Kind::Btrfs, Step::Open;
    btrfs_fails_at_space: Kind::Btrfs, Step::Space;
    btrfs_fails_at_base: Kind::Btrfs, Step::Base;
    btrfs_fails_at_layer: Kind::Btrfs, Step::Layer;
    btrfs_fails_at_etc_merge: Kind::Btrfs, Step::EtcMerge;
    btrfs_fails_at_var: Kind::Btrfs, Step::Var;
    btrfs_fails_at_labels: Kind::Btrfs, Step::Labels;
    btrfs_fails_at_kernel: Kind::Btrfs, Step::Kernel;
    btrfs_fails_at_boot_entry: Kind::Btrfs, Step::BootEntry;
    btrfs_fails_at_trial: Kind::Btrfs, Step::Trial;
    plain_fails_at_verify: Kind::Plain, Step::Verify;
    plain_fails_at_open: Kind::Plain, Step::Open;
    plain_fails_at_space: Kind::Plain, Step::Space;
    plain_fails_at_base: Kind::Plain, Step::Base;
    plain_fails_at_layer: Kind::Plain, Step::Layer;
    plain_fails_at_etc_merge: Kind::Plain, Step::EtcMerge;
    plain_fails_at_var: Kind::Plain, Step::Var;
    plain_fails_at_labels: Kind::Plain, Step::Labels;
    plain_fails_at_kernel: Kind::Plain, Step::Kernel;
    plain_fails_at_boot_entry: Kind::Plain, Step::BootEntry;
    plain_fails_at_trial: Kind::Plain, Step::Trial;
}

#[test]
fn a_bundle_signed_by_an_unknown_key_changes_nothing() {
    let Some(fx) = Fixture::new(Kind::Plain) else {
        return;
    };
    let before = fx.state();
    let mut opts = fx.options();
    let other = fx.dir().join("other-keys");
    fs::create_dir_all(&other).unwrap();
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    fs::write(
        other.join("other.pub"),
        kp.pk.to_box().unwrap().into_string(),
    )
    .unwrap();
    opts.trusted_keys = other;
    let e = update::update(&fx.node, &opts, &mut yes, &mut Recorded::default()).unwrap_err();
    assert!(matches!(e, UpdateError::Refused(_)), "{e}");
    assert!(
        e.to_string().contains("Nothing on the node was changed"),
        "{e}"
    );
    assert_eq!(fx.state(), before);
}

#[test]
fn saying_no_to_the_plan_changes_nothing() {
    let Some(fx) = Fixture::new(Kind::Btrfs) else {
        return;
    };
    let before = fx.state();
    let mut seen = None;
    let mut no = |p: &update::Plan| {
        seen = Some(p.new_layer.to_string());
        false
    };
    let e = update::update(&fx.node, &fx.options(), &mut no, &mut Recorded::default()).unwrap_err();
    assert!(matches!(e, UpdateError::Cancelled), "{e}");
    assert_eq!(seen, Some(format!("{NEW}+1")));
    assert_eq!(fx.state(), before);
}

/// Serves the files of `dir` over HTTP on localhost for `requests`
/// requests; returns the base URL.
fn serve(dir: std::path::PathBuf, requests: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches('/');
            match fs::read(dir.join(name)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(&body).unwrap();
                }
                Err(_) => stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap(),
            }
        }
    });
    url
}

#[test]
fn a_bundle_from_a_url_is_fetched_with_its_signature() {
    let Some(fx) = Fixture::new(Kind::Plain) else {
        return;
    };
    let url = serve(fx.bundle.parent().unwrap().to_path_buf(), 2);
    let mut opts = fx.options();
    opts.source = format!("{url}/{NEW}.update.tar");
    let out = update::update(&fx.node, &opts, &mut yes, &mut Recorded::default()).unwrap();
    assert_eq!(out.plan.new_layer.to_string(), format!("{NEW}+1"));
    assert!(out.signed_by.is_some());
    assert!(
        !fx.top().join("hvnode/.update").exists(),
        "the download was left behind"
    );
}

/// A small ext4 file system mounted in place of the fixture's `/boot`,
/// unmounted when dropped.
struct SmallBoot(std::path::PathBuf);

impl Drop for SmallBoot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

#[test]
fn a_full_boot_is_refused_with_its_numbers_before_any_change() {
    let Some(mut fx) = Fixture::new(Kind::Btrfs) else {
        return;
    };
    let img = fx.dir().join("boot.img");
    fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    common::sh(
        std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img),
    );
    let small = fx.dir().join("small-boot");
    fs::create_dir_all(&small).unwrap();
    common::sh(
        std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&small),
    );
    let _guard = SmallBoot(small.clone());
    common::sh(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", fx.node.boot.display()))
            .arg(&small),
    );
    fx.node.boot = small;
    let before = fx.state();
    let e =
        update::update(&fx.node, &fx.options(), &mut yes, &mut Recorded::default()).unwrap_err();
    assert!(matches!(e, UpdateError::Refused(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/boot needs 1.0 MiB") && msg.contains("is free"),
        "{msg}"
    );
    assert_eq!(fx.state(), before);
}

#[test]
fn progress_as_json_lines_names_every_step_and_carries_the_plan() {
    let Some(fx) = Fixture::new(Kind::Plain) else {
        return;
    };
    let mut out = update::JsonLines(Vec::new());
    update::update(&fx.node, &fx.options(), &mut yes, &mut out).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.0)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for step in Step::ALL {
        for state in ["start", "done"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l["step"] == step.name() && l["state"] == state),
                "no {state} of {step}"
            );
        }
    }
    let plan = lines
        .iter()
        .find_map(|l| l.get("details").and_then(|d| d.get("plan")))
        .expect("no plan event");
    assert_eq!(plan["new_layer"], format!("{NEW}+1"));
    assert_eq!(plan["default"], format!("{OLD}+1"));
    assert_eq!(plan["space"].as_array().unwrap().len(), 2);
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .unwrap()
            .starts_with("conflict: /etc/motd")
    }));
}
