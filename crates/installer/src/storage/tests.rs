//! Plans from kickstart text against the recorded disks of the live VM
//! (`vda` 64 GiB free, `vdb` busy, the install CD).

use kickstart::commands::AutopartType;
use kickstart::node::{self, Layout};
use kickstart::source::FsLoader;

use super::*;
use crate::disks::parse_lsblk;

const RAM: u64 = 4 << 30;

fn fixture() -> Vec<BlockDevice> {
    parse_lsblk(include_str!("../../tests/fixtures/lsblk-live-vm.json")).unwrap()
}

fn layout(ks: &str) -> (Layout, Disks) {
    let parse = kickstart::parse_str("ks.cfg", ks, &FsLoader);
    assert!(parse.is_valid(), "{ks}\n{:?}", parse.diagnostics);
    let (p, _) = node::plan(&parse.kickstart);
    (p.layout, p.disks)
}

fn plan_of(ks: &str) -> Result<StoragePlan> {
    let (l, d) = layout(ks);
    plan(&l, &d, &fixture(), Some("HVNODE"), RAM)
}

const HEAD: &str = "zerombr\nclearpart --all --initlabel --drives=vda\n";

/// RHVH's documented custom layout.
const RHVH: &str = "\
reqpart --add-boot
part pv.01 --size=1 --grow --ondisk=vda
volgroup hvnode pv.01 --reserved-percent=20
logvol none --vgname=hvnode --thinpool --name=pool00 --size=1 --grow
logvol / --vgname=hvnode --thin --poolname=pool00 --name=root --size=8192 --fstype=ext4
logvol /var --vgname=hvnode --thin --poolname=pool00 --name=var --size=20480 --fstype=ext4
logvol /var/log --vgname=hvnode --thin --poolname=pool00 --name=var_log --size=8192
logvol /var/log/audit --vgname=hvnode --thin --poolname=pool00 --name=var_log_audit --size=2048
logvol /var/crash --vgname=hvnode --thin --poolname=pool00 --name=var_crash --size=10240
logvol /var/tmp --vgname=hvnode --thin --poolname=pool00 --name=var_tmp --size=10240
logvol /home --vgname=hvnode --thin --poolname=pool00 --name=home --size=1024
logvol /tmp --vgname=hvnode --thin --poolname=pool00 --name=tmp --size=1024
logvol swap --vgname=hvnode --name=swap --fstype=swap --recommended
";

/// `(number, role, size)` of each partition.
fn parts(p: &StoragePlan) -> Vec<(u32, Role, u64)> {
    p.partitions
        .iter()
        .map(|x| (x.number, x.role.clone(), x.bytes))
        .collect()
}

fn vol<'a>(p: &'a StoragePlan, mp: &str) -> &'a PlannedVolume {
    p.volumes
        .iter()
        .find(|v| v.mountpoint == mp)
        .unwrap_or_else(|| panic!("no volume at {mp}: {p}"))
}

