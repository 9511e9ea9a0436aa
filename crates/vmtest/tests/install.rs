//! The node image end to end in qemu (TCG): every medium it ships for
//! boots, hvnode-install installs each store from each kickstart source,
//! and the installed disks boot on both firmwares. One boot serves many
//! checks; the boots are shared out so that each medium, firmware, store
//! and kickstart source is proven once:
//!
//! | test | boots from | kickstart | store | installed disk boots on |
//! |---|---|---|---|---|
//! | thin | CD customised by `hvnode iso customize`, on OVMF (Secure Boot), default entry | embedded in the ISO | thin LVM | SeaBIOS and OVMF (Secure Boot), then updated (below) |
//! | btrfs | USB on OVMF (Secure Boot), default entry | OEMDRV, image over http | btrfs | SeaBIOS |
//! | plain | PXE on SeaBIOS (TFTP, iPXE) | `inst.ks=http://` | plain XFS | OVMF (Secure Boot) |
//! | live | CD on SeaBIOS, "Start hvnode live" | typed in the live shell | thin (explicit layout), btrfs (interactive hub) | — |
//! | secure boot | PXE on OVMF (Secure Boot): shim, signed network grub over TFTP | — | — | — |
//!
//! Every OVMF boot has Secure Boot enforced with Microsoft's keys
//! enrolled, as servers ship (`install/secure_boot.rs`): shim, Debian's
//! signed grub and kernel; each installed node booted so reports it
//! (`mokutil --sb-state`, the kernel's lockdown), and the installs from
//! the CD and the USB disk show it on the installer's serial console. The
//! secure boot test also boots the ISO's UEFI image with an unsigned grub
//! in shim's place, which the same firmware refuses.
//!
//! - thin: the ISO is booted alone (no OEMDRV disk, no `inst.ks=`); the
//!   node has the ISO's trusted key and engine; the disk becomes a
//!   compressed qcow2 (`hvnode build --qcow2`), which is what boots; then
//!   the node is updated (signed with the ISO's key) to a v2 and a v3 built
//!   by the test, and rolled back (`install/update.rs`): the /etc merge, a
//!   trial boot that passes, one that fails and falls back by itself;
//! - btrfs: the live system then has both kinds of loop-mounted image whose
//!   backing files mkfs.btrfs looks at (the medium's, on iso9660, and the
//!   downloaded one), as the installer's service sees them;
//! - plain: the shipped PXE script with `inst.ks=http://…` (served on this
//!   machine's loopback, reached through qemu's user-mode network),
//!   `liveimg --url=http://…`; its layers are reflinked folders of an XFS
//!   partition;
//! - live: the live system as a node must be (SELinux enforcing, libvirt's
//!   selinux model, the hvnode units, no AVC denial), then failures from
//!   its shell: a disk too small, a wrong checksum, an explicit layout, an
//!   interactive reinstall over it, a `%post --erroronfail` that fails.
//!
//! Each installed disk shows, from inside, the layered root: the read-only
//! base and its `+1` layer, the separate volumes mounted with discard,
//! SELinux enforcing, the kickstart's settings and %post applied, `nodectl
//! check` OK, no AVC denial since boot, and none in the live installer's
//! kernel log (kept by the test kickstart's %post). Every boot that reaches
//! a shell keeps `systemd-analyze` text and plot (SVG) beside its serial
//! log under `$CARGO_TARGET_TMPDIR/install/`.
//!
//! Needs the image (`HVNODE_IMAGE_DIR`, the output folder of `hvnode
//! build`, set by `tests/run-tests.sh`); skipped without it, a failure then
//! in CI (`CI=true`, or `HVNODE_REQUIRE_IMAGE=1` as `tests/run-tests.sh`
//! sets; see `hvnode_testutil`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vmtest::install::{HOSTNAME, Unattended};

#[path = "install/secure_boot.rs"]
mod secure_boot;
#[path = "install/update.rs"]
mod update;
use vmtest::{Boot, Config, Firmware, Image, Vm};

const BOOT: Duration = Duration::from_secs(900);
const INSTALL: Duration = Duration::from_secs(1200);
const CMD: Duration = Duration::from_secs(300);
/// The separate volumes of an autopart layout.
const SEPARATE: [&str; 7] = [
    "/var",
    "/var/log",
    "/var/log/audit",
    "/var/tmp",
    "/var/crash",
    "/home",
    "/tmp",
];

/// The image of `HVNODE_IMAGE_DIR`; `None` (skipped, with the reason) when it
/// is not set, a failure in CI (`hvnode_testutil`).
fn image() -> Option<Image> {
    let dir = hvnode_testutil::require_env(
        "HVNODE_IMAGE_DIR",
        "build the image with `make image`; tests/run-tests.sh does",
    )?;
    Some(Image::open(Path::new(&dir)).unwrap())
}

fn work_dir(name: &str) -> PathBuf {
    vmtest::image::work_dir(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &format!("install/{name}"),
    )
    .unwrap()
}

/// The test kickstart, checked: it must be valid, or the guest would wait
/// for nobody.
fn kickstart(u: &Unattended) -> String {
    let ks = u.kickstart();
    let parse = kickstart::parse_str("test.ks", &ks, &kickstart::source::FsLoader);
    assert!(parse.is_valid(), "{:?}", parse.diagnostics);
    let (_, diags) = kickstart::node::plan(&parse.kickstart);
    assert!(
        !diags
            .iter()
            .any(|d| d.severity == kickstart::Severity::Error),
        "{diags:?}"
    );
    ks
}

/// Powers the guest off and waits for qemu to end.
fn poweroff(vm: &mut Vm) {
    vm.console.send("poweroff\n").unwrap();
    let _ = vm.wait_exit(Duration::from_secs(180));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Thin,
    Btrfs,
    Plain,
}

