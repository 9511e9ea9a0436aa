//! The XML the console gives libvirt for what it creates: a VM, its disk volume, a
//! snapshot, a directory pool. Every value is escaped; every value was checked
//! before ([`super::check_spec`]).

use std::fmt::Write as _;

/// `s` escaped for XML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// How a new VM reaches the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nic {
    /// A libvirt virtual network.
    Network(String),
    /// A bridge of the host (`ovirtmgmt`, `br0`).
    Bridge(String),
}

/// The firmware a new VM boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
    UefiSecureBoot,
}

impl std::str::FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bios" => Ok(Self::Bios),
            "uefi" => Ok(Self::Uefi),
            "uefi-secure-boot" => Ok(Self::UefiSecureBoot),
            _ => Err(format!(
                "firmware {s:?} is not one of bios, uefi, uefi-secure-boot"
            )),
        }
    }
}

/// What [`domain`] makes a VM of.
#[derive(Debug, Clone)]
pub struct DomainSpec<'a> {
    pub name: &'a str,
    /// `kvm` where the host has it, else `qemu` (TCG).
    pub virt_type: &'a str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub firmware: Firmware,
    /// The path of its disk, a qcow2 volume.
    pub disk: &'a str,
    /// The path of an installation medium, attached as a CD-ROM.
    pub iso: Option<&'a str>,
    pub nic: Nic,
}

/// A VM's definition: q35, virtio disk and NIC, a serial console, a VNC display
/// on a unix socket that libvirt makes in the VM's own folder (the console
/// relays it; no TCP port at all), the guest agent's channel, a virtio RNG. No `<seclabel>`: libvirt
/// gives every VM a dynamic sVirt label of its own.
pub fn domain(s: &DomainSpec<'_>) -> String {
    let mut x = String::new();
    let name = escape(s.name);
    let _ = writeln!(x, "<domain type='{}'>", escape(s.virt_type));
    let _ = writeln!(x, "  <name>{name}</name>");
    let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", s.memory_mib);
    let _ = writeln!(x, "  <vcpu placement='static'>{}</vcpu>", s.vcpus);
    match s.firmware {
        Firmware::Bios => x.push_str("  <os>\n"),
        Firmware::Uefi => x.push_str("  <os firmware='efi'>\n"),
        Firmware::UefiSecureBoot => x.push_str(
            "  <os firmware='efi'>\n    <firmware>\n      \
             <feature enabled='yes' name='secure-boot'/>\n      \
             <feature enabled='yes' name='enrolled-keys'/>\n    </firmware>\n",
        ),
    }
    x.push_str("    <type arch='x86_64' machine='q35'>hvm</type>\n");
    x.push_str("    <boot dev='hd'/>\n");
    if s.iso.is_some() {
        x.push_str("    <boot dev='cdrom'/>\n");
    }
    x.push_str("  </os>\n  <features>\n    <acpi/>\n    <apic/>\n");
    if s.firmware == Firmware::UefiSecureBoot {
        x.push_str("    <smm state='on'/>\n");
    }
    x.push_str("  </features>\n");
    if s.virt_type == "kvm" {
        x.push_str("  <cpu mode='host-model'/>\n");
    }
    x.push_str("  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n");
    x.push_str("  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n");
    x.push_str("  <devices>\n");
    let _ = writeln!(
        x,
        "    <disk type='file' device='disk'>\n      \
         <driver name='qemu' type='qcow2' discard='unmap'/>\n      \
         <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>",
        escape(s.disk)
    );
    if let Some(iso) = s.iso {
        let _ = writeln!(
            x,
            "    <disk type='file' device='cdrom'>\n      \
             <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      \
             <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>",
            escape(iso)
        );
    }
    let (kind, attr, source) = match &s.nic {
        Nic::Network(n) => ("network", "network", n),
        Nic::Bridge(b) => ("bridge", "bridge", b),
    };
    let _ = writeln!(
        x,
        "    <interface type='{kind}'>\n      <source {attr}='{}'/>\n      \
         <model type='virtio'/>\n    </interface>",
        escape(source)
    );
    x.push_str(
        "    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n    \
         <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n    \
         <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n    \
         </channel>\n    \
         <graphics type='vnc'>\n      <listen type='socket'/>\n    </graphics>\n    \
         <video>\n      <model type='virtio'/>\n    </video>\n    \
         <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n    </rng>\n    \
         <memballoon model='virtio'/>\n  </devices>\n</domain>\n",
    );
    x
}