#[test]
fn rhvh_custom_layout_is_honoured_as_written() {
    let p = plan_of(&format!("{HEAD}{RHVH}")).unwrap();
    let text = p.to_string();
    println!("{text}");
    assert_eq!(p.disk.name, "vda");
    assert!(p.wipe);
    let disk = 64u64 << 30;
    let pv = disk - DISK_OVERHEAD - (1 << 20) - (600 << 20) - (1 << 30);
    assert_eq!(
        parts(&p),
        [
            (1, Role::BiosBoot, 1 << 20),
            (2, Role::Efi, 600 << 20),
            (3, Role::Boot, 1 << 30),
            (4, Role::Pv, pv),
        ]
    );
    let vg = p.vg().unwrap();
    assert_eq!(
        (vg.spec.vg.as_str(), vg.spec.pool.as_str()),
        ("hvnode", "pool00")
    );
    assert_eq!(vg.pvs, [4]);
    let pe = 4u64 << 20;
    assert_eq!(vg.vg_bytes, (pv - (1 << 20)) / pe * pe);
    assert_eq!(
        vg.reserved_bytes,
        (vg.vg_bytes / 100 * 20).div_ceil(pe) * pe
    );
    // The pool takes what the thick swap (4 GiB for 4 GiB of RAM), the
    // reserve and the metadata budget leave, in whole extents.
    let swap = vol(&p, "swap");
    assert_eq!((swap.backing, swap.bytes), (Backing::Thick, 4 << 30));
    assert_eq!(swap.options, "defaults");
    let free = vg.vg_bytes - vg.reserved_bytes;
    assert_eq!(vg.pool_bytes, free - (4 << 30) - 2 * (128 << 20));
    assert_eq!(vg.spec.size, layers::lvm::PoolSize::Bytes(vg.pool_bytes));
    assert_eq!(p.root_bytes, 8 << 30);
    let var = vol(&p, "/var");
    assert_eq!((var.name.as_str(), var.bytes), ("var", 20 << 30));
    assert_eq!((var.backing, var.fstype.as_str()), (Backing::Thin, "ext4"));
    assert_eq!(var.options, "defaults,discard");
    assert_eq!(vol(&p, "/var/log/audit").name, "var_log_audit");
    let order: Vec<&str> = p.volumes.iter().map(|v| v.mountpoint.as_str()).collect();
    assert_eq!(
        order,
        [
            "/var",
            "/home",
            "/tmp",
            "/var/log",
            "/var/crash",
            "/var/tmp",
            "/var/log/audit",
            "swap"
        ]
    );
    // The plan says what is made, and that the root's name is replaced.
    for want in [
        "/dev/vda4",
        "[ks.cfg:4: part pv.01]",
        "[ks.cfg:3: reqpart --add-boot]",
        "Volume group hvnode of",
        "--reserved-percent=20",
        "Thin pool pool00 of",
        "var_log_audit",
        "thin, ext4, /var/log/audit (defaults,discard)",
        "swap                           4.0 GiB  swap (defaults)",
        "the name root is replaced",
        "overcommitted",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(!text.contains("is not a separate volume"), "{text}");
}

#[test]
fn reqpart_without_add_boot_needs_a_boot_partition() {
    let ks = format!("{HEAD}{}", RHVH.replace("reqpart --add-boot", "reqpart"));
    let e = plan_of(&ks).unwrap_err().to_string();
    assert!(
        e.contains("ks.cfg:4: the layout has no /boot partition"),
        "{e}"
    );
    assert!(e.contains("reqpart --add-boot"), "{e}");
    // With an explicit /boot (here bigger, labelled) reqpart adds the rest.
    let ks = format!(
        "{HEAD}{}",
        RHVH.replace(
            "reqpart --add-boot",
            "reqpart\npart /boot --size=2048 --label=BOOT --fsoptions=defaults"
        )
    );
    let p = plan_of(&ks).unwrap();
    let boot = p.partition(Role::Boot).unwrap();
    assert_eq!((boot.number, boot.bytes), (3, 2 << 30));
    assert_eq!(
        (boot.label.as_str(), boot.options.as_str()),
        ("BOOT", "defaults")
    );
    assert_eq!(p.partition(Role::Efi).unwrap().number, 2);
    assert_eq!(p.partition(Role::Pv).unwrap().number, 4);
}

#[test]
fn explicit_platform_partitions_replace_reqparts() {
    let ks = format!(
        "{HEAD}part biosboot --fstype=biosboot --size=2\npart /boot/efi --fstype=efi --size=200\npart /boot --size=1024\n{}",
        RHVH.replace("reqpart --add-boot\n", "")
    );
    let p = plan_of(&ks).unwrap();
    let sizes: Vec<(u32, u64)> = p.partitions.iter().map(|x| (x.number, x.bytes)).collect();
    assert_eq!(sizes[..3], [(1, 2 << 20), (2, 200 << 20), (3, 1 << 30)]);
    assert!(p.to_string().contains("[ks.cfg:4: part /boot/efi]"));
}

#[test]
fn growing_shares_the_rest_and_stops_at_maxsize() {
    // Two physical volumes? One group takes both; the second is capped.
    let ks = format!(
        "{HEAD}{}",
        RHVH.replace(
            "part pv.01 --size=1 --grow --ondisk=vda\nvolgroup hvnode pv.01",
            "part pv.01 --size=1 --grow\npart pv.02 --size=1 --grow --maxsize=10240\npart /data --fstype=xfs --size=2048\nvolgroup hvnode pv.01 pv.02"
        )
    );
    let p = plan_of(&ks).unwrap();
    let pv2 = p.partitions.iter().find(|x| x.name == "pv.02").unwrap();
    assert_eq!(pv2.bytes, 10 << 30);
    let data = vol(&p, "/data");
    assert_eq!((data.bytes, data.fstype.as_str()), (2 << 30, "xfs"));
    assert_eq!(data.backing, Backing::Partition(6));
    let used: u64 = p.partitions.iter().map(|x| x.bytes).sum();
    assert!(used <= (64 << 30) - DISK_OVERHEAD);
    assert!(used > (64 << 30) - DISK_OVERHEAD - (1 << 20), "{used}");
    assert_eq!(p.vg().unwrap().pvs, [4, 5]);
    // A capped pool leaves the rest of the group free.
    let ks = format!(
        "{HEAD}{}",
        RHVH.replace("--size=1 --grow\n", "--size=1 --grow --maxsize=20480\n")
    );
    let p = plan_of(&ks).unwrap();
    assert_eq!(p.vg().unwrap().pool_bytes, 20 << 30);
}

#[test]
fn names_and_options_follow_the_kickstart() {
    let ks = format!(
        "{HEAD}{}",
        RHVH.replace("hvnode", "vg0")
            .replace(
                "--name=pool00",
                "--name=thin --metadatasize=1024 --chunksize=128"
            )
            .replace("--poolname=pool00", "--poolname=thin")
            .replace("volgroup vg0 pv.01", "volgroup vg0 pv.01 --pesize=32768")
            .replace(
                "--name=var_log --size=8192",
                "--name=logs --size=8192 --fstype=xfs --fsoptions=defaults,discard,nodev"
            )
            .replace(
                "logvol swap --vgname=vg0 --name=swap --fstype=swap --recommended",
                "logvol swap --vgname=vg0 --thin --poolname=thin --name=swap --size=2048"
            )
    );
    let p = plan_of(&ks).unwrap();
    let vg = p.vg().unwrap();
    assert_eq!(
        (vg.spec.vg.as_str(), vg.spec.pool.as_str()),
        ("vg0", "thin")
    );
    assert_eq!(vg.spec.extent_bytes, Some(32 << 20));
    assert_eq!(vg.spec.metadata_bytes, Some(1 << 30));
    assert_eq!(vg.spec.chunk_bytes, Some(128 << 10));
    assert_eq!(vg.vg_bytes % (32 << 20), 0);
    let logs = vol(&p, "/var/log");
    assert_eq!((logs.name.as_str(), logs.fstype.as_str()), ("logs", "xfs"));
    assert_eq!(logs.options, "defaults,discard,nodev");
    let swap = vol(&p, "swap");
    assert_eq!(
        (swap.backing, swap.bytes, swap.options.as_str()),
        (Backing::Thin, 2 << 30, "defaults,discard")
    );
    let text = p.to_string();
    assert!(
        text.contains("LVM physical volume of volume group vg0"),
        "{text}"
    );
    assert!(
        text.contains("metadata 1.0 GiB, chunks of 128.0 KiB"),
        "{text}"
    );
}

#[test]
fn missing_separate_mount_points_are_noted() {
    let ks: String = format!("{HEAD}{RHVH}")
        .lines()
        .filter(|l| !l.starts_with("logvol /var/") && !l.starts_with("logvol /var "))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = plan_of(&ks).unwrap();
    let text = p.to_string();
    for mp in RHVH_SEPARATE_FOR_TEST {
        assert!(
            text.contains(&format!("{mp} is not a separate volume")),
            "{mp}: {text}"
        );
    }
    assert!(!text.contains("overcommitted"), "{text}");
}

const RHVH_SEPARATE_FOR_TEST: [&str; 5] = manual::RHVH_SEPARATE;

#[test]
fn each_rule_is_an_error_naming_the_line() {
    let cases: &[(&str, &str, &str)] = &[
        // (replace, with, message)
        (
            "logvol / --vgname=hvnode --thin --poolname=pool00",
            "logvol / --vgname=hvnode",
            "ks.cfg:7: logvol / --name=root: a node's root must be a thin LV so that layers can be snapshots",
        ),
        (
            "--fstype=swap --recommended",
            "--fstype=swap --size=61440",
            "ks.cfg:5: volgroup hvnode: the logical volumes need 60.3 GiB (with 256.0 MiB for pool metadata), the group has 49.9 GiB",
        ),
        (
            "part pv.01 --size=1 --grow --ondisk=vda",
            "part pv.01 --size=70000 --ondisk=vda",
            "the partitions need 69.9 GiB, vda has 64.0 GiB (ks.cfg:3: reqpart --add-boot; ks.cfg:4: part pv.01)",
        ),
        (
            "volgroup hvnode pv.01",
            "volgroup hvnode pv.02",
            "ks.cfg:5: volgroup hvnode: pv.02 is not a partition of this kickstart",
        ),
        (
            "logvol /home --vgname=hvnode",
            "logvol /home --vgname=data",
            "ks.cfg:13: logvol /home --name=home: --vgname=data: there is no volgroup data",
        ),
        (
            "--name=home --size=1024",
            "--name=home --size=1024 --poolname=pool01",
            "ks.cfg:13: logvol /home --name=home: --poolname=pool01: there is no thin pool of that name in hvnode",
        ),
        (
            "logvol /home",
            "logvol /tmp",
            "ks.cfg:14: logvol /tmp --name=tmp: /tmp is already the mount point of ks.cfg:13: logvol /tmp --name=home",
        ),
        (
            "--ondisk=vda",
            "--ondisk=vdb",
            "ks.cfg:4: part pv.01 --ondisk=vdb: vdb is not the disk the node is installed on (vda)",
        ),
        (
            "--ondisk=vda",
            "--ondisk=sdq",
            "this machine has no disk sdq",
        ),
        (
            "logvol /home",
            "logvol /usr/local",
            "/usr/local is part of the image",
        ),
        (
            "--name=root --size=8192",
            "--name=root --size=4096",
            "the root needs at least 6.0 GiB",
        ),
        (
            "--fstype=swap --recommended",
            "--fstype=swap --recommended --label=aaaaaaaaaaaaaaaaaaaaa",
            "too long for swap",
        ),
        (
            "--name=var_crash --size=10240",
            "--name=var_crash --size=10240 --fstype=vfat",
            "--fstype=vfat is not supported for a volume",
        ),
        (
            "--name=home",
            "--name=hvnode-1.0-1",
            "has the form of an image base or layer name",
        ),
        (
            "reqpart --add-boot\n",
            "",
            "ks.cfg:3: the layout has no BIOS boot partition",
        ),
        (
            "--reserved-percent=20",
            "--reserved-percent=20 --pesize=3000",
            "--pesize=3000 is not a power of two",
        ),
    ];
    for (from, to, want) in cases {
        let full = format!("{HEAD}{RHVH}");
        assert!(full.contains(from), "{from}");
        let ks = full.replacen(from, to, 1);
        let e = match plan_of(&ks) {
            Ok(p) => panic!("{want}: planned\n{p}"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "want {want:?}\ngot {e}");
    }
}

#[test]
fn what_a_node_cannot_take_is_refused_with_the_alternative() {
    let cases = [
        (
            "reqpart --add-boot\npart / --size=8192 --grow\n",
            "ks.cfg:4: part /: a node's root cannot be a plain partition",
        ),
        (
            "reqpart --add-boot\npart btrfs.01 --size=8192 --grow\nbtrfs / --data=single btrfs.01\n",
            "autopart --type=btrfs",
        ),
        (
            "reqpart --add-boot\npart raid.01 --size=8192\npart raid.02 --size=8192\nraid / --level=1 --device=md0 raid.01 raid.02\n",
            "software RAID",
        ),
        (
            "reqpart --add-boot\npart pv.01 --grow\nvolgroup vg pv.01\nlogvol / --vgname=vg --name=root --size=8192\n",
            "must be a thin LV",
        ),
        (
            "reqpart --add-boot\npart pv.01 --grow\nvolgroup vg pv.01\nvolgroup vg2 pv.01\n",
            "ks.cfg:6: volgroup vg2: a node has one volume group",
        ),
        (
            "reqpart --add-boot\npart pv.01 --grow --encrypted --passphrase=x\n",
            "--encrypted",
        ),
    ];
    for (ks, want) in cases {
        let e = plan_of(&format!("{HEAD}{ks}")).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}\ngot {e}");
    }
}

#[test]
fn the_disk_comes_from_ondisk_when_nothing_else_selects_it() {
    let p = plan_of(RHVH).unwrap();
    assert_eq!(p.disk.name, "vda");
    assert!(!p.wipe);
}

#[test]
fn growth_is_shared_by_base_size_up_to_each_maximum() {
    let m = 1 << 20;
    let r = |base, max| GrowRequest { base, max };
    assert_eq!(grow(&[r(m, None)], 100 * m, m), [101 * m]);
    assert_eq!(
        grow(&[r(m, None), r(3 * m, None)], 8 * m, m),
        [3 * m, 9 * m]
    );
    assert_eq!(
        grow(&[r(m, Some(2 * m)), r(m, None)], 10 * m, m),
        [2 * m, 10 * m]
    );
    assert_eq!(grow(&[], 10 * m, m), Vec::<u64>::new());
}

#[test]
fn the_sgdisk_arguments_are_autoparts_for_autopart() {
    let all = fixture();
    let (l, d) = layout(&format!("{HEAD}autopart --type=thinp\n"));
    let p = plan(&l, &d, &all, Some("HVNODE"), RAM).unwrap();
    assert_eq!(
        execute::sgdisk_args(&p).join(" "),
        "--new=1:0:+1024K --typecode=1:EF02 --change-name=1:biosboot \
         --new=2:0:+614400K --typecode=2:EF00 --change-name=2:efi \
         --new=3:0:+1048576K --typecode=3:8300 --change-name=3:boot \
         --new=4:0:0 --typecode=4:8E00 --change-name=4:hvnode"
    );
    let vg = p.vg().unwrap();
    assert_eq!(
        vg.spec.lvcreate_args().join(" "),
        "-y --type thin-pool --zero y -l80%VG --addtag hvnode:pool -n pool00 hvnode"
    );
    let names: Vec<(&str, &str, u64)> = p
        .volumes
        .iter()
        .map(|v| (v.name.as_str(), v.mountpoint.as_str(), v.bytes >> 30))
        .collect();
    assert_eq!(
        names,
        [
            ("var", "/var", 7),
            ("var_crash", "/var/crash", 10),
            ("var_log", "/var/log", 8),
            ("var_log_audit", "/var/log/audit", 2),
            ("var_tmp", "/var/tmp", 10),
            ("home", "/home", 1),
            ("tmp", "/tmp", 1),
            ("swap", "swap", 4),
        ]
    );
    assert!(
        p.volumes
            .iter()
            .all(|v| v.options == "defaults,discard" && v.label == v.name)
    );
}

#[test]
fn a_vg_name_taken_on_another_disk_is_refused() {
    let all = fixture();
    let vda = disks::find(&all, "vda").unwrap();
    let rows = execute::parse_pvs(
        r#"{"report":[{"pv":[{"pv_name":"/dev/vdb1","vg_name":"hvnode"},{"pv_name":"/dev/vda4","vg_name":"old"}]}]}"#,
    )
    .unwrap();
    let e = execute::vg_name_free("hvnode", vda, &rows)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists already on /dev/vdb1"), "{e}");
    execute::vg_name_free("vg0", vda, &rows).unwrap();
}

// Autopart plans on made-up disks.

fn disk(name: &str, size: u64, data: bool) -> BlockDevice {
    let mut d: BlockDevice = serde_json::from_value(serde_json::json!({
        "name": name, "path": format!("/dev/{name}"), "type": "disk", "size": size,
    }))
    .unwrap();
    if data {
        d.fstype = Some("LVM2_member".into());
    }
    d
}

fn auto(scheme: AutopartType) -> Layout {
    Layout::Auto {
        scheme,
        fstype: None,
        encrypted: false,
        nohome: false,
        noswap: false,
    }
}

fn only(disk: &str) -> Disks {
    Disks {
        only_use: vec![disk.into()],
        clear: Clear::All,
        ..Disks::default()
    }
}

#[test]
fn thin_plan_sizes_from_the_disk() {
    let all = [disk("vda", 64 << 30, false)];
    let p = plan(
        &auto(AutopartType::Thinp),
        &only("vda"),
        &all,
        None,
        3 << 30,
    )
    .unwrap();
    assert_eq!(p.scheme(), Scheme::Thinp);
    let (pool, store) = (p.vg().unwrap().pool_bytes, p.partitions[3].bytes);
    assert!(pool < store * 81 / 100);
    let total: u64 = p.root_bytes + p.volumes.iter().map(|v| v.bytes).sum::<u64>();
    assert!(total <= pool, "{total} > {pool}");
    let var = p.volumes.iter().find(|v| v.mountpoint == "/var").unwrap();
    assert!(var.bytes > 5 << 30, "the rest goes to /var");
    let swap = p.volumes.iter().find(|v| v.name == "swap").unwrap();
    assert_eq!(swap.bytes, 3 << 30);
    let text = p.to_string();
    assert!(text.contains("/dev/vda4"), "{text}");
    assert!(text.contains("var_log_audit"), "{text}");
    assert!(text.contains("WIPED"), "{text}");
}

#[test]
fn a_small_disk_is_refused_with_the_minimum() {
    let all = [disk("vda", 20 << 30, false)];
    let e = plan(
        &auto(AutopartType::Thinp),
        &only("vda"),
        &all,
        None,
        2 << 30,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("too small") && e.contains("55 GB"), "{e}");
}

#[test]
fn a_disk_with_data_needs_clearpart() {
    let all = [disk("vda", 64 << 30, true)];
    let sel = Disks {
        only_use: vec!["vda".into()],
        ..Disks::default()
    };
    let e = plan(&auto(AutopartType::Thinp), &sel, &all, None, 2 << 30)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clearpart --all --initlabel --drives=vda"),
        "{e}"
    );
}

