//! The remote procedures this client calls: one table gives each its number in
//! libvirt's `remote_protocol.x` (`enum remote_procedure`; numbers never change
//! there), its `REMOTE_PROC_…` name, the libvirt API function it serves (as
//! messages name the call) and the shape of its successful answer.

/// The shape of a procedure's successful answer, which [`crate::decode_reply`]
/// decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// Nothing (`void`).
    Done,
    /// One `remote_nonnull_string`, named for messages.
    Text(&'static str),
    /// One `int` used as a boolean, named for messages.
    Flag(&'static str),
    AuthTypes,
    Domain,
    Domains,
    Info,
    Names,
    Snapshot,
    Snapshots,
    Pool,
    Pools,
    PoolInfo,
    Vol,
    Vols,
    VolInfo,
    Network,
    Networks,
    BlockInfo,
    BlockStats,
    InterfaceStats,
}

macro_rules! procedures {
    ($( $variant:ident = $num:literal, $remote:literal, $api:literal, $answer:expr; )*) => {
        /// The remote procedures this client calls.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Procedure {
            $( $variant, )*
        }

        impl Procedure {
            /// Every procedure this client calls.
            pub const ALL: &'static [Procedure] = &[ $( Self::$variant, )* ];

            /// The procedure's number on the wire.
            pub const fn number(self) -> i32 {
                match self { $( Self::$variant => $num, )* }
            }

            /// Its name in `remote_protocol.x` (`REMOTE_PROC_…`).
            pub const fn remote_name(self) -> &'static str {
                match self { $( Self::$variant => concat!("REMOTE_PROC_", $remote), )* }
            }

            /// The libvirt API function it serves, as messages name the call.
            pub const fn api_name(self) -> &'static str {
                match self { $( Self::$variant => $api, )* }
            }

            /// The shape of its successful answer.
            pub(crate) const fn answer(self) -> AnswerKind {
                use AnswerKind::*;
                match self { $( Self::$variant => $answer, )* }
            }
        }
    };
}

