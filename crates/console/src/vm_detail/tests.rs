use super::*;

/// A UEFI guest with Secure Boot as virt-install defines it on Debian 12 (libvirt 9),
/// running: live XML with its ports, tap devices and ptys.
const QEMU_UEFI: &str = r#"<domain type='kvm' id='4'>
  <name>web1</name>
  <uuid>0c1d7c5e-6b0b-4f61-9bb7-4c2f5e0a8a11</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>
  </os>
  <features><acpi/><apic/><smm state='on'/></features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web1.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <boot order='2'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='data' volume='web1-data.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/hvnode/web1-logs'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/debian-12.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <boot order='1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:6e:1f:0a'/>
      <source network='default' portid='4b4b0b7e' bridge='virbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <boot order='3'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:6e:1f:0b'/>
      <source bridge='br-storage'/>
      <model type='e1000e'/>
      <link state='down'/>
    </interface>
    <interface type='direct'>
      <mac address='52:54:00:6e:1f:0c'/>
      <source dev='enp3s0' mode='bridge'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:6e:1f:0d'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'><model name='isa-serial'/></target>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <graphics type='spice'>
      <listen type='socket' socket='/run/libvirt/qemu/web1.spice'/>
    </graphics>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c112,c877</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c112,c877</imagelabel>
  </seclabel>
</domain>"#;

/// What libvirt's test driver answers for the console's test fixture (captured).
const TEST_DRIVER: &str = r#"<domain type='test' id='1'>
  <name>test</name>
  <uuid>48c5c8e1-09d1-43c1-bf62-47b48dd786b4</uuid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <firmware>
      <feature enabled='yes' name='secure-boot'/>
    </firmware>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
  </os>
  <cpu mode='host-model'/>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/test.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
</domain>"#;

#[test]
fn a_uefi_guest_with_secure_boot() {
    let f = parse_domain(QEMU_UEFI).unwrap();
    assert_eq!(f.vcpus_max, 4);
    assert_eq!(f.current_memory_kib, 2_097_152);
    assert_eq!(f.cpu.mode.as_deref(), Some("host-passthrough"));
    assert_eq!(f.cpu.model, None);
    assert_eq!(f.machine.as_deref(), Some("pc-q35-7.2"));
    assert_eq!(f.arch.as_deref(), Some("x86_64"));
    assert_eq!(f.firmware.kind, "uefi");
    assert!(f.firmware.secure_boot);
    assert_eq!(
        f.firmware.loader.as_deref(),
        Some("/usr/share/OVMF/OVMF_CODE_4M.ms.fd")
    );
    assert_eq!(
        f.boot_order,
        ["cdrom sda", "disk vda", "nic 52:54:00:6e:1f:0a"],
        "devices by their own boot order"
    );
}

#[test]
fn disks_of_every_kind() {
    let f = parse_domain(QEMU_UEFI).unwrap();
    let d = &f.disks;
    assert_eq!(d.len(), 5);
    assert_eq!(d[0].target, "vda");
    assert_eq!(d[0].bus.as_deref(), Some("virtio"));
    assert_eq!(d[0].device, "disk");
    assert_eq!(d[0].kind, "file");
    assert_eq!(d[0].format.as_deref(), Some("qcow2"));
    assert_eq!(
        d[0].source.as_deref(),
        Some("/var/lib/libvirt/images/web1.qcow2")
    );
    assert!(!d[0].read_only);
    assert_eq!(d[0].boot_order, Some(2));
    assert_eq!(d[1].kind, "volume");
    assert_eq!(d[1].source, None);
    assert_eq!(d[1].pool.as_deref(), Some("data"));
    assert_eq!(d[1].volume.as_deref(), Some("web1-data.raw"));
    assert_eq!(d[2].kind, "block");
    assert_eq!(d[2].source.as_deref(), Some("/dev/hvnode/web1-logs"));
    assert_eq!(d[3].device, "cdrom");
    assert!(d[3].read_only);
    assert_eq!(d[4].source, None, "an empty CD-ROM drive");
    assert_eq!(d[4].format, None);
}