/// A new qcow2 volume of `gib` GiB, allocated as the guest writes.
pub fn volume(name: &str, gib: u64) -> String {
    format!(
        "<volume>\n  <name>{}</name>\n  <capacity unit='GiB'>{gib}</capacity>\n  \
         <allocation>0</allocation>\n  <target>\n    <format type='qcow2'/>\n  \
         </target>\n</volume>\n",
        escape(name)
    )
}

/// A snapshot named `name`, with its description.
pub fn snapshot(name: &str, description: Option<&str>) -> String {
    let mut x = format!("<domainsnapshot>\n  <name>{}</name>\n", escape(name));
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        let _ = writeln!(x, "  <description>{}</description>", escape(d));
    }
    x.push_str("</domainsnapshot>\n");
    x
}

/// A directory pool at `path`.
pub fn dir_pool(name: &str, path: &str) -> String {
    format!(
        "<pool type='dir'>\n  <name>{}</name>\n  <target>\n    <path>{}</path>\n  \
         </target>\n</pool>\n",
        escape(name),
        escape(path)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec() -> DomainSpec<'static> {
        DomainSpec {
            name: "web1",
            virt_type: "qemu",
            vcpus: 2,
            memory_mib: 1024,
            firmware: Firmware::Bios,
            disk: "/var/lib/libvirt/images/web1.qcow2",
            iso: Some("/srv/iso/debian 12.iso"),
            nic: Nic::Network("default".into()),
        }
    }

    #[test]
    fn a_domain_is_well_formed_and_says_what_was_asked() {
        let xml = domain(&spec());
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("type"), Some("qemu"));
        let text = |tag: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .unwrap()
                .to_string()
        };
        assert_eq!(text("name"), "web1");
        assert_eq!(text("memory"), "1024");
        assert_eq!(text("vcpu"), "2");
        let sources: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("source"))
            .map(|n| {
                n.attributes()
                    .map(|a| a.value().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            sources,
            [
                vec!["/var/lib/libvirt/images/web1.qcow2".to_string()],
                vec!["/srv/iso/debian 12.iso".to_string()],
                vec!["default".to_string()],
            ]
        );
        // VNC on a unix socket, no TCP port; no CPU mode under TCG.
        let vnc = doc
            .descendants()
            .find(|n| n.has_tag_name("graphics"))
            .unwrap();
        assert_eq!(vnc.attribute("listen"), None);
        let listen = vnc.children().find(|n| n.has_tag_name("listen")).unwrap();
        assert_eq!(listen.attribute("type"), Some("socket"));
        assert!(!xml.contains("<cpu"));
        assert!(!xml.contains("seclabel"));
        assert!(!xml.contains("firmware="));
    }

    #[test]
    fn uefi_and_secure_boot_and_bridges() {
        let mut s = spec();
        s.firmware = Firmware::UefiSecureBoot;
        s.virt_type = "kvm";
        s.iso = None;
        s.nic = Nic::Bridge("ovirtmgmt".into());
        let xml = domain(&s);
        roxmltree::Document::parse(&xml).unwrap();
        assert!(xml.contains("<os firmware='efi'>"));
        assert!(xml.contains("name='secure-boot'"));
        assert!(xml.contains("<smm state='on'/>"));
        assert!(xml.contains("<cpu mode='host-model'/>"));
        assert!(xml.contains("<source bridge='ovirtmgmt'/>"));
        assert!(!xml.contains("cdrom"));
        assert_eq!("uefi".parse::<Firmware>().unwrap(), Firmware::Uefi);
        assert!(
            "efi"
                .parse::<Firmware>()
                .unwrap_err()
                .contains("bios, uefi")
        );
    }

    #[test]
    fn values_are_escaped() {
        let x = snapshot("a", Some("<b> & 'c'"));
        let doc = roxmltree::Document::parse(&x).unwrap();
        let d = doc
            .descendants()
            .find(|n| n.has_tag_name("description"))
            .unwrap();
        assert_eq!(d.text(), Some("<b> & 'c'"));
        assert!(!snapshot("a", Some("")).contains("description"));
        let p = dir_pool("p", "/srv/a&b");
        assert!(roxmltree::Document::parse(&p).is_ok());
        assert!(volume("v.qcow2", 20).contains("<capacity unit='GiB'>20</capacity>"));
    }
}
