//! The plan on recorded facts: an LVM node (whose store cannot be made on
//! this host), a btrfs node, and the refusals.

use super::*;

const OLD: &str = "hvnode-1.0-0.20261125.0";
const NEW: &str = "hvnode-1.1-0.20261201.0";

/// A grub.cfg as hvnode writes it for an LVM node, with an admin's extra
/// argument on the running entry.
fn lvm_cfg() -> String {
    let l: LayerName = format!("{OLD}+1").parse().unwrap();
    layers::boot::grub_cfg(
        "1234-abcd",
        &[BootEntry {
            layer: l,
            args: [
                &format!("root=/dev/hvnode/{OLD}+1"),
                "rd.lvm.vg=hvnode",
                "ro",
                "security=selinux",
                "selinux=1",
                "enforcing=1",
                "console=ttyS0",
            ]
            .map(String::from)
            .to_vec(),
        }],
        5,
    )
}

fn lvm_node() -> NodeFacts {
    let lvs = r#"{"report":[{"lv":[
      {"vg_name":"hvnode","lv_name":"hvnode-1.0-0.20261125.0","lv_tags":"hvnode:base","origin":"","lv_attr":"Vri---tz-k","lv_size":"6442450944","data_percent":"","metadata_percent":""},
      {"vg_name":"hvnode","lv_name":"hvnode-1.0-0.20261125.0+1","lv_tags":"hvnode:layer","origin":"hvnode-1.0-0.20261125.0","lv_attr":"Vwi-aotz--","lv_size":"6442450944","data_percent":"20.31","metadata_percent":""},
      {"vg_name":"hvnode","lv_name":"pool00","lv_tags":"hvnode:pool","origin":"","lv_attr":"twi-aotz--","lv_size":"47064334336","data_percent":"4.52","metadata_percent":"11.85"}
    ]}]}"#;
    let lvs = layers::lvm::parse_lvs(lvs).unwrap();
    NodeFacts {
        backend: "lvm".into(),
        inventory: layers::lvm::inventory_of(&lvs),
        current_layer: format!("{OLD}+1").parse().unwrap(),
        grub_cfg: lvm_cfg(),
        grubenv: vec![("saved_entry".into(), format!("{OLD}+1"))],
        boot_dirs: vec![format!("{OLD}+1"), "grub".into()],
        current_root_args: [
            &format!("root=/dev/hvnode/{OLD}+1"),
            "rd.lvm.vg=hvnode",
            "ro",
        ]
        .map(String::from)
        .to_vec(),
        current_image_args: ["security=selinux", "selinux=1", "enforcing=1"]
            .map(String::from)
            .to_vec(),
    }
}

