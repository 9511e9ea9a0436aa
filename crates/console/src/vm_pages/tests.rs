//! The "New virtual machine" form read as the API's request, and its refusals.

use super::*;

fn form() -> NewVmForm {
    NewVmForm {
        name: "web1".into(),
        vcpus: "2".into(),
        memory_mib: "2048".into(),
        disk_gib: "20".into(),
        pool: "images".into(),
        network: "default".into(),
        firmware: "uefi".into(),
        ..NewVmForm::default()
    }
}

#[test]
fn a_filled_form_is_the_apis_request() {
    let spec = form().spec().unwrap();
    assert_eq!(spec.name, "web1");
    assert_eq!((spec.vcpus, spec.memory_mib, spec.disk_gib), (2, 2048, 20));
    assert_eq!(spec.network, "default");
    assert_eq!(spec.iso, None);
    assert!(!spec.start);
    let f = NewVmForm {
        network: String::new(),
        bridge: " br0 ".into(),
        iso: "images/debian.iso".into(),
        start: Some("on".into()),
        ..form()
    };
    let spec = f.spec().unwrap();
    assert_eq!(spec.network, "br0");
    assert_eq!(spec.iso.as_deref(), Some("images/debian.iso"));
    assert!(spec.start);
}

#[test]
fn each_bad_field_is_named() {
    let cases: &[(NewVmForm, &str, &str)] = &[
        (
            NewVmForm {
                memory_mib: "lots".into(),
                ..form()
            },
            "memory_mib",
            "Memory (MiB): \"lots\" is not a whole number",
        ),
        (
            NewVmForm {
                memory_mib: "1".into(),
                ..form()
            },
            "memory_mib",
            "Memory (MiB): memory_mib 1 is out of range",
        ),
        (
            NewVmForm {
                vcpus: String::new(),
                ..form()
            },
            "vcpus",
            "vCPUs: give a number",
        ),
        (
            NewVmForm {
                name: "no/slash".into(),
                ..form()
            },
            "name",
            "Name: VM name \"no/slash\" is not a valid name",
        ),
        (
            NewVmForm {
                disk_gib: "0".into(),
                ..form()
            },
            "disk_gib",
            "Disk size (GiB): disk_gib 0",
        ),
        (
            NewVmForm {
                firmware: "coreboot".into(),
                ..form()
            },
            "firmware",
            "Firmware: firmware \"coreboot\"",
        ),
        (
            NewVmForm {
                bridge: "br0".into(),
                ..form()
            },
            "bridge",
            "Host bridge: choose",
        ),
        (
            NewVmForm {
                network: String::new(),
                ..form()
            },
            "network",
            "Network: choose a virtual network",
        ),
        (
            NewVmForm {
                iso: "../etc/shadow".into(),
                ..form()
            },
            "iso",
            "Installation medium: iso",
        ),
    ];
    for (f, field, start) in cases {
        let e = f.spec().unwrap_err();
        assert_eq!(e.field, *field, "{e:?}");
        assert!(e.message.starts_with(start), "{e:?}");
    }
}

#[test]
fn libvirts_refusals_name_their_field() {
    assert_eq!(
        field_of("a VM named \"x\" exists: choose another name"),
        "name"
    );
    assert_eq!(field_of("no storage pool named \"p\": create it"), "pool");
    assert_eq!(field_of("storage pool \"p\" is inactive: start it"), "pool");
    assert_eq!(
        field_of("no virtual network or bridge named \"n\""),
        "network"
    );
    assert_eq!(field_of("iso /x.iso cannot be read"), "iso");
    assert_eq!(field_of("defining VM \"x\": internal error"), "");
}