/// Boots the installed disk, logs in as root, and checks the node; the
/// node is left running, logged in.
fn boot_installed(
    dir: &Path,
    name: &str,
    firmware: Firmware,
    target: &Path,
    img: &Image,
    store: Store,
) -> vmtest::install::Installed {
    let log = vmtest::image::serial_log(dir, name);
    // grub's password at the menu, once on each firmware: the btrfs node
    // on SeaBIOS, the plain one on OVMF.
    let grub_password = matches!(store, Store::Btrfs | Store::Plain);
    let mut node =
        vmtest::install::boot_installed_with(firmware, target, &log, BOOT, grub_password)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    let c = &mut node.vm.console;
    eprintln!("{name}: login prompt after {:.0} s", node.login_prompt);
    vmtest::live::boot_finished(c, dir, name, BOOT).unwrap();
    // The live installer's kernel log, kept by the test kickstart's %post:
    // the installer's service ran without a denial.
    let installer_avcs = c
        .check(
            "grep -c 'avc:  denied' /var/log/hvnode/install-dmesg.log || true",
            CMD,
        )
        .unwrap();
    assert_eq!(
        installer_avcs.trim(),
        "0",
        "{name}: SELinux denials while installing: {}",
        c.check("grep 'avc:  denied' /var/log/hvnode/install-dmesg.log", CMD)
            .unwrap_or_default()
    );
    let layer = format!("{}+1", img.nvr);
    match store {
        Store::Thin => check_thin(c, name, img, &layer),
        Store::Btrfs => check_btrfs(c, name, img, &layer),
        Store::Plain => check_plain(c, name, img, &layer),
    }
    assert_eq!(
        c.check("getenforce", CMD).unwrap().trim(),
        "Enforcing",
        "{name}"
    );
    assert_eq!(c.check("hostname", CMD).unwrap().trim(), HOSTNAME, "{name}");
    assert_eq!(
        c.check("cat /etc/hvnode-post-ran", CMD).unwrap().trim(),
        format!("post ran in {HOSTNAME}"),
        "{name}: %post"
    );
    assert!(
        c.check("readlink /etc/localtime", CMD)
            .unwrap()
            .contains("Europe/Paris"),
        "{name}: timezone"
    );
    c.check("test -s /var/log/hvnode/install.log", CMD).unwrap();
    // The kickstart's `bootloader --password`: grub's password as a PBKDF2
    // hash in user.cfg, root's alone, never in the clear anywhere in /boot
    // or in the logs; the node booted through grub's menu without it.
    assert_eq!(
        c.check(
            "stat -c '%a %U' /boot/grub/user.cfg; cut -c1-34 /boot/grub/user.cfg; \
             grep -c superusers /boot/grub/grub.cfg",
            CMD
        )
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["600", "root", "GRUB2_PASSWORD=grub.pbkdf2.sha512.", "2"],
        "{name}: the boot loader password"
    );
    let leaked = c
        .check(
            &format!(
                "grep -rlF '{}' /boot /var/log/hvnode /etc 2>/dev/null || true",
                vmtest::install::GRUB_PASSWORD
            ),
            CMD,
        )
        .unwrap();
    assert!(
        leaked.trim().is_empty(),
        "{name}: the boot loader password in the clear in {leaked}"
    );
    assert_eq!(
        c.check("stat -c '%a' /var/log/hvnode/install.log", CMD)
            .unwrap()
            .trim(),
        "600",
        "{name}: the install log is root's alone"
    );
    // The kickstart's `user --groups=sudo`.
    let groups = c
        .check(&format!("id -nG {}", vmtest::install::ADMIN_USER), CMD)
        .unwrap();
    assert!(
        groups.split_whitespace().any(|g| g == "sudo"),
        "{name}: the kickstart's admin: {groups}"
    );
    assert_eq!(
        c.check(
            "systemctl is-active libvirtd.service hvnode-agent.service",
            CMD
        )
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["active", "active"],
        "{name}"
    );
    if firmware.is_uefi() {
        c.check("test -d /sys/firmware/efi", CMD).unwrap();
    }
    if firmware == Firmware::UefiSecureBoot {
        secure_boot::check_secure_boot(c, name);
        secure_boot::node_reports_secure_boot(c, name, true);
    }
    let (rc, report) = c.run("nodectl check", CMD).unwrap();
    eprintln!("{name}: nodectl check\n{report}");
    assert_eq!(rc, 0, "{name}: nodectl check failed:\n{report}");
    let info = c.check("nodectl info --json", CMD).unwrap();
    assert!(
        info.contains(&format!("\"current_layer\": \"{layer}\"")),
        "{name}: {info}"
    );
    // The console's "Boot this layer next time" (the update that follows
    // arms its trial in the same grub variable).
    if store == Store::Thin {
        console_boot_next(c, name, &layer);
    }
    vmtest::live::no_avc(c, name).unwrap();
    node
}

/// The node's web console, as an admin's browser uses it (PAM login over
/// TLS, the session's CSRF token): the Node page's layers, and "Boot this
/// layer next time", which sets grub's one-time entry.
fn console_boot_next(c: &mut vmtest::Console, name: &str, layer: &str) {
    let url = vmtest::live::CONSOLE_URL;
    vmtest::live::console_login(c).unwrap_or_else(|e| panic!("{name}: {e}"));
    let node = c
        .check(&format!("curl -sk -b /tmp/jar {url}/api/v1/node"), CMD)
        .unwrap();
    assert!(
        node.contains(&format!("\"current_layer\":\"{layer}\""))
            || node.contains(&format!("\"current_layer\": \"{layer}\"")),
        "{name}: the console's Node data: {node}"
    );
    let answer = c
        .check(
            &vmtest::live::console_post(&format!("/api/v1/node/layers/{layer}/boot-next"), ""),
            CMD,
        )
        .unwrap();
    assert!(
        answer.trim_end().ends_with("200"),
        "{name}: boot-next: {answer}"
    );
    let env = c
        .check("grub-editenv /boot/grub/grubenv list", CMD)
        .unwrap();
    assert!(
        env.lines().any(|l| l == format!("next_entry={layer}")),
        "{name}: grubenv after boot-next:\n{env}"
    );
}