#[test]
fn nics_of_every_kind() {
    let n = parse_domain(QEMU_UEFI).unwrap().nics;
    assert_eq!(n.len(), 4);
    assert_eq!(n[0].mac.as_deref(), Some("52:54:00:6e:1f:0a"));
    assert_eq!(n[0].kind, "network");
    assert_eq!(n[0].source.as_deref(), Some("default"));
    assert_eq!(n[0].model.as_deref(), Some("virtio"));
    assert_eq!(n[0].link, "up", "up when not said");
    assert_eq!(n[0].target.as_deref(), Some("vnet3"));
    assert_eq!(n[1].kind, "bridge");
    assert_eq!(n[1].source.as_deref(), Some("br-storage"));
    assert_eq!(n[1].model.as_deref(), Some("e1000e"));
    assert_eq!(n[1].link, "down");
    assert_eq!(n[1].target, None);
    assert_eq!(n[2].kind, "direct");
    assert_eq!(n[2].source.as_deref(), Some("enp3s0 (bridge)"));
    assert_eq!(n[3].kind, "user");
    assert_eq!(n[3].source, None);
}

#[test]
fn graphics_and_serial_lines() {
    let f = parse_domain(QEMU_UEFI).unwrap();
    let g = &f.graphics;
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].kind, "vnc");
    assert_eq!(g[0].port, Some(5900));
    assert!(g[0].autoport);
    assert_eq!(g[0].listen.as_deref(), Some("127.0.0.1"));
    assert_eq!(g[0].socket, None);
    assert_eq!(g[1].kind, "spice");
    assert_eq!(g[1].port, None);
    assert_eq!(g[1].listen, None);
    assert_eq!(g[1].socket.as_deref(), Some("/run/libvirt/qemu/web1.spice"));
    let s = &f.serials;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].device, "serial");
    assert_eq!(s[0].kind, "pty");
    assert_eq!(s[0].target.as_deref(), Some("isa-serial"));
    assert_eq!(s[0].port, Some(0));
    assert_eq!(s[0].path.as_deref(), Some("/dev/pts/3"));
    assert_eq!(s[1].device, "console");
    assert_eq!(s[1].target.as_deref(), Some("serial"));
}

#[test]
fn the_test_drivers_domain_and_os_boot_devices() {
    let f = parse_domain(TEST_DRIVER).unwrap();
    assert_eq!(f.firmware.kind, "uefi", "<os firmware='efi'>");
    assert!(f.firmware.secure_boot, "the firmware's secure-boot feature");
    assert_eq!(f.firmware.loader, None);
    assert_eq!(f.boot_order, ["hd", "cdrom"]);
    assert_eq!(f.cpu.mode.as_deref(), Some("host-model"));
    assert_eq!(f.graphics[0].port, None, "-1: not chosen yet");
    assert!(f.graphics[0].autoport);
    assert_eq!(f.serials[0].path, None);
    assert_eq!(f.serials[0].target, None);
}