#[test]
fn several_disks_without_a_choice_are_an_error() {
    let all = [disk("vda", 64 << 30, false), disk("vdb", 64 << 30, false)];
    let e = plan(
        &auto(AutopartType::Btrfs),
        &Disks::default(),
        &all,
        None,
        2 << 30,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ignoredisk --only-use="), "{e}");
    let p = plan(
        &auto(AutopartType::Btrfs),
        &Disks::default(),
        &all[..1],
        None,
        2 << 30,
    )
    .unwrap();
    assert_eq!(p.scheme(), Scheme::Btrfs);
    assert!(p.to_string().contains("hvnode/volumes/var_log"));
}

#[test]
fn plain_is_partitions_with_an_xfs_store_at_the_end() {
    let all = [disk("vda", 64 << 30, false)];
    let p = plan(
        &auto(AutopartType::Plain),
        &only("vda"),
        &all,
        None,
        4 << 30,
    )
    .unwrap();
    assert_eq!(p.scheme(), Scheme::Plain);
    assert!(p.vg().is_none());
    let parts: Vec<(u32, &str, &str, u64, bool)> = p
        .partitions
        .iter()
        .map(|x| (x.number, x.name.as_str(), x.code, x.bytes >> 30, x.to_end))
        .collect();
    // /var gets what the volumes and the store's 12 GiB leave.
    assert_eq!(
        parts,
        [
            (1, "biosboot", "EF02", 0, false),
            (2, "efi", "EF00", 0, false),
            (3, "boot", "8300", 1, false),
            (4, "var", "8300", 14, false),
            (5, "var_crash", "8300", 10, false),
            (6, "var_log", "8300", 8, false),
            (7, "var_log_audit", "8300", 2, false),
            (8, "var_tmp", "8300", 10, false),
            (9, "home", "8300", 1, false),
            (10, "tmp", "8300", 1, false),
            (11, "swap", "8200", 4, false),
            (12, "hvnode", "8300", 12, true),
        ]
    );
    assert_eq!(p.store, StorePlan::Plain { partition: 12 });
    assert_eq!(p.partition(Role::PlainStore).unwrap().number, 12);
    for v in &p.volumes {
        let Backing::Partition(n) = v.backing else {
            panic!("{} is not a partition", v.name)
        };
        let part = &p.partitions[n as usize - 1];
        assert_eq!((part.name.as_str(), part.bytes), (v.name.as_str(), v.bytes));
        assert_eq!(v.fstype, if v.is_swap() { "swap" } else { "ext4" });
    }
    // Everything fits on the disk.
    let fixed: u64 = p.partitions.iter().map(|x| x.bytes).sum();
    assert!(fixed + DISK_OVERHEAD <= 64 << 30, "{fixed}");
    let text = p.to_string();
    assert!(text.contains("xfs: the layer store"), "{text}");
    assert!(text.contains("ext4, /var/log"), "{text}");
    assert!(text.contains("reflinked"), "{text}");
}

#[test]
fn plain_on_a_big_disk_gives_the_store_a_tenth() {
    let all = [disk("vda", 500 << 30, false)];
    let p = plan(
        &auto(AutopartType::Plain),
        &only("vda"),
        &all,
        None,
        4 << 30,
    )
    .unwrap();
    let store = p.partition(Role::PlainStore).unwrap();
    assert_eq!(store.bytes >> 30, 50);
    let var = p.volumes.iter().find(|v| v.mountpoint == "/var").unwrap();
    assert!(var.bytes >> 30 > 400, "{}", var.bytes >> 30);
}

#[test]
fn plain_on_a_small_disk_says_what_it_needs() {
    let all = [disk("vda", 40 << 30, false)];
    let e = plan(
        &auto(AutopartType::Plain),
        &only("vda"),
        &all,
        None,
        1 << 30,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("too small for the plain layout"), "{e}");
    assert!(e.contains("--type=thinp"), "{e}");
}

#[test]
fn encrypted_is_refused_with_an_alternative() {
    let all = [disk("vda", 64 << 30, false)];
    let Layout::Auto {
        scheme,
        fstype,
        nohome,
        noswap,
        ..
    } = auto(AutopartType::Thinp)
    else {
        unreachable!()
    };
    let layout = Layout::Auto {
        scheme,
        fstype,
        encrypted: true,
        nohome,
        noswap,
    };
    let e = plan(&layout, &only("vda"), &all, None, 1 << 30)
        .unwrap_err()
        .to_string();
    assert!(e.contains("remove --encrypted"), "{e}");
}

#[test]
fn partition_names_follow_the_kernel() {
    assert_eq!(
        partition_path(Path::new("/dev/vda"), 3),
        Path::new("/dev/vda3")
    );
    assert_eq!(
        partition_path(Path::new("/dev/nvme0n1"), 3),
        Path::new("/dev/nvme0n1p3")
    );
}

#[test]
fn swap_follows_anacondas_table() {
    assert_eq!(swap_bytes(1 << 30), 2 << 30);
    assert_eq!(swap_bytes(4 << 30), 4 << 30);
    assert_eq!(swap_bytes(32 << 30), 16 << 30);
    assert_eq!(swap_bytes(256 << 30), 4 << 30);
}

#[test]
fn shipped_manual_kickstarts_plan_on_the_live_vm_disks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kickstart");
    let manual = std::fs::read_to_string(dir.join("manual-thin.ks")).unwrap();
    let p = plan_of(&manual).unwrap();
    assert_eq!(p.vg().unwrap().spec.vg, "hvnode");
    assert_eq!(p.volumes.len(), 8);
    // The NIST example names sda; the recorded machine has vda.
    let nist = std::fs::read_to_string(dir.join("nist-layout.ks"))
        .unwrap()
        .replace("sda", "vda");
    let p = plan_of(&nist).unwrap();
    let vg = p.vg().unwrap();
    assert_eq!(vg.spec.chunk_bytes, Some(64 << 20));
    assert_eq!(vg.spec.metadata_bytes, Some(1 << 30));
    assert!(vg.pool_bytes >= 45 << 30);
    let audit = vol(&p, "/var/log/audit");
    assert_eq!(
        (audit.fstype.as_str(), audit.label.as_str()),
        ("xfs", "var_audit")
    );
    assert_eq!(vol(&p, "/tmp").options, "defaults,discard,nodev,nosuid");
    let text = p.to_string();
    assert!(text.contains("--fstype=xfs is not applied"), "{text}");
}

#[test]
fn the_kickstart_disk_is_not_taken_unasked() {
    let mut oemdrv = disk("vdb", 4 << 20, false);
    oemdrv.fstype = Some("vfat".into());
    oemdrv.label = Some("OEMDRV".into());
    let all = [disk("vda", 64 << 30, false), oemdrv];
    let sel = Disks {
        clear: Clear::All,
        ..Disks::default()
    };
    let p = plan(&auto(AutopartType::Thinp), &sel, &all, None, 3 << 30).unwrap();
    assert_eq!(p.disk.name, "vda");
    // Two disks that could both take it: the kickstart must choose.
    let all = [disk("vda", 64 << 30, false), disk("vdb", 64 << 30, false)];
    let e = plan(&auto(AutopartType::Thinp), &sel, &all, None, 3 << 30)
        .unwrap_err()
        .to_string();
    assert!(e.contains("several disks could take the node"), "{e}");
}