procedures! {
    ConnectOpen = 1, "CONNECT_OPEN", "virConnectOpen", Done;
    ConnectClose = 2, "CONNECT_CLOSE", "virConnectClose", Done;
    ConnectGetCapabilities = 7, "CONNECT_GET_CAPABILITIES", "virConnectGetCapabilities", Text("capabilities");
    DomainCreate = 9, "DOMAIN_CREATE", "virDomainCreate", Done;
    DomainDestroy = 12, "DOMAIN_DESTROY", "virDomainDestroy", Done;
    DomainGetXmlDesc = 14, "DOMAIN_GET_XML_DESC", "virDomainGetXMLDesc", Text("domain XML");
    DomainGetAutostart = 15, "DOMAIN_GET_AUTOSTART", "virDomainGetAutostart", Flag("autostart");
    DomainGetInfo = 16, "DOMAIN_GET_INFO", "virDomainGetInfo", Info;
    DomainLookupByName = 23, "DOMAIN_LOOKUP_BY_NAME", "virDomainLookupByName", Domain;
    DomainLookupByUuid = 24, "DOMAIN_LOOKUP_BY_UUID", "virDomainLookupByUUID", Domain;
    DomainReboot = 27, "DOMAIN_REBOOT", "virDomainReboot", Done;
    DomainShutdown = 33, "DOMAIN_SHUTDOWN", "virDomainShutdown", Done;
    AuthList = 66, "AUTH_LIST", "authentication (auth list)", AuthTypes;
    AuthPolkit = 70, "AUTH_POLKIT", "authentication (polkit)", Done;
    DomainIsPersistent = 151, "DOMAIN_IS_PERSISTENT", "virDomainIsPersistent", Flag("persistence");
    ConnectListAllDomains = 273, "CONNECT_LIST_ALL_DOMAINS", "virConnectListAllDomains", Domains;
    NodeDeviceGetXmlDesc = 114, "NODE_DEVICE_GET_XML_DESC", "virNodeDeviceGetXMLDesc", Text("node device XML");
    ConnectListAllNodeDevices = 285, "CONNECT_LIST_ALL_NODE_DEVICES", "virConnectListAllNodeDevices", Names;
    ConnectGetDomainCapabilities = 342, "CONNECT_GET_DOMAIN_CAPABILITIES", "virConnectGetDomainCapabilities", Text("domain capabilities");
    DomainSuspend = 34, "DOMAIN_SUSPEND", "virDomainSuspend", Done;
    DomainResume = 28, "DOMAIN_RESUME", "virDomainResume", Done;
    // Defining, changing and removing domains.
    DomainDefineXml = 11, "DOMAIN_DEFINE_XML", "virDomainDefineXML", Domain;
    DomainUndefineFlags = 231, "DOMAIN_UNDEFINE_FLAGS", "virDomainUndefineFlags", Done;
    DomainSetAutostart = 29, "DOMAIN_SET_AUTOSTART", "virDomainSetAutostart", Done;
    DomainSetVcpusFlags = 199, "DOMAIN_SET_VCPUS_FLAGS", "virDomainSetVcpusFlags", Done;
    DomainSetMemoryFlags = 204, "DOMAIN_SET_MEMORY_FLAGS", "virDomainSetMemoryFlags", Done;
    DomainGetBlockInfo = 194, "DOMAIN_GET_BLOCK_INFO", "virDomainGetBlockInfo", BlockInfo;
    DomainBlockStats = 64, "DOMAIN_BLOCK_STATS", "virDomainBlockStats", BlockStats;
    DomainInterfaceStats = 65, "DOMAIN_INTERFACE_STATS", "virDomainInterfaceStats", InterfaceStats;
    DomainOpenConsole = 201, "DOMAIN_OPEN_CONSOLE", "virDomainOpenConsole", Done;
    // Snapshots.
    DomainSnapshotCreateXml = 185, "DOMAIN_SNAPSHOT_CREATE_XML", "virDomainSnapshotCreateXML", Snapshot;
    DomainSnapshotGetXmlDesc = 186, "DOMAIN_SNAPSHOT_GET_XML_DESC", "virDomainSnapshotGetXMLDesc", Text("snapshot XML");
    DomainSnapshotLookupByName = 189, "DOMAIN_SNAPSHOT_LOOKUP_BY_NAME", "virDomainSnapshotLookupByName", Snapshot;
    DomainRevertToSnapshot = 192, "DOMAIN_REVERT_TO_SNAPSHOT", "virDomainRevertToSnapshot", Done;
    DomainSnapshotDelete = 193, "DOMAIN_SNAPSHOT_DELETE", "virDomainSnapshotDelete", Done;
    DomainListAllSnapshots = 274, "DOMAIN_LIST_ALL_SNAPSHOTS", "virDomainListAllSnapshots", Snapshots;
    // Storage pools and volumes.
    StoragePoolDefineXml = 77, "STORAGE_POOL_DEFINE_XML", "virStoragePoolDefineXML", Pool;
    StoragePoolCreate = 78, "STORAGE_POOL_CREATE", "virStoragePoolCreate", Done;
    StoragePoolBuild = 79, "STORAGE_POOL_BUILD", "virStoragePoolBuild", Done;
    StoragePoolDestroy = 80, "STORAGE_POOL_DESTROY", "virStoragePoolDestroy", Done;
    StoragePoolUndefine = 82, "STORAGE_POOL_UNDEFINE", "virStoragePoolUndefine", Done;
    StoragePoolRefresh = 83, "STORAGE_POOL_REFRESH", "virStoragePoolRefresh", Done;
    StoragePoolLookupByName = 84, "STORAGE_POOL_LOOKUP_BY_NAME", "virStoragePoolLookupByName", Pool;
    StoragePoolGetInfo = 87, "STORAGE_POOL_GET_INFO", "virStoragePoolGetInfo", PoolInfo;
    StoragePoolGetXmlDesc = 88, "STORAGE_POOL_GET_XML_DESC", "virStoragePoolGetXMLDesc", Text("storage pool XML");
    StoragePoolGetAutostart = 89, "STORAGE_POOL_GET_AUTOSTART", "virStoragePoolGetAutostart", Flag("autostart");
    StoragePoolSetAutostart = 90, "STORAGE_POOL_SET_AUTOSTART", "virStoragePoolSetAutostart", Done;
    StorageVolCreateXml = 93, "STORAGE_VOL_CREATE_XML", "virStorageVolCreateXML", Vol;
    StorageVolDelete = 94, "STORAGE_VOL_DELETE", "virStorageVolDelete", Done;
    StorageVolLookupByPath = 97, "STORAGE_VOL_LOOKUP_BY_PATH", "virStorageVolLookupByPath", Vol;
    StorageVolGetInfo = 98, "STORAGE_VOL_GET_INFO", "virStorageVolGetInfo", VolInfo;
    StorageVolGetPath = 100, "STORAGE_VOL_GET_PATH", "virStorageVolGetPath", Text("volume path");
    ConnectListAllStoragePools = 281, "CONNECT_LIST_ALL_STORAGE_POOLS", "virConnectListAllStoragePools", Pools;
    StoragePoolListAllVolumes = 282, "STORAGE_POOL_LIST_ALL_VOLUMES", "virStoragePoolListAllVolumes", Vols;
    // Virtual networks.
    NetworkCreate = 39, "NETWORK_CREATE", "virNetworkCreate", Done;
    NetworkDestroy = 42, "NETWORK_DESTROY", "virNetworkDestroy", Done;
    NetworkGetXmlDesc = 43, "NETWORK_GET_XML_DESC", "virNetworkGetXMLDesc", Text("network XML");
    NetworkGetAutostart = 44, "NETWORK_GET_AUTOSTART", "virNetworkGetAutostart", Flag("autostart");
    NetworkLookupByName = 46, "NETWORK_LOOKUP_BY_NAME", "virNetworkLookupByName", Network;
    NetworkIsActive = 152, "NETWORK_IS_ACTIVE", "virNetworkIsActive", Flag("activity");
    ConnectListAllNetworks = 283, "CONNECT_LIST_ALL_NETWORKS", "virConnectListAllNetworks", Networks;
}

impl Procedure {
    /// The procedure of a number, if this client calls it.
    pub fn from_number(n: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.number() == n)
    }
}