/// The root is the writable layer, a thin snapshot of the read-only base;
/// the separate volumes are thin volumes mounted with discard.
fn check_thin(c: &mut vmtest::Console, name: &str, img: &Image, layer: &str) {
    let root = c.check("findmnt -rno SOURCE /", CMD).unwrap();
    assert_eq!(
        root.trim(),
        format!("/dev/mapper/hvnode-{}", layer.replace('-', "--")),
        "{name}"
    );
    let lvs = c
        .check(
            "lvs --noheadings -o lv_name,lv_tags,lv_attr,origin hvnode",
            CMD,
        )
        .unwrap();
    eprintln!("{name}: lvs\n{lvs}");
    let row = |lv: &str| -> Vec<String> {
        lvs.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|f| f.first().map(String::as_str) == Some(lv))
            .unwrap_or_else(|| panic!("{name}: no volume {lv} in\n{lvs}"))
    };
    let base = row(&img.nvr);
    assert_eq!(base[1], "hvnode:base", "{name}: {base:?}");
    assert!(
        base[2].starts_with("Vr"),
        "{name}: the base is read-only: {base:?}"
    );
    let l = row(layer);
    assert_eq!(l[1], "hvnode:layer", "{name}: {l:?}");
    assert_eq!(l[3], img.nvr, "{name}: the layer's origin is the base");
    for mp in SEPARATE {
        let opts = c
            .check(&format!("findmnt -rno SOURCE,OPTIONS {mp}"), CMD)
            .unwrap();
        assert!(
            opts.contains("/dev/mapper/hvnode-"),
            "{name}: {mp} is not its own volume: {opts}"
        );
        assert!(
            opts.contains("discard"),
            "{name}: {mp} without discard: {opts}"
        );
    }
    assert!(
        c.check("swapon --show=NAME --noheadings", CMD)
            .unwrap()
            .contains("dm-"),
        "{name}: no swap"
    );
}

/// The root is the layer's subvolume, the base a read-only subvolume, the
/// separate volumes subvolumes of their own mounted with discard.
fn check_btrfs(c: &mut vmtest::Console, name: &str, img: &Image, layer: &str) {
    let root = c.check("findmnt -rno FSTYPE,OPTIONS /", CMD).unwrap();
    assert!(root.trim_start().starts_with("btrfs"), "{name}: {root}");
    assert!(
        root.contains(&format!("subvol=/hvnode/layers/{layer}")),
        "{name}: root {root}"
    );
    for mp in SEPARATE {
        let opts = c.check(&format!("findmnt -rno OPTIONS {mp}"), CMD).unwrap();
        assert!(
            opts.contains("subvol=/hvnode/volumes/"),
            "{name}: {mp}: {opts}"
        );
        assert!(opts.contains("discard"), "{name}: {mp}: {opts}");
    }
    let ro = c
        .check(
            &format!(
                "mkdir -p /mnt/top && mount -o subvolid=5 \"$(findmnt -rno SOURCE / | sed 's/\\[.*//')\" /mnt/top && btrfs property get -ts /mnt/top/hvnode/bases/{} ro; umount /mnt/top",
                img.nvr
            ),
            CMD,
        )
        .unwrap();
    assert!(
        ro.contains("ro=true"),
        "{name}: the base is read-only: {ro}"
    );
    assert!(
        !c.check("swapon --show=NAME --noheadings", CMD)
            .unwrap()
            .trim()
            .is_empty(),
        "{name}: no swap"
    );
}

/// The root is the layer's folder of the XFS store partition, bound by the
/// initramfs; the store is read-only at /sysroot, the layer's files share
/// the base's blocks; the separate volumes are partitions with discard.
fn check_plain(c: &mut vmtest::Console, name: &str, img: &Image, layer: &str) {
    let root = c.check("findmnt -rno SOURCE,FSTYPE /", CMD).unwrap();
    assert!(
        root.contains(&format!("[/hvnode/layers/{layer}]")) && root.trim().ends_with("xfs"),
        "{name}: root {root}"
    );
    let store = c
        .check("findmnt -rno SOURCE,FSTYPE,OPTIONS /sysroot", CMD)
        .unwrap();
    let fields: Vec<&str> = store.split_whitespace().collect();
    assert!(
        fields.len() == 3 && fields[1] == "xfs" && fields[2].starts_with("ro,"),
        "{name}: the store at /sysroot: {store}"
    );
    let bases = c.check("ls /sysroot/hvnode/bases", CMD).unwrap();
    assert_eq!(bases.trim(), img.nvr, "{name}");
    let (rc, _) = c
        .run(
            &format!("touch /sysroot/hvnode/bases/{}/etc/x", img.nvr),
            CMD,
        )
        .unwrap();
    assert_ne!(rc, 0, "{name}: the base is writable");
    // A large file of the layer shares its blocks with the base's copy.
    let shared = c
        .check(
            "filefrag -v /usr/bin/qemu-system-x86_64 | grep -c shared",
            CMD,
        )
        .unwrap();
    assert!(
        shared.trim().parse::<u32>().unwrap_or(0) > 0,
        "{name}: the layer does not share the base's blocks"
    );
    eprintln!(
        "{name}: store {}",
        c.check("df -h --output=size,used,pcent /sysroot | tail -1", CMD)
            .unwrap()
            .trim()
    );
    for mp in SEPARATE {
        // Trimmed: under load the serial console can put blanks before it.
        let opts = c
            .check(&format!("findmnt -rno SOURCE,FSTYPE,OPTIONS {mp}"), CMD)
            .unwrap()
            .trim()
            .to_string();
        assert!(
            opts.starts_with("/dev/vda") && opts.contains(" ext4 "),
            "{name}: {mp} is not its own partition: {opts}"
        );
        assert!(opts.contains("discard"), "{name}: {mp}: {opts}");
    }
    assert!(
        c.check("swapon --show=NAME --noheadings", CMD)
            .unwrap()
            .contains("/dev/vda"),
        "{name}: no swap partition"
    );
}

