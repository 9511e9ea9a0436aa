//! The objects besides domains that the calls name and return: snapshots, storage
//! pools and volumes, virtual networks, and the usage figures of a domain's disks
//! and NICs; with their XDR (`remote_nonnull_domain_snapshot`, …).

use crate::error::ProtocolError;
use crate::types::Domain;
use crate::xdr::{Dec, Enc, UUID_LEN};

type Result<T> = std::result::Result<T, ProtocolError>;

/// The most objects of one listing this client accepts (libvirt's own lists of
/// pools, volumes, networks and snapshots are unbounded on the wire).
pub const OBJECT_LIST_MAX: usize = 65_536;

/// A domain's snapshot as the protocol names it (`remote_nonnull_domain_snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snapshot {
    pub name: String,
    pub domain: Domain,
}

/// A storage pool (`remote_nonnull_storage_pool`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoragePool {
    pub name: String,
    pub uuid: [u8; UUID_LEN],
}

/// A storage volume (`remote_nonnull_storage_vol`): its pool's name, its name and
/// its key (for file volumes, the path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageVol {
    pub pool: String,
    pub name: String,
    pub key: String,
}

/// A virtual network (`remote_nonnull_network`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network {
    pub name: String,
    pub uuid: [u8; UUID_LEN],
}

/// A storage pool's state (`virStoragePoolState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolState {
    Inactive,
    Building,
    Running,
    Degraded,
    Inaccessible,
    Other(u32),
}

impl PoolState {
    pub fn from_number(n: u32) -> Self {
        match n {
            0 => Self::Inactive,
            1 => Self::Building,
            2 => Self::Running,
            3 => Self::Degraded,
            4 => Self::Inaccessible,
            n => Self::Other(n),
        }
    }

    /// The word an administrator reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Building => "building",
            Self::Running => "running",
            Self::Degraded => "degraded",
            Self::Inaccessible => "inaccessible",
            Self::Other(_) => "unknown",
        }
    }
}

/// `virStoragePoolGetInfo`: state and sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolInfo {
    pub state: PoolState,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

/// `virStorageVolGetInfo`: kind (`virStorageVolType`: 0 file, 1 block, 2 dir, …)
/// and sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolInfo {
    pub kind: i32,
    pub capacity: u64,
    pub allocation: u64,
}

/// `virDomainGetBlockInfo`: a disk's sizes in bytes as the guest and the host see
/// them (capacity: the guest's disk; allocation: what its image uses on the host;
/// physical: the image's size on the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    pub allocation: u64,
    pub capacity: u64,
    pub physical: u64,
}

/// `virDomainBlockStats`: a running domain's disk counters since it started (-1
/// where the hypervisor does not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStats {
    pub rd_req: i64,
    pub rd_bytes: i64,
    pub wr_req: i64,
    pub wr_bytes: i64,
    pub errs: i64,
}

/// `virDomainInterfaceStats`: a running domain's NIC counters (-1 where unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceStats {
    pub rx_bytes: i64,
    pub rx_packets: i64,
    pub rx_errs: i64,
    pub rx_drop: i64,
    pub tx_bytes: i64,
    pub tx_packets: i64,
    pub tx_errs: i64,
    pub tx_drop: i64,
}

impl Enc {
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn snapshot(&mut self, s: &Snapshot) -> &mut Self {
        self.string(&s.name).domain(&s.domain)
    }

    pub(crate) fn pool(&mut self, p: &StoragePool) -> &mut Self {
        self.string(&p.name).uuid(&p.uuid)
    }

    pub(crate) fn vol(&mut self, v: &StorageVol) -> &mut Self {
        self.string(&v.pool).string(&v.name).string(&v.key)
    }

    pub(crate) fn network(&mut self, n: &Network) -> &mut Self {
        self.string(&n.name).uuid(&n.uuid)
    }
}

impl Dec<'_> {
    fn snapshot(&mut self) -> Result<Snapshot> {
        Ok(Snapshot {
            name: self.string("snapshot name")?,
            domain: self.domain()?,
        })
    }

    fn pool(&mut self) -> Result<StoragePool> {
        Ok(StoragePool {
            name: self.string("storage pool name")?,
            uuid: self.uuid("storage pool UUID")?,
        })
    }

    fn vol(&mut self) -> Result<StorageVol> {
        Ok(StorageVol {
            pool: self.string("volume's pool")?,
            name: self.string("volume name")?,
            key: self.string("volume key")?,
        })
    }

    fn network(&mut self) -> Result<Network> {
        Ok(Network {
            name: self.string("network name")?,
            uuid: self.uuid("network UUID")?,
        })
    }

    fn i64(&mut self, what: &'static str) -> Result<i64> {
        self.u64(what).map(|v| v as i64)
    }

    /// A listing: a counted array of `item`s (each at least `min` bytes), then the
    /// count libvirt returned.
    fn listing<T>(
        &mut self,
        what: &'static str,
        min: usize,
        item: impl Fn(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(what, OBJECT_LIST_MAX, "OBJECT_LIST_MAX", min)?;
        let items = (0..n).map(|_| item(self)).collect::<Result<Vec<_>>>()?;
        self.u32("listing count")?;
        Ok(items)
    }
}

/// A snapshot's least size: its name's length word and a domain.
const SNAPSHOT_MIN: usize = 4 + 4 + UUID_LEN + 4;

pub(crate) fn decode_snapshot(body: &[u8]) -> Result<Snapshot> {
    Dec::new(body).snapshot()
}

pub(crate) fn decode_snapshots(body: &[u8]) -> Result<Vec<Snapshot>> {
    Dec::new(body).listing("snapshot list", SNAPSHOT_MIN, |d| d.snapshot())
}