#[test]
fn a_bare_bios_guest_and_memory_units() {
    let f = parse_domain(
        "<domain type='kvm'><name>old</name><memory unit='GiB'>1</memory><vcpu>1</vcpu>\
         <os><type>hvm</type><loader type='rom'>/usr/share/seabios/bios.bin</loader></os>\
         <cpu><model>Skylake-Client</model></cpu></domain>",
    )
    .unwrap();
    assert_eq!(f.firmware.kind, "bios");
    assert!(!f.firmware.secure_boot);
    assert_eq!(f.current_memory_kib, 1 << 20, "the memory when not said");
    assert_eq!(f.vcpus_max, 1);
    assert_eq!(f.cpu.mode.as_deref(), Some("custom"));
    assert_eq!(f.cpu.model.as_deref(), Some("Skylake-Client"));
    assert!(f.disks.is_empty() && f.nics.is_empty() && f.boot_order.is_empty());
    let none = parse_domain("<domain><name>x</name></domain>").unwrap();
    assert_eq!(none.cpu, Cpu::default());
    assert_eq!(none.machine, None);
    assert!(parse_domain("<domain>").is_err());
    for (xml, want) in [
        ("<m unit='b'>2048</m>", Some(2)),
        ("<m unit='MiB'>2</m>", Some(2048)),
        ("<m unit='MB'>1</m>", Some(976)),
        ("<m>7</m>", Some(7)),
        ("<m unit='parsec'>1</m>", None),
        ("<m>lots</m>", None),
    ] {
        let doc = roxmltree::Document::parse(xml).unwrap();
        assert_eq!(kib(Some(doc.root_element())), want, "{xml}");
    }
}

#[test]
fn a_disk_whose_size_cannot_be_read_keeps_the_others() {
    let mut disks = parse_domain(QEMU_UEFI).unwrap().disks;
    let mut asked = Vec::new();
    fill_sizes(&mut disks, |target| {
        asked.push(target.to_string());
        match target {
            "vdb" => Err("Storage volume not found: no storage vol with matching path".into()),
            _ => Ok(DiskSize {
                capacity: 10 << 30,
                allocation: 3 << 30,
            }),
        }
    });
    assert_eq!(
        asked,
        ["vda", "vdb", "vdc", "sda"],
        "an empty drive is not asked"
    );
    assert_eq!(disks[0].capacity, Some(10 << 30));
    assert_eq!(disks[0].allocation, Some(3 << 30));
    assert_eq!(disks[0].size_error, None);
    assert_eq!(disks[1].capacity, None);
    let e = disks[1].size_error.as_deref().unwrap();
    assert!(e.contains("vdb (data/web1-data.raw)"), "{e}");
    assert!(e.contains("no storage vol"), "{e}");
    assert!(e.contains("check that the image exists"), "{e}");
    assert_eq!(disks[4].capacity, None);
    assert_eq!(disks[4].size_error, None);
}

#[test]
fn snapshots_oldest_first() {
    let xml = |name: &str, t: u64, parent: &str| {
        format!(
            "<domainsnapshot><name>{name}</name><description>before {name}</description>\
             <state>running</state>{parent}<creationTime>{t}</creationTime>\
             <memory snapshot='internal'/><domain><uuid>x</uuid></domain></domainsnapshot>",
            parent = if parent.is_empty() {
                String::new()
            } else {
                format!("<parent><name>{parent}</name></parent>")
            }
        )
    };
    let s = snapshots_from(vec![
        ("b".into(), Ok(xml("b", 1_767_312_000, "a"))),
        ("a".into(), Ok(xml("a", 1_767_225_600, ""))),
        ("broken".into(), Ok("<domainsnapshot>".into())),
        ("gone".into(), Err("snapshot not found".into())),
    ]);
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["broken", "gone", "a", "b"], "unknown times first");
    assert_eq!(s[2].parent, None);
    assert_eq!(s[3].parent.as_deref(), Some("a"));
    assert_eq!(s[3].state.as_deref(), Some("running"));
    assert_eq!(s[3].description.as_deref(), Some("before b"));
    assert_eq!(s[3].creation_time, Some(1_767_312_000));
    assert_eq!(s[0].creation_time, None);
}

#[test]
fn times_and_sizes_for_the_page() {
    assert_eq!(when(Some(1_767_312_000)), "2026-01-02 00:00 UTC");
    assert_eq!(when(Some(951_782_400 + 3_723)), "2000-02-29 01:02 UTC");
    assert_eq!(when(Some(0)), "1970-01-01 00:00 UTC");
    assert_eq!(when(None), "unknown");
    assert_eq!(size(Some(10 << 30)), "10.0 GiB");
    assert_eq!(size(None), "unknown");
}
