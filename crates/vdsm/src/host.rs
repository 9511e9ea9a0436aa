//! The `Host.*` verbs served so far, from the node's own facts.
//!
//! The engine calls, in order (docs of the protocol: `Host.ping2` while it deploys,
//! then `Host.getCapabilities`, `Host.getHardwareInfo`, `Host.getStats` to take the
//! host Up, then `Host.getAllVmStats` every few seconds). A verb not served yet is
//! answered "method not found" (-32601), never with made-up facts.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::jsonrpc::{RpcError, Verbs, code};

/// The node's verbs, reading its files under `sysroot` (`/` on a node).
#[derive(Debug, Clone)]
pub struct HostVerbs {
    pub sysroot: PathBuf,
}

impl HostVerbs {
    pub fn new(sysroot: impl Into<PathBuf>) -> Self {
        Self {
            sysroot: sysroot.into(),
        }
    }

    /// `Host.getHardwareInfo`: the DMI facts the kernel exports; each field only
    /// when the firmware gives it (the engine takes every one as optional).
    fn hardware_info(&self) -> Value {
        let dmi = self.sysroot.join("sys/class/dmi/id");
        let mut info = Map::new();
        for (field, file) in [
            ("systemManufacturer", "sys_vendor"),
            ("systemProductName", "product_name"),
            ("systemVersion", "product_version"),
            ("systemSerialNumber", "product_serial"),
            ("systemUUID", "product_uuid"),
            ("systemFamily", "product_family"),
        ] {
            let value = std::fs::read_to_string(dmi.join(file)).unwrap_or_default();
            let value = value.trim();
            if !value.is_empty() {
                info.insert(field.into(), json!(value));
            }
        }
        Value::Object(info)
    }
}

impl Verbs for HostVerbs {
    fn call(&self, method: &str, _params: &Map<String, Value>) -> Result<Value, RpcError> {
        match method {
            // The engine polls it while it deploys the host, and during a network
            // change it keeps the connection (and the change) alive.
            "Host.ping2" | "Host.confirmConnectivity" => Ok(Value::Bool(true)),
            "Host.getHardwareInfo" => Ok(self.hardware_info()),
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "The method does not exist or is not available: {other} (hvnode-vdsm does not serve it yet)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_info_gives_what_the_firmware_says_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let dmi = root.path().join("sys/class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::write(dmi.join("product_name"), "Standard PC (Q35 + ICH9, 2009)\n").unwrap();
        std::fs::write(dmi.join("product_serial"), "\n").unwrap();
        let verbs = HostVerbs::new(root.path());
        let info = verbs.call("Host.getHardwareInfo", &Map::new()).unwrap();
        assert_eq!(
            info,
            json!({"systemManufacturer": "QEMU", "systemProductName": "Standard PC (Q35 + ICH9, 2009)"})
        );
        assert_eq!(verbs.call("Host.ping2", &Map::new()), Ok(Value::Bool(true)));
        let e = verbs.call("Host.getStats", &Map::new()).unwrap_err();
        assert_eq!(e.code, code::METHOD_NOT_FOUND);
    }
}
