//! The calls that manage what a node hosts: define, change and remove domains; their
//! snapshots; storage pools and volumes; virtual networks; and a running domain's
//! disk and NIC figures. Flags are libvirt's numbers; the ones callers need are
//! named here.

use crate::client::{Client, check_arg, protocol};
use crate::error::Error;
use crate::objects::{
    self as o, BlockInfo, BlockStats, InterfaceStats, Network, PoolInfo, Snapshot, StoragePool,
    StorageVol, VolInfo,
};
use crate::types::Domain;
use crate::wire::{self, Procedure};
use crate::xdr::Enc;

type Result<T> = std::result::Result<T, Error>;

/// `VIR_DOMAIN_AFFECT_LIVE`: change the running domain.
pub const AFFECT_LIVE: u32 = 1;
/// `VIR_DOMAIN_AFFECT_CONFIG`: change the persistent definition.
pub const AFFECT_CONFIG: u32 = 2;
/// `VIR_DOMAIN_VCPU_MAXIMUM` / `VIR_DOMAIN_MEM_MAXIMUM`: change the maximum.
pub const MAXIMUM: u32 = 4;
/// `VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA`: undefine a domain that has snapshots.
pub const UNDEFINE_SNAPSHOTS_METADATA: u32 = 2;
/// `VIR_DOMAIN_UNDEFINE_NVRAM`: also remove a UEFI domain's variable store.
pub const UNDEFINE_NVRAM: u32 = 4;
/// `VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING`: run the domain after the revert.
pub const REVERT_RUNNING: u32 = 1;

/// The arguments `need_results = 1, flags` of the "list all" calls.
fn listing_args() -> Vec<u8> {
    let mut args = Enc::default();
    args.i32(1).u32(0);
    args.0
}