/// What the thin test's ISO is customised with (`hvnode iso customize`).
struct Site {
    /// The embedded kickstart's file name (the install log names it).
    ks_name: &'static str,
    key: vmtest::release::TestKey,
    key_id: String,
}

/// The engine the customised ISO registers nodes with (no such host: the
/// node's zero-touch service keeps retrying in the background).
const SITE_ENGINE: &str = "engine.site.example.com";
const SITE_FINGERPRINT: &str =
    "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The built ISO customised as a site would (`image_build::customize`, the
/// library call of `hvnode iso customize`): `ks` embedded, the install
/// entry the default after 1 s, a trusted key for update bundles (made
/// here; the test's releases are signed with it) and an engine. The
/// customisation reads back as written (`hvnode iso show`).
fn customised_iso(img: &Image, ks: &str, dir: &Path) -> (PathBuf, Site) {
    use image_build::customize::{self, Changes, MenuEntry};
    let ks_name = "thinp-site.ks";
    let ks_path = dir.join(ks_name);
    std::fs::write(&ks_path, ks).unwrap();
    let key = vmtest::release::TestKey::generate(&dir.join("site-key")).unwrap();
    let key_id = bundle::read_public_key(&key.public).unwrap().key_id;
    let iso = dir.join("site.iso");
    let changes = Changes {
        kickstart: Some(ks_path),
        default_entry: Some(MenuEntry::Install),
        timeout: Some(1),
        trust_keys: vec![key.public.clone()],
        engine: Some(SITE_ENGINE.into()),
        engine_fingerprint: Some(SITE_FINGERPRINT.into()),
        ..Changes::default()
    };
    let notes = customize::customize(&img.iso, &iso, &changes).unwrap();
    eprintln!("thinp: customised ISO {}: {notes:?}", iso.display());
    let show = customize::ShowReport::new(&iso, &customize::read(&iso).unwrap());
    assert_eq!(show.kickstart.as_ref().map(|k| k.text.as_str()), Some(ks));
    assert_eq!(
        (show.default_entry, show.timeout),
        (MenuEntry::Install, Some(1))
    );
    assert_eq!(show.trust_keys.len(), 1);
    assert_eq!(show.trust_keys[0].key_id, key_id);
    let engine = show.engine.unwrap();
    assert_eq!(
        (engine.address(), engine.fingerprint.as_deref()),
        (format!("{SITE_ENGINE}:443"), Some(SITE_FINGERPRINT))
    );
    (
        iso,
        Site {
            ks_name,
            key,
            key_id,
        },
    )
}

/// What the customised ISO left on the installed node: the installer read
/// the embedded kickstart (the guest had no other source: no OEMDRV disk,
/// no `inst.ks=`), the trusted key in `/etc/hvnode/trusted.d` (0644,
/// labelled as the policy says), and the engine in `registration.conf`
/// (0600), which the zero-touch service took up at boot.
fn check_customised(c: &mut vmtest::Console, name: &str, site: &Site) -> String {
    let log = c
        .check(
            "grep -E 'customised|kickstart|from the medium|from the boot medium|OEMDRV' /var/log/hvnode/install.log",
            CMD,
        )
        .unwrap();
    eprintln!("{name}: install.log\n{log}");
    for want in [
        "the boot medium is customised (hvnode iso customize)".to_string(),
        format!(
            "kickstart: {}, embedded in the medium by hvnode iso customize (ks/custom.area)",
            site.ks_name
        ),
        format!("registration with {SITE_ENGINE}:443 from the boot medium"),
        format!("trusted key {} (from the medium)", site.key_id),
    ] {
        assert!(
            log.contains(&want),
            "{name}: no {want:?} in install.log:\n{log}"
        );
    }
    assert!(!log.contains("OEMDRV"), "{name}: install.log:\n{log}");
    let trusted = format!("/etc/hvnode/trusted.d/iso-{}.pub", site.key_id);
    assert_eq!(
        c.check(&format!("stat -c '%a %U' {trusted}"), CMD)
            .unwrap()
            .trim(),
        "644 root",
        "{name}: {trusted}"
    );
    assert_eq!(
        c.check(&format!("cat {trusted}"), CMD).unwrap().trim(),
        site.key.public_text().unwrap().trim(),
        "{name}: {trusted}"
    );
    let conf = "/etc/hvnode/registration.conf";
    assert_eq!(
        c.check(&format!("stat -c '%a %U' {conf}"), CMD)
            .unwrap()
            .trim(),
        "600 root",
        "{name}: {conf}"
    );
    let text = c.check(&format!("cat {conf}"), CMD).unwrap();
    for want in [
        format!("engine={SITE_ENGINE}:443"),
        format!("engine_fingerprint={SITE_FINGERPRINT}"),
    ] {
        assert!(
            text.lines().any(|l| l.trim() == want),
            "{name}: no {want} in {conf}:\n{text}"
        );
    }
    let relabel = c
        .check(&format!("restorecon -nv {trusted} {conf}"), CMD)
        .unwrap();
    assert!(
        relabel.trim().is_empty(),
        "{name}: wrong SELinux labels: {relabel}"
    );
    let journal = c
        .check(
            "journalctl -b -u hvnode-register.service -o cat --no-pager | head -n 5",
            CMD,
        )
        .unwrap();
    assert!(
        journal.contains(&format!(
            "Zero-touch registration with engine {SITE_ENGINE}:443"
        )),
        "{name}: hvnode-register.service:\n{journal}"
    );
    trusted
}

