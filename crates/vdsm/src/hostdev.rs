//! `Host.hostdevListByCaps`: the host's devices as libvirt's node-device driver
//! lists them (the engine's Host Devices tab, and what it can pass through to a VM),
//! with the parameters vdsm derives from each device's XML (`lib/vdsm/common/
//! hostdev.py` is the reference): its capability, parent, vendor and product, driver,
//! whether it can be assigned, and for a PCI device its address, IOMMU group, NUMA
//! node, SR-IOV virtual functions and mediated-device types.
//!
//! The answer is `{NAME: {"params": {…}}}`, every value a string as vdsm gives it
//! (`totalvfs` excepted, a number), filtered by the `caps` the engine names.

use std::path::Path;

use roxmltree::{Document, Node};
use serde_json::{Map, Value, json};

/// The PCI header type of an endpoint (bits 0–6 of byte 0x0e of the
/// configuration space); bridges have 1 and 2.
const PCI_ENDPOINT: u8 = 0;

/// The sysfs path of a libvirt PCI device name: `pci_0000_00_1f_2` →
/// `0000:00:1f.2`.
pub fn pci_path(name: &str) -> Option<String> {
    let rest = name.strip_prefix("pci_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    match parts.as_slice() {
        [d, b, s, f] => Some(format!("{d}:{b}:{s}.{f}")),
        _ => None,
    }
}