pub(crate) fn decode_pool(body: &[u8]) -> Result<StoragePool> {
    Dec::new(body).pool()
}

pub(crate) fn decode_pools(body: &[u8]) -> Result<Vec<StoragePool>> {
    Dec::new(body).listing("storage pool list", 4 + UUID_LEN, |d| d.pool())
}

pub(crate) fn decode_vol(body: &[u8]) -> Result<StorageVol> {
    Dec::new(body).vol()
}

pub(crate) fn decode_vols(body: &[u8]) -> Result<Vec<StorageVol>> {
    Dec::new(body).listing("volume list", 12, |d| d.vol())
}

pub(crate) fn decode_network(body: &[u8]) -> Result<Network> {
    Dec::new(body).network()
}

pub(crate) fn decode_networks(body: &[u8]) -> Result<Vec<Network>> {
    Dec::new(body).listing("network list", 4 + UUID_LEN, |d| d.network())
}

/// `remote_storage_pool_get_info_ret`: an `unsigned char` (a whole XDR word) and
/// three sizes.
pub(crate) fn decode_pool_info(body: &[u8]) -> Result<PoolInfo> {
    let mut d = Dec::new(body);
    Ok(PoolInfo {
        state: PoolState::from_number(d.u32("pool state")?),
        capacity: d.u64("pool capacity")?,
        allocation: d.u64("pool allocation")?,
        available: d.u64("pool available")?,
    })
}

pub(crate) fn decode_vol_info(body: &[u8]) -> Result<VolInfo> {
    let mut d = Dec::new(body);
    Ok(VolInfo {
        kind: d.i32("volume type")?,
        capacity: d.u64("volume capacity")?,
        allocation: d.u64("volume allocation")?,
    })
}

pub(crate) fn decode_block_info(body: &[u8]) -> Result<BlockInfo> {
    let mut d = Dec::new(body);
    Ok(BlockInfo {
        allocation: d.u64("disk allocation")?,
        capacity: d.u64("disk capacity")?,
        physical: d.u64("disk physical size")?,
    })
}

pub(crate) fn decode_block_stats(body: &[u8]) -> Result<BlockStats> {
    let mut d = Dec::new(body);
    Ok(BlockStats {
        rd_req: d.i64("read requests")?,
        rd_bytes: d.i64("bytes read")?,
        wr_req: d.i64("write requests")?,
        wr_bytes: d.i64("bytes written")?,
        errs: d.i64("disk errors")?,
    })
}

pub(crate) fn decode_interface_stats(body: &[u8]) -> Result<InterfaceStats> {
    let mut d = Dec::new(body);
    Ok(InterfaceStats {
        rx_bytes: d.i64("bytes received")?,
        rx_packets: d.i64("packets received")?,
        rx_errs: d.i64("receive errors")?,
        rx_drop: d.i64("received packets dropped")?,
        tx_bytes: d.i64("bytes sent")?,
        tx_packets: d.i64("packets sent")?,
        tx_errs: d.i64("send errors")?,
        tx_drop: d.i64("sent packets dropped")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn dom() -> Domain {
        Domain {
            name: "web1".into(),
            uuid: [7; 16],
            id: 3,
        }
    }

    #[test]
    fn objects_round_trip_through_their_xdr() {
        let snap = Snapshot {
            name: "before-upgrade".into(),
            domain: dom(),
        };
        let mut e = Enc::default();
        e.snapshot(&snap);
        assert_eq!(decode_snapshot(&e.0).unwrap(), snap);

        let pool = StoragePool {
            name: "default".into(),
            uuid: [1; 16],
        };
        let mut e = Enc::default();
        e.pool(&pool);
        assert_eq!(decode_pool(&e.0).unwrap(), pool);

        let vol = StorageVol {
            pool: "default".into(),
            name: "web1.qcow2".into(),
            key: "/var/lib/libvirt/images/web1.qcow2".into(),
        };
        let mut e = Enc::default();
        e.vol(&vol);
        assert_eq!(decode_vol(&e.0).unwrap(), vol);

        let net = Network {
            name: "default".into(),
            uuid: [2; 16],
        };
        let mut e = Enc::default();
        e.network(&net);
        assert_eq!(decode_network(&e.0).unwrap(), net);
    }

    #[test]
    fn listings_carry_their_items_then_the_count() {
        let pools = [
            StoragePool {
                name: "a".into(),
                uuid: [1; 16],
            },
            StoragePool {
                name: "b".into(),
                uuid: [2; 16],
            },
        ];
        let mut e = Enc::default();
        e.u32(2);
        for p in &pools {
            e.pool(p);
        }
        e.u32(2);
        assert_eq!(decode_pools(&e.0).unwrap(), pools);
        // A count larger than the bytes could hold fails before allocating.
        let mut e = Enc::default();
        e.u32(60_000);
        assert!(matches!(
            decode_pools(&e.0),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn sizes_and_counters_decode_in_order() {
        let mut e = Enc::default();
        e.u32(2).u64(100).u64(40).u64(60);
        let info = decode_pool_info(&e.0).unwrap();
        assert_eq!(info.state, PoolState::Running);
        assert_eq!(
            (info.capacity, info.allocation, info.available),
            (100, 40, 60)
        );
        let mut e = Enc::default();
        e.u64(1).u64(2).u64(3);
        assert_eq!(
            decode_block_info(&e.0).unwrap(),
            BlockInfo {
                allocation: 1,
                capacity: 2,
                physical: 3
            }
        );
        let mut e = Enc::default();
        for v in [5u64, 6, 7, 8] {
            e.u64(v);
        }
        e.u64(u64::MAX);
        let s = decode_block_stats(&e.0).unwrap();
        assert_eq!((s.rd_req, s.wr_bytes, s.errs), (5, 8, -1));
    }
}