/// The ISO customised as a site would ([`customised_iso`]) booted alone,
/// on OVMF, by its default entry after a 1 s menu: the installer takes the
/// embedded kickstart. Also the qcow2 output of `hvnode build --qcow2`: the
/// same library call makes the disk image, and that image is what boots,
/// on both firmwares; the update that follows is signed with the ISO's
/// trusted key.
#[test]
fn thin_lvm_install_from_a_customised_cd_on_ovmf_boots_on_bios_and_uefi() {
    let Some(img) = image() else { return };
    let dir = work_dir("thinp");
    let ks = kickstart(&Unattended::from_medium(&img.squashfs_sha256, "thinp"));
    let ks = vmtest::disk_image::prepare_kickstart("thinp.ks", &ks, &img).unwrap();
    let (iso, site) = customised_iso(&img, &ks, &dir);
    let target = dir.join(format!("{}.qcow2", img.nvr));
    let made = vmtest::disk_image::make_from(
        Firmware::UefiSecureBoot,
        &iso,
        vmtest::disk_image::KickstartSource::Medium,
        &target,
        &dir,
    )
    .unwrap();
    let t = made.times;
    eprintln!(
        "thinp from the customised CD on OVMF: installer started after {:.0} s, installed in {:.0} s, powered off after {:.0} s; qcow2 {:.0} MB",
        t.to_installer,
        t.install,
        t.total,
        made.bytes as f64 / 1e6
    );
    std::fs::remove_file(&iso).unwrap();
    // v2 and v3 for the update are built while the disk boots.
    let releases = update::build_releases(&dir.join("releases"), site.key.clone(), true);
    let check = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&target)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&check.stdout);
    assert!(info.contains("\"format\": \"qcow2\""), "{info}");
    // v1 on SeaBIOS; the update's boots (v2's trial, v3's failed trial,
    // the fallback, the rollback) are on OVMF.
    let mut node = boot_installed(
        &dir,
        "thinp-bios",
        Firmware::Bios,
        &target,
        &img,
        Store::Thin,
    );
    let trusted = check_customised(&mut node.vm.console, "thinp-bios", &site);
    secure_boot::installed_under_secure_boot(
        &vmtest::image::serial_log(&dir, "disk-image-install"),
        "thinp",
    );
    update::run(node, &dir, &target, &img, releases, &trusted);
}

/// `autopart --type=btrfs` from the ISO written to a USB disk, booted on
/// OVMF by its default entry, with an OEMDRV disk and the image fetched
/// over http: the live system then has both kinds of loop-mounted image
/// whose backing files mkfs.btrfs looks at (the medium's, on iso9660, and
/// the downloaded one), as the installer's service sees them.
#[test]
fn btrfs_install_from_usb_on_ovmf_with_oemdrv_and_liveimg_http_boots_on_bios() {
    let Some(img) = image() else { return };
    let dir = work_dir("btrfs-oemdrv");
    let root = dir.join("tree");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(img.pxe().join("squashfs.img"), root.join("squashfs.img")).unwrap();
    let http = vmtest::http::Server::start(&root, "/hvnode/", 0).unwrap();
    let ks = kickstart(&Unattended {
        url: format!("http://10.0.2.2:{}/hvnode/squashfs.img", http.port),
        ..Unattended::from_medium(&img.squashfs_sha256, "btrfs")
    });
    let oemdrv = dir.join("oemdrv.img");
    vmtest::oemdrv_disk(&ks, &oemdrv).unwrap();
    let target = dir.join("node.qcow2");
    vmtest::blank_disk(&target, 64).unwrap();
    let mut cfg = Config::new(Firmware::UefiSecureBoot, Boot::Usb(img.iso.clone()));
    cfg.disks = vec![target.clone(), oemdrv];
    // The downloaded image is kept in memory.
    cfg.memory_mib = 4096;
    let log = vmtest::image::serial_log(&dir, "install");
    let t = {
        let mut vm = Vm::start(&cfg, &log).unwrap();
        vmtest::install::wait_installed(&mut vm, &log, INSTALL).unwrap()
    };
    drop(http);
    secure_boot::installed_under_secure_boot(&log, "btrfs");
    eprintln!(
        "btrfs from USB on OVMF and OEMDRV: installer started after {:.0} s, installed in {:.0} s, powered off after {:.0} s",
        t.to_installer, t.install, t.total
    );
    let mut node = boot_installed(
        &dir,
        "btrfs-bios",
        Firmware::Bios,
        &target,
        &img,
        Store::Btrfs,
    );
    poweroff(&mut node.vm);
}