fn new_image() -> ImageFacts {
    ImageFacts {
        nvr: NEW.parse().unwrap(),
        kernel_args: ["security=selinux", "selinux=1", "enforcing=1", "quiet"]
            .map(String::from)
            .to_vec(),
        root_args: [
            &format!("root=/dev/hvnode/{NEW}+1"),
            "rd.lvm.vg=hvnode",
            "ro",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[test]
fn an_lvm_node_gets_a_new_base_layer_and_a_trial_entry() {
    let p = plan(&lvm_node(), &new_image()).unwrap();
    assert_eq!(p.old_base.to_string(), OLD);
    assert_eq!(p.new_base.to_string(), NEW);
    assert_eq!(p.new_layer.to_string(), format!("{NEW}+1"));
    assert_eq!(p.trial, p.new_layer);
    assert_eq!(p.default.as_deref(), Some(&*format!("{OLD}+1")));
    assert_eq!(p.boot_uuid, "1234-abcd");
    assert_eq!(p.entries.len(), 2, "the running entry is kept");
    assert_eq!(p.entries[0].layer.to_string(), format!("{OLD}+1"));
    assert_eq!(
        p.entries[1].args,
        [
            &*format!("root=/dev/hvnode/{NEW}+1"),
            "rd.lvm.vg=hvnode",
            "ro",
            "security=selinux",
            "selinux=1",
            "enforcing=1",
            "quiet",
            "console=ttyS0"
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // The menu written from the plan reads back with both entries.
    let cfg = layers::boot::grub_cfg(&p.boot_uuid, &p.entries, 5);
    assert_eq!(parse_grub_cfg(&cfg).len(), 2);
    // A boot loader password set at install (user.cfg, which no update
    // touches) still guards the new menu, and every entry still boots
    // without it.
    assert!(
        cfg.contains("password_pbkdf2 root ${GRUB2_PASSWORD}"),
        "{cfg}"
    );
    assert_eq!(cfg.matches(" --unrestricted ").count(), 2, "{cfg}");
}

#[test]
fn the_same_image_again_is_refused() {
    let mut img = new_image();
    img.nvr = OLD.parse().unwrap();
    let e = plan(&lvm_node(), &img).unwrap_err();
    assert!(matches!(e, PlanError::AlreadyInstalled { .. }));
    assert!(e.to_string().contains("nothing was written"));
}

#[test]
fn leftovers_of_an_interrupted_update_are_refused() {
    let mut node = lvm_node();
    node.boot_dirs.push(format!("{NEW}+1"));
    assert!(matches!(
        plan(&node, &new_image()),
        Err(PlanError::BootDirExists { .. })
    ));
    let mut node = lvm_node();
    node.inventory
        .layers
        .push(format!("{NEW}+1").parse().unwrap());
    assert!(matches!(
        plan(&node, &new_image()),
        Err(PlanError::OrphanLayers { .. })
    ));
}

#[test]
fn a_foreign_grub_cfg_is_not_rewritten() {
    let mut node = lvm_node();
    node.grub_cfg = node.grub_cfg.replace("search --no-floppy", "# no search");
    assert_eq!(plan(&node, &new_image()), Err(PlanError::NoBootUuid));
    let mut node = lvm_node();
    node.grub_cfg
        .push_str("\nmenuentry \"Windows\" --id windows {\n    chainloader +1\n}\n");
    assert!(matches!(
        plan(&node, &new_image()),
        Err(PlanError::ForeignEntry { .. })
    ));
}

#[test]
fn a_pending_trial_and_a_downgrade_are_warned_about() {
    let mut node = lvm_node();
    node.grubenv.push(("next_entry".into(), format!("{OLD}+2")));
    let mut img = new_image();
    img.nvr = "hvnode-0.9-1".parse().unwrap();
    let p = plan(&node, &img).unwrap();
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.lines().iter().any(|l| l.contains("downgrade")));
}

#[test]
fn the_root_entry_of_fstab_follows_the_layer() {
    let old: LayerName = format!("{OLD}+1").parse().unwrap();
    let new: LayerName = format!("{NEW}+1").parse().unwrap();
    let lvm = format!(
        "# header {OLD}+1\n/dev/hvnode/{OLD}+1 / ext4 defaults,discard 0 1\n/dev/hvnode/var /var ext4 defaults 0 2\n"
    );
    let (out, changed) = retarget_fstab(&lvm, &old, &new);
    assert!(changed);
    assert_eq!(
        out,
        format!(
            "# header {OLD}+1\n/dev/hvnode/{NEW}+1 / ext4 defaults,discard 0 1\n/dev/hvnode/var /var ext4 defaults 0 2\n"
        )
    );
    let btrfs = format!("UUID=u / btrfs subvol=hvnode/layers/{OLD}+1,discard=async 0 0\n");
    let (out, changed) = retarget_fstab(&btrfs, &old, &new);
    assert!(changed);
    assert!(out.contains(&format!("subvol=hvnode/layers/{NEW}+1,")));
    // plain: the root is the partition, the layer is a kernel argument.
    let plain = "UUID=u / xfs defaults,discard 0 0\n";
    assert_eq!(
        retarget_fstab(plain, &old, &new),
        (plain.to_string(), false)
    );
}

#[test]
fn admin_arguments_are_carried_and_not_doubled() {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let args = entry_args(
        &s(&["root=A", "ro", "x=1", "ro", "console=ttyS0"]),
        &s(&["root=A", "ro"]),
        &s(&["x=1"]),
        &s(&["root=B", "ro"]),
        &s(&["x=2"]),
    );
    assert_eq!(args, s(&["root=B", "ro", "x=2", "console=ttyS0"]));
}
