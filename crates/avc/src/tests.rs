#![allow(clippy::unwrap_used)]

use super::*;

const KERNEL: &str = "[  104.418211] audit: type=1400 audit(1767225600.512:231): avc:  denied  \
{ read write } for  pid=812 comm=\"qemu-system-x86\" name=\"disk.img\" dev=\"vda3\" ino=131 \
scontext=system_u:system_r:svirt_t:s0:c12,c345 tcontext=unconfined_u:object_r:user_home_t:s0 \
tclass=file permissive=0";

#[test]
fn a_kernel_line_is_parsed_field_by_field() {
    let d = parse(KERNEL).unwrap();
    assert_eq!(d.time, Some(1_767_225_600.512));
    assert_eq!(d.permissions, ["read", "write"]);
    assert_eq!(d.pid, Some(812));
    assert_eq!(d.comm.as_deref(), Some("qemu-system-x86"));
    assert_eq!(d.name.as_deref(), Some("disk.img"));
    assert_eq!(d.path, None);
    assert_eq!(d.source_type(), "svirt_t");
    assert_eq!(d.target_type(), "user_home_t");
    assert_eq!(d.tclass, "file");
    assert!(!d.permissive);
    assert_eq!(context_level(&d.scontext), Some("s0:c12,c345"));
    assert_eq!(parse("kernel: eth0: link up"), None);
    assert_eq!(parse("avc:  granted  { read } for pid=1"), None);
}

#[test]
fn auditds_format_and_a_path_and_permissive() {
    let line = "type=AVC msg=audit(1767225700.001:99): avc:  denied  { getattr } for  pid=1 \
                comm=\"systemd-logind\" path=\"/swap/swapfile\" dev=\"vda2\" ino=257 \
                scontext=system_u:system_r:systemd_logind_t:s0 \
                tcontext=system_u:object_r:swapfile_t:s0 tclass=file permissive=1";
    let d = parse(line).unwrap();
    assert_eq!(d.path.as_deref(), Some("/swap/swapfile"));
    assert!(d.permissive);
    let e = explain(&d);
    assert_eq!(
        e.summary,
        "systemd-logind (pid 1, systemd_logind_t) was denied getattr on file /swap/swapfile \
         (swapfile_t) (permissive: only logged, not refused)"
    );
    assert_eq!(e.fix.kind, FixKind::Module);
}

#[test]
fn a_vm_image_in_a_home_folder_needs_a_label() {
    let e = explain(&parse(KERNEL).unwrap());
    assert_eq!(
        e.summary,
        "qemu-system-x86 (pid 812, svirt_t) was denied read write on file disk.img (user_home_t)"
    );
    assert_eq!(e.fix.kind, FixKind::Label);
    assert!(e.fix.text.contains("virt_image_t"), "{}", e.fix.text);
    // With a path, the command names its folder.
    let with_path = KERNEL.replace("name=\"disk.img\"", "path=\"/root/vms/disk.img\"");
    let e = explain(&parse(&with_path).unwrap());
    assert_eq!(
        e.fix.command.as_deref(),
        Some("semanage fcontext -a -t virt_image_t '/root/vms(/.*)?' && restorecon -Rv /root/vms")
    );
}

#[test]
fn booleans_for_nfs_and_execmem() {
    let nfs = KERNEL.replace(
        "unconfined_u:object_r:user_home_t:s0",
        "system_u:object_r:nfs_t:s0",
    );
    let e = explain(&parse(&nfs).unwrap());
    assert_eq!(e.fix.kind, FixKind::Boolean);
    assert_eq!(
        e.fix.command.as_deref(),
        Some("setsebool -P virt_use_nfs on")
    );
    let exec = "audit(1.0:1): avc:  denied  { execmem } for  pid=5 comm=\"qemu-system-x86\" \
                scontext=system_u:system_r:svirt_t:s0:c1,c2 \
                tcontext=system_u:system_r:svirt_t:s0:c1,c2 tclass=process permissive=0";
    let d = parse(exec).unwrap();
    let e = explain(&d);
    assert!(
        e.summary.contains("was denied execmem on itself"),
        "{}",
        e.summary
    );
    assert_eq!(
        e.fix.command.as_deref(),
        Some("setsebool -P virt_use_execmem on")
    );
}

#[test]
fn another_vms_disk_is_kept_apart_by_its_categories() {
    let line = KERNEL.replace(
        "unconfined_u:object_r:user_home_t:s0",
        "system_u:object_r:svirt_image_t:s0:c7,c8",
    );
    let e = explain(&parse(&line).unwrap());
    assert_eq!(e.fix.kind, FixKind::Definition);
    assert!(e.fix.text.contains("c7,c8"), "{}", e.fix.text);
    assert!(e.fix.text.contains("<shareable/>"), "{}", e.fix.text);
}

#[test]
fn unlabeled_files_and_our_own_services() {
    let line = KERNEL.replace(
        "unconfined_u:object_r:user_home_t:s0",
        "system_u:object_r:unlabeled_t:s0",
    );
    assert_eq!(explain(&parse(&line).unwrap()).fix.kind, FixKind::Label);
    let ours = KERNEL.replace(
        "system_u:system_r:svirt_t:s0:c12,c345",
        "system_u:system_r:hvnode_ws_t:s0",
    );
    let e = explain(&parse(&ours).unwrap());
    assert_eq!(e.fix.kind, FixKind::Report);
}

#[test]
fn repeats_are_folded_with_a_count_and_the_latest_first() {
    let later = KERNEL.replace("1767225600.512", "1767225900.000");
    let other = KERNEL
        .replace("disk.img", "other.img")
        .replace("1767225600.512", "1767225700.000");
    let groups = group([KERNEL, &other, &later].map(|l| parse(l).unwrap()));
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].count, 2);
    assert_eq!(groups[0].first, Some(1_767_225_600.512));
    assert_eq!(groups[0].last, Some(1_767_225_900.0));
    assert_eq!(groups[1].denial.name.as_deref(), Some("other.img"));
    let json = serde_json::to_value(&groups[0]).unwrap();
    assert_eq!(json["count"], 2);
}
