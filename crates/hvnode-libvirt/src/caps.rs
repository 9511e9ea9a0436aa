//! What libvirt's capabilities XML (`capabilities()`) says about the host
//! that its callers need: the security models that confine guests; and what
//! its domain capabilities (`domain_capabilities()`) say: the CPU models a
//! guest may be given here.

use serde::Serialize;

/// A security model the hypervisor offers (`<host><secmodel>`): `selinux`
/// is sVirt, `dac` the user/group separation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecModel {
    pub model: String,
    pub doi: String,
}

/// Parses the `<host><secmodel>` elements of a capabilities document; a
/// guest's `<secmodel>` is not the host's and is left out.
pub fn security_models(xml: &str) -> Result<Vec<SecModel>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let text = |n: roxmltree::Node, name: &str| {
        n.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("secmodel"))
        .filter(|n| n.parent().is_some_and(|p| p.has_tag_name("host")))
        .map(|n| SecModel {
            model: text(n, "model"),
            doi: text(n, "doi"),
        })
        .filter(|m| !m.model.is_empty())
        .collect())
}

/// The CPU models of `<cpu><mode name='custom'>` that libvirt marks usable on
/// this host (`usable='yes'`), in its order: the models a guest's CPU may be
/// here. A model of unknown usability is left out.
pub fn usable_cpu_models(domcaps_xml: &str) -> Result<Vec<String>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(domcaps_xml)?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("mode") && n.attribute("name") == Some("custom"))
        .filter(|n| n.parent().is_some_and(|p| p.has_tag_name("cpu")))
        .flat_map(|mode| mode.children().filter(|c| c.has_tag_name("model")))
        .filter(|m| m.attribute("usable") == Some("yes"))
        .filter_map(|m| m.text().map(str::trim).filter(|t| !t.is_empty()))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_cpu_models_are_the_custom_modes_usable_ones() {
        let xml = "<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path>
          <cpu>
            <mode name='host-passthrough' supported='yes'/>
            <mode name='host-model' supported='yes'><model fallback='forbid'>EPYC-Rome</model></mode>
            <mode name='custom' supported='yes'>
              <model usable='yes' vendor='Intel'>qemu64</model>
              <model usable='no' vendor='Intel'>Skylake-Client-IBRS</model>
              <model usable='yes' vendor='AMD'>EPYC</model>
              <model usable='unknown'>Dhyana</model>
            </mode>
          </cpu>
          <devices><disk><enum name='model'><value>virtio</value></enum></disk></devices>
        </domainCapabilities>";
        assert_eq!(usable_cpu_models(xml).unwrap(), ["qemu64", "EPYC"]);
        assert!(
            usable_cpu_models("<domainCapabilities/>")
                .unwrap()
                .is_empty()
        );
        assert!(usable_cpu_models("<not xml").is_err());
    }

    #[test]
    fn host_secmodels_from_capabilities() {
        let caps = "<capabilities><host><uuid>x</uuid>\
            <secmodel><model>selinux</model><doi>0</doi></secmodel>\
            <secmodel><model>dac</model><doi>0</doi></secmodel></host>\
            <guest><secmodel><model>ignored</model></secmodel></guest></capabilities>";
        let m = security_models(caps).unwrap();
        let names: Vec<_> = m.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(names, ["selinux", "dac"]);
        assert!(security_models("<capabilities>").is_err());
    }
}
