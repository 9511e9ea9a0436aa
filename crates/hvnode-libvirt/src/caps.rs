//! What libvirt's capabilities XML (`capabilities()`) says about the host
//! that its callers need: the security models that confine guests.

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

#[cfg(test)]
mod tests {
    use super::*;

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