/// libvirt's name of the PCI device at a `<address domain bus slot function>`
/// (hex attributes with `0x`): `pci_0000_00_1f_2`.
fn pci_name(address: Node<'_, '_>) -> Option<String> {
    let part = |a: &str| {
        address
            .attribute(a)
            .map(|v| v.trim_start_matches("0x").to_string())
    };
    Some(format!(
        "pci_{}_{}_{}_{}",
        part("domain")?,
        part("bus")?,
        part("slot")?,
        part("function")?
    ))
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

fn text_of(node: Node<'_, '_>, tag: &str) -> Option<String> {
    child(node, tag)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The address children `fields` of a capability, as `{field: text}`.
fn address(cap: Node<'_, '_>, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(t) = text_of(cap, f) {
            out.insert((*f).into(), json!(t));
        }
    }
    Value::Object(out)
}

/// Whether the PCI device `name` is an endpoint, from its configuration space under
/// `sysroot` (a bridge cannot be given to a VM); unknown when it cannot be read.
fn pci_endpoint(sysroot: &Path, name: &str) -> Option<bool> {
    let path = sysroot
        .join("sys/bus/pci/devices")
        .join(pci_path(name)?)
        .join("config");
    let config = std::fs::read(path).ok()?;
    config.get(0x0e).map(|b| b & 0x7f == PCI_ENDPOINT)
}

/// The number of SR-IOV virtual functions the PCI device `name` can have.
fn sriov_totalvfs(sysroot: &Path, name: &str) -> Option<u64> {
    let path = sysroot
        .join("sys/bus/pci/devices")
        .join(pci_path(name)?)
        .join("sriov_totalvfs");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One device's name and parameters from its libvirt XML; `None` for XML that is
/// not a device.
pub fn device(xml: &str, sysroot: &Path) -> Option<(String, Map<String, Value>)> {
    let doc = Document::parse(xml).ok()?;
    let dev = doc.root_element();
    if !dev.has_tag_name("device") {
        return None;
    }
    let name = text_of(dev, "name")?;
    let cap = child(dev, "capability")?;
    let capability = cap.attribute("type")?.to_string();
    let mut p = Map::new();
    p.insert("capability".into(), json!(capability));
    p.insert("is_assignable".into(), json!("true"));
    if name != "computer" {
        if let Some(parent) = text_of(dev, "parent") {
            p.insert("parent".into(), json!(parent));
        }
    }
    if let Some(driver) = child(dev, "driver").and_then(|d| text_of(d, "name")) {
        p.insert("driver".into(), json!(driver));
    }
    for c in cap.children().filter(|c| c.is_element()) {
        let tag = c.tag_name().name();
        if matches!(tag, "vendor" | "product" | "interface") {
            if let Some(id) = c.attribute("id") {
                p.insert(format!("{tag}_id"), json!(id));
            }
            if let Some(t) = c.text().map(str::trim).filter(|t| !t.is_empty()) {
                p.insert(tag.into(), json!(t));
            }
        }
    }
    match capability.as_str() {
        "pci" => pci_params(&mut p, &name, cap, sysroot),
        "scsi" => {
            p.insert(
                "address".into(),
                address(cap, &["host", "bus", "target", "lun"]),
            );
        }
        "usb_device" => {
            p.insert("address".into(), address(cap, &["bus", "device"]));
        }
        "storage" => {
            if let Some(model) = text_of(cap, "model") {
                p.insert("product".into(), json!(model));
            }
        }
        "scsi_generic" => {
            if let Some(path) = text_of(cap, "char") {
                p.insert("udev_path".into(), json!(path));
            }
        }
        _ => {}
    }
    Some((name, p))
}

fn pci_params(p: &mut Map<String, Value>, name: &str, cap: Node<'_, '_>, sysroot: &Path) {
    p.insert(
        "address".into(),
        address(cap, &["domain", "bus", "slot", "function"]),
    );
    if let Some(group) = child(cap, "iommuGroup").and_then(|g| g.attribute("number")) {
        p.insert("iommu_group".into(), json!(group));
    }
    if let Some(node) = child(cap, "numa").and_then(|n| n.attribute("node")) {
        p.insert("numa_node".into(), json!(node));
    }
    let nested = child(cap, "capability");
    let nested_type = nested.and_then(|n| n.attribute("type"));
    let assignable = match nested_type {
        Some("pci-bridge" | "cardbus-bridge") => false,
        _ => pci_endpoint(sysroot, name).unwrap_or(false),
    };
    p.insert("is_assignable".into(), json!(assignable.to_string()));
    if nested_type == Some("phys_function") {
        if let Some(pf) = nested.and_then(|n| child(n, "address")).and_then(pci_name) {
            p.insert("physfn".into(), json!(pf));
        }
    }
    if let Some(vfs) = sriov_totalvfs(sysroot, name) {
        p.insert("totalvfs".into(), json!(vfs));
    }
    // Mediated-device types (vGPUs): each with its name and free instances; a type
    // that does not say how many are free is left out, as vdsm leaves it.
    let mdev = cap
        .children()
        .find(|c| c.has_tag_name("capability") && c.attribute("type") == Some("mdev_types"));
    if let Some(mdev) = mdev {
        let mut types = Map::new();
        for t in mdev.children().filter(|c| c.has_tag_name("type")) {
            let (Some(id), Some(available)) = (t.attribute("id"), text_of(t, "availableInstances"))
            else {
                continue;
            };
            types.insert(
                id.into(),
                json!({"name": text_of(t, "name").unwrap_or_default(), "available_instances": available}),
            );
        }
        if !types.is_empty() {
            p.insert("mdev".into(), Value::Object(types));
        }
    }
}

/// `Host.hostdevListByCaps`'s answer from each device's `(name, XML)`: the devices
/// whose capability is one of `caps` (all without it).
pub fn list_by_caps(
    devices: &[(String, String)],
    caps: Option<&[String]>,
    sysroot: &Path,
) -> Value {
    let mut out = Map::new();
    for (listed, xml) in devices {
        let Some((name, params)) = device(xml, sysroot) else {
            tracing::debug!(device = %listed, "a host device whose XML is not a device, left out");
            continue;
        };
        let wanted = caps.is_none_or(|c| {
            params
                .get("capability")
                .and_then(Value::as_str)
                .is_some_and(|cap| c.iter().any(|w| w == cap))
        });
        if wanted {
            out.insert(name, json!({ "params": params }));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SATA: &str = "<device>
  <name>pci_0000_00_1f_2</name>
  <path>/sys/devices/pci0000:00/0000:00:1f.2</path>
  <parent>computer</parent>
  <driver><name>ahci</name></driver>
  <capability type='pci'>
    <class>0x010601</class>
    <domain>0</domain><bus>0</bus><slot>31</slot><function>2</function>
    <product id='0x2922'>82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]</product>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <iommuGroup number='7'><address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/></iommuGroup>
    <numa node='0'/>
  </capability>
</device>";

    const BRIDGE: &str = "<device>
  <name>pci_0000_00_1c_0</name>
  <parent>computer</parent>
  <capability type='pci'>
    <domain>0</domain><bus>0</bus><slot>28</slot><function>0</function>
    <product id='0x2940'/>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <capability type='pci-bridge'/>
  </capability>
</device>";

    const VF: &str = "<device>
  <name>pci_0000_03_10_0</name>
  <parent>pci_0000_00_1c_0</parent>
  <driver><name>ixgbevf</name></driver>
  <capability type='pci'>
    <domain>0</domain><bus>3</bus><slot>16</slot><function>0</function>
    <product id='0x10ed'>82599 Ethernet Controller Virtual Function</product>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <capability type='phys_function'>
      <address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </capability>
  </capability>
</device>";

    const COMPUTER: &str = "<device><name>computer</name>
  <capability type='system'><product>Standard PC</product><hardware><vendor>QEMU</vendor></hardware></capability>
</device>";

    fn sysroot_with_config(addr: &str, header_type: u8) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/bus/pci/devices").join(addr);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = vec![0u8; 64];
        config[0x0e] = header_type | 0x80; // multifunction bit set
        std::fs::write(dir.join("config"), config).unwrap();
        root
    }

    #[test]
    fn a_pci_endpoint_is_described_as_vdsm_describes_it() {
        let root = sysroot_with_config("0000:00:1f.2", 0);
        let (name, p) = device(SATA, root.path()).unwrap();
        assert_eq!(name, "pci_0000_00_1f_2");
        assert_eq!(
            Value::Object(p),
            json!({
                "capability": "pci",
                "is_assignable": "true",
                "parent": "computer",
                "driver": "ahci",
                "product": "82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]",
                "product_id": "0x2922",
                "vendor": "Intel Corporation",
                "vendor_id": "0x8086",
                "address": {"domain": "0", "bus": "0", "slot": "31", "function": "2"},
                "iommu_group": "7",
                "numa_node": "0",
            })
        );
    }

    #[test]
    fn bridges_are_not_assignable_and_virtual_functions_name_their_parent() {
        let root = sysroot_with_config("0000:00:1c.0", 1);
        let (_, bridge) = device(BRIDGE, root.path()).unwrap();
        assert_eq!(bridge["is_assignable"], "false");
        assert!(bridge.get("product").is_none(), "an empty name is left out");
        assert_eq!(bridge["product_id"], "0x2940");
        // No configuration space to read: not known to be an endpoint.
        let (_, vf) = device(VF, Path::new("/nonexistent")).unwrap();
        assert_eq!(vf["physfn"], "pci_0000_03_00_0");
        assert_eq!(vf["parent"], "pci_0000_00_1c_0");
        assert_eq!(vf["is_assignable"], "false");
    }

    #[test]
    fn the_list_is_filtered_by_capability() {
        let root = sysroot_with_config("0000:00:1f.2", 0);
        let devices: Vec<(String, String)> = [COMPUTER, SATA, "<not-a-device/>", "garbage <"]
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("d{i}"), x.to_string()))
            .collect();
        let all = list_by_caps(&devices, None, root.path());
        let names: Vec<&String> = all.as_object().unwrap().keys().collect();
        assert_eq!(names, ["computer", "pci_0000_00_1f_2"]);
        assert!(all["computer"]["params"].get("parent").is_none());
        assert_eq!(all["computer"]["params"]["product"], "Standard PC");
        let pci = list_by_caps(&devices, Some(&["pci".to_string()]), root.path());
        assert_eq!(pci.as_object().unwrap().len(), 1);
        assert_eq!(pci["pci_0000_00_1f_2"]["params"]["capability"], "pci");
        assert_eq!(
            pci_path("pci_0000_00_1f_2").as_deref(),
            Some("0000:00:1f.2")
        );
        assert_eq!(pci_path("usb_1_1"), None);
    }
}
