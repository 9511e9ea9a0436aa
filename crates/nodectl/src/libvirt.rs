//! What nodectl asks libvirt: the security models that confine guests
//! (the health report's sVirt check).

/// The connection the node's guests run under.
pub const URI: &str = "qemu:///system";

/// libvirt's security models (`selinux` is sVirt), or why libvirt could not
/// be asked, in words for the report.
pub fn security_models() -> Result<Vec<String>, String> {
    let client = hvnode_libvirt::Client::connect(URI).map_err(|e| e.to_string())?;
    let caps = client.capabilities().map_err(|e| e.to_string())?;
    let models = hvnode_libvirt::caps::security_models(&caps)
        .map_err(|e| format!("reading the capabilities libvirt at {URI} sent: {e}"))?;
    Ok(models.into_iter().map(|m| m.model).collect())
}
