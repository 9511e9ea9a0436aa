//! What `gather` parses, on recorded outputs.

use super::*;

const CFG: &str = "set timeout=5\nmenuentry \"hvnode 1.0 (1+1)\" --id hvnode-1.0-1+1 {\n    linux /hvnode-1.0-1+1/vmlinuz root=/dev/hvnode/hvnode-1.0-1+1 ro\n    initrd /hvnode-1.0-1+1/initrd.img\n}\n";

#[test]
fn grub_entries_read_back() {
    let e = parse_grub_cfg(CFG);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].id, "hvnode-1.0-1+1");
    assert_eq!(e[0].kernel, "/hvnode-1.0-1+1/vmlinuz");
    assert_eq!(e[0].args, "root=/dev/hvnode/hvnode-1.0-1+1 ro");
}

#[test]
fn the_current_layer_comes_from_the_command_line() {
    assert_eq!(
        layer_from_cmdline("BOOT_IMAGE=/x root=/dev/hvnode/hvnode-1.0-1+1 ro")
            .unwrap()
            .to_string(),
        "hvnode-1.0-1+1"
    );
    assert_eq!(
        layer_from_cmdline("root=UUID=x rootflags=subvol=hvnode/layers/hvnode-1.0-1+2 ro")
            .unwrap()
            .number,
        2
    );
    assert!(layer_from_cmdline("root=live:CDLABEL=HVNODE").is_none());
}

#[test]
fn the_store_is_found_by_its_tags_in_any_group() {
    // `lvs --reportformat json` with a second volume group beside the store's.
    let lvs = parse_lvs(
        r#"{"report": [{"lv": [
            {"vg_name":"data", "lv_name":"scratch", "lv_tags":""},
            {"vg_name":"vg0", "lv_name":"hvnode-1.0-1", "lv_tags":"hvnode:base"},
            {"vg_name":"vg0", "lv_name":"pool00", "lv_tags":"hvnode:pool", "data_percent":"1.00"}
        ]}]}"#,
    )
    .unwrap();
    let other = lvs[0].clone();
    let (vg, lvs) = store_group(lvs).unwrap();
    assert_eq!(vg, "vg0");
    assert_eq!(lvs.len(), 2);
    assert!(store_group(vec![other]).is_none());
}