impl Client {
    /// Defines (or redefines) a persistent domain from its XML (`virDomainDefineXML`).
    pub fn define_domain(&self, xml: &str) -> Result<Domain> {
        check_arg("a domain XML", xml)?;
        let p = Procedure::DomainDefineXml;
        let mut args = Enc::default();
        args.string(xml);
        wire::decode_domain(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// Removes a domain's definition (`virDomainUndefineFlags`); a running domain
    /// keeps running, transient, until it stops.
    pub fn undefine_domain(&self, dom: &Domain, flags: u32) -> Result<()> {
        self.domain_call(Procedure::DomainUndefineFlags, dom, Some(flags))
            .map(drop)
    }

    /// Whether the domain starts with the host (`virDomainSetAutostart`).
    pub fn set_domain_autostart(&self, dom: &Domain, on: bool) -> Result<()> {
        check_arg("a domain name", &dom.name)?;
        let mut args = Enc::default();
        args.domain(dom).i32(i32::from(on));
        self.call(Procedure::DomainSetAutostart, &args.0).map(drop)
    }

    /// The domain's vCPU count (`virDomainSetVcpusFlags`; `flags`: [`AFFECT_LIVE`],
    /// [`AFFECT_CONFIG`], [`MAXIMUM`]).
    pub fn set_domain_vcpus(&self, dom: &Domain, vcpus: u32, flags: u32) -> Result<()> {
        check_arg("a domain name", &dom.name)?;
        let mut args = Enc::default();
        args.domain(dom).u32(vcpus).u32(flags);
        self.call(Procedure::DomainSetVcpusFlags, &args.0).map(drop)
    }

    /// The domain's memory in KiB (`virDomainSetMemoryFlags`; flags as
    /// [`Client::set_domain_vcpus`]).
    pub fn set_domain_memory(&self, dom: &Domain, kib: u64, flags: u32) -> Result<()> {
        check_arg("a domain name", &dom.name)?;
        let mut args = Enc::default();
        args.domain(dom).u64(kib).u32(flags);
        self.call(Procedure::DomainSetMemoryFlags, &args.0)
            .map(drop)
    }

    /// A disk's sizes (`virDomainGetBlockInfo`); `disk` is its target (`vda`) or
    /// its source path.
    pub fn block_info(&self, dom: &Domain, disk: &str) -> Result<BlockInfo> {
        let p = Procedure::DomainGetBlockInfo;
        let body = self.call(p, &disk_args(dom, disk, Some(0))?)?;
        o::decode_block_info(&body).map_err(protocol(p))
    }

    /// A running domain's disk counters (`virDomainBlockStats`).
    pub fn block_stats(&self, dom: &Domain, disk: &str) -> Result<BlockStats> {
        let p = Procedure::DomainBlockStats;
        let body = self.call(p, &disk_args(dom, disk, None)?)?;
        o::decode_block_stats(&body).map_err(protocol(p))
    }

    /// A running domain's NIC counters (`virDomainInterfaceStats`); `nic` is its
    /// host-side device (`vnet0`) or its MAC address.
    pub fn interface_stats(&self, dom: &Domain, nic: &str) -> Result<InterfaceStats> {
        let p = Procedure::DomainInterfaceStats;
        let body = self.call(p, &disk_args(dom, nic, None)?)?;
        o::decode_interface_stats(&body).map_err(protocol(p))
    }

    /// Takes a snapshot described by `xml` (`<domainsnapshot>…`,
    /// `virDomainSnapshotCreateXML`).
    pub fn create_snapshot(&self, dom: &Domain, xml: &str, flags: u32) -> Result<Snapshot> {
        check_arg("a domain name", &dom.name)?;
        check_arg("a snapshot XML", xml)?;
        let p = Procedure::DomainSnapshotCreateXml;
        let mut args = Enc::default();
        args.domain(dom).string(xml).u32(flags);
        o::decode_snapshot(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// The domain's snapshots (`virDomainListAllSnapshots` without filter).
    pub fn list_snapshots(&self, dom: &Domain) -> Result<Vec<Snapshot>> {
        check_arg("a domain name", &dom.name)?;
        let p = Procedure::DomainListAllSnapshots;
        let mut args = Enc::default();
        args.domain(dom).i32(1).u32(0);
        o::decode_snapshots(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// The domain's snapshot named `name` (`virDomainSnapshotLookupByName`).
    pub fn lookup_snapshot(&self, dom: &Domain, name: &str) -> Result<Snapshot> {
        check_arg("a domain name", &dom.name)?;
        check_arg("a snapshot name", name)?;
        let p = Procedure::DomainSnapshotLookupByName;
        let mut args = Enc::default();
        args.domain(dom).string(name).u32(0);
        o::decode_snapshot(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// A snapshot's XML (`virDomainSnapshotGetXMLDesc`).
    pub fn snapshot_xml(&self, snap: &Snapshot, flags: u32) -> Result<String> {
        let p = Procedure::DomainSnapshotGetXmlDesc;
        let body = self.call(p, &snapshot_args(snap, flags)?)?;
        wire::decode_string(&body, "snapshot XML").map_err(protocol(p))
    }

    /// Puts the domain back as it was at the snapshot
    /// (`virDomainRevertToSnapshot`; [`REVERT_RUNNING`] runs it afterwards).
    pub fn revert_to_snapshot(&self, snap: &Snapshot, flags: u32) -> Result<()> {
        let args = snapshot_args(snap, flags)?;
        self.call(Procedure::DomainRevertToSnapshot, &args)
            .map(drop)
    }

    /// Deletes a snapshot, merging its data into its parent (`virDomainSnapshotDelete`).
    pub fn delete_snapshot(&self, snap: &Snapshot, flags: u32) -> Result<()> {
        let args = snapshot_args(snap, flags)?;
        self.call(Procedure::DomainSnapshotDelete, &args).map(drop)
    }

    /// All storage pools, active or not (`virConnectListAllStoragePools`).
    pub fn list_pools(&self) -> Result<Vec<StoragePool>> {
        let p = Procedure::ConnectListAllStoragePools;
        o::decode_pools(&self.call(p, &listing_args())?).map_err(protocol(p))
    }

    /// The storage pool named `name` (`virStoragePoolLookupByName`).
    pub fn lookup_pool(&self, name: &str) -> Result<StoragePool> {
        check_arg("a storage pool name", name)?;
        let p = Procedure::StoragePoolLookupByName;
        let mut args = Enc::default();
        args.string(name);
        o::decode_pool(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// A pool's state and sizes (`virStoragePoolGetInfo`).
    pub fn pool_info(&self, pool: &StoragePool) -> Result<PoolInfo> {
        let p = Procedure::StoragePoolGetInfo;
        let body = self.call(p, &pool_args(pool, None)?)?;
        o::decode_pool_info(&body).map_err(protocol(p))
    }

    /// A pool's XML (`virStoragePoolGetXMLDesc`).
    pub fn pool_xml(&self, pool: &StoragePool) -> Result<String> {
        let p = Procedure::StoragePoolGetXmlDesc;
        let body = self.call(p, &pool_args(pool, Some(0))?)?;
        wire::decode_string(&body, "storage pool XML").map_err(protocol(p))
    }

    /// Whether the pool starts with the host (`virStoragePoolGetAutostart`).
    pub fn pool_autostart(&self, pool: &StoragePool) -> Result<bool> {
        let p = Procedure::StoragePoolGetAutostart;
        let body = self.call(p, &pool_args(pool, None)?)?;
        wire::decode_flag(&body, "autostart").map_err(protocol(p))
    }

    /// Makes the pool start with the host, or not (`virStoragePoolSetAutostart`).
    pub fn set_pool_autostart(&self, pool: &StoragePool, on: bool) -> Result<()> {
        let mut args = pool_args(pool, None)?;
        args.extend_from_slice(&i32::from(on).to_be_bytes());
        self.call(Procedure::StoragePoolSetAutostart, &args)
            .map(drop)
    }

    /// Defines a persistent pool from its XML (`virStoragePoolDefineXML`).
    pub fn define_pool(&self, xml: &str) -> Result<StoragePool> {
        check_arg("a storage pool XML", xml)?;
        let p = Procedure::StoragePoolDefineXml;
        let mut args = Enc::default();
        args.string(xml).u32(0);
        o::decode_pool(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// Builds the pool's backing (a directory pool's directory,
    /// `virStoragePoolBuild`).
    pub fn build_pool(&self, pool: &StoragePool) -> Result<()> {
        let args = pool_args(pool, Some(0))?;
        self.call(Procedure::StoragePoolBuild, &args).map(drop)
    }

    /// Starts a defined pool (`virStoragePoolCreate`).
    pub fn start_pool(&self, pool: &StoragePool) -> Result<()> {
        let args = pool_args(pool, Some(0))?;
        self.call(Procedure::StoragePoolCreate, &args).map(drop)
    }

    /// Stops a pool; its volumes stay where they are (`virStoragePoolDestroy`).
    pub fn stop_pool(&self, pool: &StoragePool) -> Result<()> {
        let args = pool_args(pool, None)?;
        self.call(Procedure::StoragePoolDestroy, &args).map(drop)
    }

    /// Removes an inactive pool's definition (`virStoragePoolUndefine`).
    pub fn undefine_pool(&self, pool: &StoragePool) -> Result<()> {
        let args = pool_args(pool, None)?;
        self.call(Procedure::StoragePoolUndefine, &args).map(drop)
    }

    /// Rescans a pool's volumes (`virStoragePoolRefresh`).
    pub fn refresh_pool(&self, pool: &StoragePool) -> Result<()> {
        let args = pool_args(pool, Some(0))?;
        self.call(Procedure::StoragePoolRefresh, &args).map(drop)
    }

    /// A pool's volumes (`virStoragePoolListAllVolumes`).
    pub fn list_volumes(&self, pool: &StoragePool) -> Result<Vec<StorageVol>> {
        let p = Procedure::StoragePoolListAllVolumes;
        let mut args = pool_args(pool, None)?;
        args.extend_from_slice(&listing_args());
        o::decode_vols(&self.call(p, &args)?).map_err(protocol(p))
    }

    /// Creates a volume in `pool` from its XML (`virStorageVolCreateXML`).
    pub fn create_volume(&self, pool: &StoragePool, xml: &str, flags: u32) -> Result<StorageVol> {
        check_arg("a volume XML", xml)?;
        let p = Procedure::StorageVolCreateXml;
        let mut args = Enc(pool_args(pool, None)?);
        args.string(xml).u32(flags);
        o::decode_vol(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// Deletes a volume and its data (`virStorageVolDelete`).
    pub fn delete_volume(&self, vol: &StorageVol) -> Result<()> {
        let mut args = vol_args(vol)?;
        args.u32(0);
        self.call(Procedure::StorageVolDelete, &args.0).map(drop)
    }

    /// The volume at `path` in any pool (`virStorageVolLookupByPath`).
    pub fn lookup_volume_by_path(&self, path: &str) -> Result<StorageVol> {
        check_arg("a volume path", path)?;
        let p = Procedure::StorageVolLookupByPath;
        let mut args = Enc::default();
        args.string(path);
        o::decode_vol(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// A volume's kind and sizes (`virStorageVolGetInfo`).
    pub fn volume_info(&self, vol: &StorageVol) -> Result<VolInfo> {
        let p = Procedure::StorageVolGetInfo;
        let body = self.call(p, &vol_args(vol)?.0)?;
        o::decode_vol_info(&body).map_err(protocol(p))
    }

    /// A volume's path on the host (`virStorageVolGetPath`).
    pub fn volume_path(&self, vol: &StorageVol) -> Result<String> {
        let p = Procedure::StorageVolGetPath;
        let body = self.call(p, &vol_args(vol)?.0)?;
        wire::decode_string(&body, "volume path").map_err(protocol(p))
    }

    /// All virtual networks, active or not (`virConnectListAllNetworks`).
    pub fn list_networks(&self) -> Result<Vec<Network>> {
        let p = Procedure::ConnectListAllNetworks;
        o::decode_networks(&self.call(p, &listing_args())?).map_err(protocol(p))
    }

    /// The virtual network named `name` (`virNetworkLookupByName`).
    pub fn lookup_network(&self, name: &str) -> Result<Network> {
        check_arg("a network name", name)?;
        let p = Procedure::NetworkLookupByName;
        let mut args = Enc::default();
        args.string(name);
        o::decode_network(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// A network's XML (`virNetworkGetXMLDesc`).
    pub fn network_xml(&self, net: &Network) -> Result<String> {
        let p = Procedure::NetworkGetXmlDesc;
        let mut args = network_args(net)?;
        args.u32(0);
        wire::decode_string(&self.call(p, &args.0)?, "network XML").map_err(protocol(p))
    }

    /// Whether the network runs (`virNetworkIsActive`).
    pub fn network_is_active(&self, net: &Network) -> Result<bool> {
        let p = Procedure::NetworkIsActive;
        let body = self.call(p, &network_args(net)?.0)?;
        wire::decode_flag(&body, "activity").map_err(protocol(p))
    }

    /// Whether the network starts with the host (`virNetworkGetAutostart`).
    pub fn network_autostart(&self, net: &Network) -> Result<bool> {
        let p = Procedure::NetworkGetAutostart;
        let body = self.call(p, &network_args(net)?.0)?;
        wire::decode_flag(&body, "autostart").map_err(protocol(p))
    }

    /// Starts a defined network (`virNetworkCreate`).
    pub fn start_network(&self, net: &Network) -> Result<()> {
        let args = network_args(net)?;
        self.call(Procedure::NetworkCreate, &args.0).map(drop)
    }

    /// Stops a network (`virNetworkDestroy`).
    pub fn stop_network(&self, net: &Network) -> Result<()> {
        let args = network_args(net)?;
        self.call(Procedure::NetworkDestroy, &args.0).map(drop)
    }
}

/// `dom, path[, flags]`: the arguments of the disk and NIC calls.
fn disk_args(dom: &Domain, device: &str, flags: Option<u32>) -> Result<Vec<u8>> {
    check_arg("a domain name", &dom.name)?;
    check_arg("a device", device)?;
    let mut args = Enc::default();
    args.domain(dom).string(device);
    if let Some(f) = flags {
        args.u32(f);
    }
    Ok(args.0)
}

fn snapshot_args(snap: &Snapshot, flags: u32) -> Result<Vec<u8>> {
    check_arg("a snapshot name", &snap.name)?;
    check_arg("a domain name", &snap.domain.name)?;
    let mut args = Enc::default();
    args.snapshot(snap).u32(flags);
    Ok(args.0)
}

fn pool_args(pool: &StoragePool, flags: Option<u32>) -> Result<Vec<u8>> {
    check_arg("a storage pool name", &pool.name)?;
    let mut args = Enc::default();
    args.pool(pool);
    if let Some(f) = flags {
        args.u32(f);
    }
    Ok(args.0)
}

fn vol_args(vol: &StorageVol) -> Result<Enc> {
    for (what, s) in [
        ("a storage pool name", &vol.pool),
        ("a volume name", &vol.name),
        ("a volume key", &vol.key),
    ] {
        check_arg(what, s)?;
    }
    let mut args = Enc::default();
    args.vol(vol);
    Ok(args)
}

fn network_args(net: &Network) -> Result<Enc> {
    check_arg("a network name", &net.name)?;
    let mut args = Enc::default();
    args.network(net);
    Ok(args)
}