/// The shipped iPXE script, its server given a port, with `inst.ks=` added.
fn pxe_install_script(shipped: &str, port: u16, ks_url: &str) -> String {
    let mut out = String::new();
    for line in shipped.lines() {
        let line = line.replace(
            "http://${next-server}/hvnode/",
            &format!("http://${{next-server}}:{port}/hvnode/"),
        );
        out.push_str(&line);
        if line.starts_with("kernel ") {
            out.push_str(&format!(" inst.ks={ks_url}"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn plain_install_over_pxe_on_seabios_with_inst_ks_http_boots_on_uefi() {
    let Some(img) = image() else { return };
    let dir = work_dir("plain-pxe");
    // The PXE tree as shipped, plus the kickstart, served over http on a
    // free loopback port; TFTP hands out the boot script.
    let root = dir.join("tree");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    for f in ["vmlinuz", "initrd.img", "squashfs.img"] {
        std::os::unix::fs::symlink(img.pxe().join(f), root.join(f)).unwrap();
    }
    let http = vmtest::http::Server::start(&root, "/hvnode/", 0).unwrap();
    let base = format!("http://10.0.2.2:{}/hvnode", http.port);
    let ks = kickstart(&Unattended {
        url: format!("{base}/squashfs.img"),
        ..Unattended::from_medium(&img.squashfs_sha256, "plain")
    });
    std::fs::write(root.join("ks.cfg"), ks).unwrap();
    let shipped = std::fs::read_to_string(img.pxe().join("boot.ipxe")).unwrap();
    let script = pxe_install_script(&shipped, http.port, &format!("{base}/ks.cfg"));
    assert!(script.contains("inst.ks=http://"), "{script}");
    std::fs::write(root.join("install.ipxe"), script).unwrap();

    let target = dir.join("node.qcow2");
    vmtest::blank_disk(&target, 64).unwrap();
    let mut cfg = Config::new(
        Firmware::Bios,
        Boot::Pxe {
            dir: root.clone(),
            bootfile: "install.ipxe".into(),
        },
    );
    cfg.disks = vec![target.clone()];
    // The live root image is downloaded into memory, and the payload too.
    cfg.memory_mib = 4096;
    let log = vmtest::image::serial_log(&dir, "install");
    let mut vm = Vm::start(&cfg, &log).unwrap();
    let t = vmtest::install::wait_installed(&mut vm, &log, INSTALL).unwrap();
    eprintln!(
        "plain over PXE: installer started after {:.0} s, installed in {:.0} s, powered off after {:.0} s",
        t.to_installer, t.install, t.total
    );
    drop(http);
    let key = vmtest::release::TestKey::generate(&dir.join("releases/key")).unwrap();
    let releases = update::build_releases(&dir.join("releases"), key, false);
    let node = boot_installed(
        &dir,
        "plain-uefi",
        Firmware::UefiSecureBoot,
        &target,
        &img,
        Store::Plain,
    );
    update::run_v2(node, &dir, &target, releases, "plain-update-v2");
}

#[test]
fn the_pxe_install_script_keeps_the_shipped_arguments() {
    let shipped = "#!ipxe\nkernel http://${next-server}/hvnode/vmlinuz root=live:http://${next-server}/hvnode/squashfs.img rd.live.image\ninitrd http://${next-server}/hvnode/initrd.img\nboot\n";
    let s = pxe_install_script(shipped, 8080, "http://10.0.2.2:8080/hvnode/ks.cfg");
    assert_eq!(
        s,
        "#!ipxe\nkernel http://${next-server}:8080/hvnode/vmlinuz root=live:http://${next-server}:8080/hvnode/squashfs.img rd.live.image inst.ks=http://10.0.2.2:8080/hvnode/ks.cfg\ninitrd http://${next-server}:8080/hvnode/initrd.img\nboot\n"
    );
}

/// Writes `text` to `path` in the guest (a prepared root shell).
fn put_file(c: &mut vmtest::Console, path: &str, text: &str) {
    c.send(&format!("cat > {path} <<'HVNODE_EOF'\n{text}HVNODE_EOF\n"))
        .unwrap();
    c.check(&format!("test -s {path}"), CMD).unwrap();
}

/// Runs `hvnode-install --kickstart KS` in the live shell: exit code and
/// its output. The output goes to the console as it is printed, so that an
/// install that stops shows in the serial log where it stopped.
fn install_from_shell(c: &mut vmtest::Console, ks: &str) -> (i32, String) {
    c.run(&format!("hvnode-install --kickstart {ks} 2>&1"), INSTALL)
        .unwrap()
}

/// Storage written out as RHVH's documentation shows a custom layout.
const MANUAL_LAYOUT: &str = "reqpart --add-boot
part pv.01 --size=1 --grow --ondisk=vda
volgroup vg_node pv.01 --reserved-percent=20
logvol none --vgname=vg_node --thinpool --name=thinpool --size=1 --grow
logvol / --vgname=vg_node --thin --poolname=thinpool --name=root --size=8192 --fstype=ext4
logvol /var --vgname=vg_node --thin --poolname=thinpool --name=var --size=20480
logvol /var/log --vgname=vg_node --thin --poolname=thinpool --name=var_log --size=8192 --fstype=xfs
logvol /var/log/audit --vgname=vg_node --thin --poolname=thinpool --name=var_log_audit --size=2048
logvol /var/crash --vgname=vg_node --thin --poolname=thinpool --name=var_crash --size=10240
logvol /var/tmp --vgname=vg_node --thin --poolname=thinpool --name=var_tmp --size=10240
logvol /home --vgname=vg_node --thin --poolname=thinpool --name=home --size=1024
logvol /tmp --vgname=vg_node --thin --poolname=thinpool --name=tmp --size=1024
logvol /var/lib/libvirt/images --vgname=vg_node --thin --poolname=thinpool --name=images --size=4096 --fstype=xfs
logvol swap --vgname=vg_node --name=swap --fstype=swap --recommended
";

/// The explicit layout, seen from the live shell: volumes as written, the
/// base and layer named by the image whatever `--name` said, file systems,
/// fstab, and boot arguments naming the admin's volume group.
fn check_manual_layout(c: &mut vmtest::Console, img: &Image) {
    let lvs = c
        .check(
            "lvs --noheadings --separator '|' --units m --nosuffix -o lv_name,lv_tags,lv_attr,origin,pool_lv,lv_size vg_node",
            CMD,
        )
        .unwrap();
    eprintln!("manual layout: lvs\n{lvs}");
    let row = |lv: &str| -> Vec<String> {
        lvs.lines()
            .map(|l| l.trim().split('|').map(String::from).collect::<Vec<_>>())
            .find(|f| f.first().map(String::as_str) == Some(lv))
            .unwrap_or_else(|| panic!("no volume {lv} in\n{lvs}"))
    };
    let base = row(&img.nvr);
    assert_eq!(base[1], "hvnode:base", "{base:?}");
    assert!(base[2].starts_with("Vr"), "{base:?}");
    assert_eq!(base[4], "thinpool", "{base:?}");
    assert_eq!(base[5], "8192.00", "{base:?}");
    let layer = format!("{}+1", img.nvr);
    let l = row(&layer);
    assert_eq!(
        (l[1].as_str(), l[3].as_str()),
        ("hvnode:layer", img.nvr.as_str())
    );
    assert!(
        !lvs.lines()
            .any(|l| l.split_whitespace().next() == Some("root")),
        "{lvs}"
    );
    for (lv, mib) in [
        ("var", "20480.00"),
        ("var_log", "8192.00"),
        ("var_log_audit", "2048.00"),
        ("var_crash", "10240.00"),
        ("var_tmp", "10240.00"),
        ("home", "1024.00"),
        ("tmp", "1024.00"),
        ("images", "4096.00"),
    ] {
        let r = row(lv);
        assert_eq!(r[1], "hvnode:volume", "{r:?}");
        assert_eq!(r[4], "thinpool", "{r:?}");
        assert_eq!(r[5], mib, "{r:?}");
    }
    let swap = row("swap");
    assert!(
        swap[2].starts_with("-wi"),
        "swap is a thick volume: {swap:?}"
    );
    let fs = |c: &mut vmtest::Console, lv: &str| {
        c.check(&format!("blkid -o value -s TYPE /dev/vg_node/{lv}"), CMD)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(fs(c, "var_log"), "xfs");
    assert_eq!(fs(c, "images"), "xfs");
    assert_eq!(fs(c, "var"), "ext4");
    let parts = c.check("lsblk -bnro NAME,SIZE /dev/vda", CMD).unwrap();
    for (p, bytes) in [("vda1", 1u64 << 20), ("vda2", 600 << 20), ("vda3", 1 << 30)] {
        assert!(
            parts.lines().any(|l| l == format!("{p} {bytes}")),
            "{p} of {bytes} bytes: {parts}"
        );
    }
    let boot = c
        .check("mkdir -p /mnt/b && mount -o ro /dev/vda3 /mnt/b && cat /mnt/b/grub/grub.cfg; umount /mnt/b", CMD)
        .unwrap();
    assert!(
        boot.contains(&format!("root=/dev/vg_node/{layer}")) && boot.contains("rd.lvm.vg=vg_node"),
        "{boot}"
    );
    let fstab = c
        .check(
            &format!("mkdir -p /mnt/n && mount -o ro /dev/vg_node/{layer} /mnt/n && cat /mnt/n/etc/fstab; umount /mnt/n"),
            CMD,
        )
        .unwrap();
    for want in [
        "/var/log xfs",
        "/var/lib/libvirt/images xfs",
        "/var/log/audit ext4",
    ] {
        assert!(
            fstab.lines().any(|l| l
                .split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                == want),
            "fstab has no {want}:\n{fstab}"
        );
    }
}

/// The interactive hub's password (never shown on the console).
const HUB_PASSWORD: &str = "Hub-secret-42";
const ADMIN_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA+H5ussA9jGiVgHSYYeIy4WuPEq6NBeyLv53YfU2Ltz admin@hvnode-test";

/// Waits for `expect` on the console, then types `send`.
fn answer(c: &mut vmtest::Console, expect: &str, send: &str) {
    c.expect(expect, CMD)
        .unwrap_or_else(|e| panic!("the installer's hub: {e}"));
    c.send(send).unwrap();
}

/// `hvnode-install` with a kickstart that names only the image: the hub
/// asks the rest. The answers (disk, btrfs, static network, host name,
/// time zone, root password, an admin with an SSH key) are then read from
/// the installed layer, over the thin install that was on the disk.
fn interactive_reinstall(c: &mut vmtest::Console, img: &Image, log: &Path) {
    put_file(
        c,
        "/tmp/ask.ks",
        &format!(
            "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img --checksum={}\n",
            img.squashfs_sha256
        ),
    );
    // Straight to the console (no pipe): the hub's prompts must show.
    c.send("hvnode-install --kickstart /tmp/ask.ks; echo \"@@rc=$?@@\"\n")
        .unwrap();
    let hub = "to refresh]: ";
    answer(c, hub, "1\n");
    answer(c, "Install on which disk", "1\n");
    answer(c, "Layout [", "2\n");
    answer(c, hub, "2\n");
    let (i, _) = c
        .expect_any(&["Configure which interface", "Address from"], CMD)
        .unwrap();
    if i == 0 {
        c.send("\n").unwrap();
        c.expect("Address from", CMD).unwrap();
    }
    c.send("2\n").unwrap();
    answer(c, "IPv4 address with prefix length", "10.0.2.15/24\n");
    answer(c, "Gateway [", "10.0.2.2\n");
    answer(c, "DNS servers", "10.0.2.3\n");
    answer(c, "Host name, e.g.", &format!("{HOSTNAME}\n"));
    answer(c, hub, "3\n");
    answer(c, "Time zone [", "Europe/Paris\n");
    answer(c, hub, "4\n");
    answer(c, "Password for root", &format!("{HUB_PASSWORD}\n"));
    answer(c, "(confirm): ", &format!("{HUB_PASSWORD}\n"));
    answer(c, hub, "5\n");
    answer(c, "User name [", "admin\n");
    answer(c, "Password for admin", &format!("{HUB_PASSWORD}\n"));
    answer(c, "(confirm): ", &format!("{HUB_PASSWORD}\n"));
    answer(c, "SSH public key", &format!("{ADMIN_KEY}\n"));
    answer(c, hub, "b\n");
    answer(c, "Type yes to install: ", "yes\n");
    let out = c.expect("@@rc=", INSTALL).unwrap();
    let rc = c.expect("@@", CMD).unwrap();
    assert_eq!(rc.trim_end_matches("@@"), "0", "interactive install: {out}");
    // The installer turned echo back on after the passwords.
    c.prepare_shell().unwrap();

    let layer = format!("{}+1", img.nvr);
    c.check(
        &format!("mkdir -p /mnt/n /mnt/h && mount -o subvol=/hvnode/layers/{layer} /dev/vda4 /mnt/n && mount -o subvol=/hvnode/volumes/home /dev/vda4 /mnt/h"),
        CMD,
    )
    .unwrap();
    let t = |c: &mut vmtest::Console, cmd: &str| c.check(cmd, CMD).unwrap().trim().to_string();
    assert_eq!(t(c, "cat /mnt/n/etc/hostname"), HOSTNAME);
    assert!(t(c, "readlink /mnt/n/etc/localtime").ends_with("Europe/Paris"));
    let net = t(c, "cat /mnt/n/etc/systemd/network/*.network");
    assert!(net.contains("Address=10.0.2.15/24"), "{net}");
    assert!(net.contains("Gateway=10.0.2.2"), "{net}");
    let wheel = t(c, "grep '^wheel:' /mnt/n/etc/group");
    assert!(wheel.ends_with("admin"), "{wheel}");
    let keys = t(c, "cat /mnt/h/admin/.ssh/authorized_keys");
    assert!(keys.contains(ADMIN_KEY), "{keys}");
    assert_eq!(t(c, "stat -c %a /mnt/n/root/hvnode-ks.cfg"), "600");
    let saved = t(c, "cat /mnt/n/root/hvnode-ks.cfg");
    assert!(
        saved
            .lines()
            .any(|l| l.starts_with("rootpw $6$") && l.contains("--iscrypted")),
        "{saved}"
    );
    assert!(!saved.contains(HUB_PASSWORD), "{saved}");
    let shadow = t(c, "grep -c '^root:\\$6\\$' /mnt/n/etc/shadow");
    assert_eq!(shadow, "1");
    c.check("umount /mnt/h /mnt/n", CMD).unwrap();
    let serial = std::fs::read_to_string(log).unwrap();
    assert!(
        !serial.contains(HUB_PASSWORD),
        "a password typed at the hub reached the console"
    );
}

/// The ISO's "Start hvnode live" entry on SeaBIOS: the live system is what
/// a node must be (see [`vmtest::live::check_node`]). Then, from its shell,
/// as an admin would run it: a disk that is too small and an image with the
/// wrong checksum are refused before any write; an install, then an
/// interactive reinstall over it (the old volume group must be taken down
/// first: RHVH broke on that); then an install whose `%post --erroronfail`
/// fails leaves a wiped disk and says where it stopped.
#[test]
fn live_cd_on_seabios_then_failures_stop_cleanly_and_reinstall_works() {
    let Some(img) = image() else { return };
    let dir = work_dir("live");
    let target = dir.join("node.qcow2");
    let small = dir.join("small.qcow2");
    vmtest::blank_disk(&target, 64).unwrap();
    vmtest::blank_disk(&small, 20).unwrap();
    let mut cfg = Config::new(Firmware::Bios, Boot::Cdrom(img.iso.clone()));
    cfg.disks = vec![target.clone(), small];
    // The engine's link, called from the host as an engine would.
    let vdsm_port = vmtest::free_port().unwrap();
    cfg.forwards = vec![(vdsm_port, 54321)];
    let log = vmtest::image::serial_log(&dir, "live");
    let mut vm = Vm::start(&cfg, &log).unwrap();
    let c = &mut vm.console;
    c.expect("Start hvnode", BOOT).unwrap();
    c.send("l").unwrap();
    c.expect("root@hvnode:~#", BOOT)
        .unwrap_or_else(|e| panic!("live: {e}; serial log {}", log.display()));
    eprintln!("live: root prompt after {:.0} s", vm.uptime());
    let c = &mut vm.console;
    c.prepare_shell().unwrap();
    vmtest::live::boot_finished(c, &dir, "live-cd-bios", BOOT).unwrap();
    // libvirt's first capability probe runs qemu: TCG inside TCG.
    vmtest::live::check_node(c, "live-cd-bios", &img, BOOT).unwrap();
    vmtest::engine_net::check_engine_networks(c, "live-cd-bios", vdsm_port).unwrap();
    let good = Unattended {
        poweroff: false,
        ..Unattended::from_medium(&img.squashfs_sha256, "thinp")
    };

    // A disk below RHVH's minimum: refused, untouched.
    let on_small = Unattended {
        drive: "vdb".into(),
        ..good.clone()
    };
    put_file(c, "/tmp/small.ks", &kickstart(&on_small));
    let (rc, out) = install_from_shell(c, "/tmp/small.ks");
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("too small"), "{out}");
    assert_eq!(
        c.check("lsblk -rno NAME /dev/vdb", CMD).unwrap().trim(),
        "vdb"
    );

    // A wrong checksum: refused before any write.
    let wrong = Unattended {
        sha256: "0".repeat(64),
        ..good.clone()
    };
    put_file(c, "/tmp/wrong.ks", &kickstart(&wrong));
    let (rc, out) = install_from_shell(c, "/tmp/wrong.ks");
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("nothing was written"), "{out}");
    assert_eq!(
        c.check("lsblk -rno NAME /dev/vda", CMD).unwrap().trim(),
        "vda"
    );

    // An unattended install with an explicit layout, RHVH's custom
    // kickstart style: its own volume group and pool names, sizes, an xfs
    // /var/log, an extra volume for VM images...
    let manual_ks = kickstart(&good).replace("autopart --type=thinp\n", MANUAL_LAYOUT);
    put_file(c, "/tmp/manual.ks", &manual_ks);
    let started = Instant::now();
    let (rc, out) = install_from_shell(c, "/tmp/manual.ks");
    assert_eq!(rc, 0, "{out}");
    eprintln!(
        "manual thin layout installed from the live shell in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    check_manual_layout(c, &img);

    // ...and an interactive reinstall over it, on btrfs.
    interactive_reinstall(c, &img, &log);
    let good_ks = kickstart(&good);
    // One whose %post fails with --erroronfail: the disk is wiped.
    let failing = good_ks.replace(
        "echo \"post ran",
        "echo failing on purpose >&2; exit 3\necho \"post ran",
    );
    put_file(c, "/tmp/failing.ks", &failing);
    let (rc, out) = install_from_shell(c, "/tmp/failing.ks");
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("running %post scripts"), "{out}");
    assert!(out.contains("--erroronfail"), "{out}");
    assert!(out.contains("was wiped"), "{out}");
    let parts = c.check("lsblk -rno NAME /dev/vda", CMD).unwrap();
    assert_eq!(
        parts.trim(),
        "vda",
        "a failed install left partitions: {parts}"
    );
    let vgs = c.check("vgs --noheadings -o vg_name", CMD).unwrap();
    assert!(
        !vgs.contains("hvnode"),
        "a failed install left its VG: {vgs}"
    );
    c.send("poweroff\n").unwrap();
    let _ = vm.wait_exit(Duration::from_secs(300));
}
