//! Node facts that cost program runs to learn (`lvs`, `findmnt`, `systemctl`,
//! libvirt), learned at most once per time-to-live and only while someone looks,
//! so that an idle agent runs nothing and busy pages stay fast. The state holds
//! the caches; the views read them.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use layers::status::{self, Facts};

use crate::vms::Libvirt;

/// What a [`TtlCache`] holds, and for how long one gathering is reused.
pub trait Expires {
    const TTL: Duration;
}

/// The last value gathered and when. When it is stale, one caller gathers
/// afresh while concurrent callers go on with the stale value; only callers of
/// an empty cache wait, for that one gathering.
#[derive(Debug)]
pub struct TtlCache<T> {
    last: Mutex<Option<(Instant, Arc<T>)>>,
    gathering: Mutex<()>,
}

impl<T> Default for TtlCache<T> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
            gathering: Mutex::new(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Expires> TtlCache<T> {
    /// The value, gathered by `gather` when older than [`Expires::TTL`]
    /// (blocking).
    pub fn get_with(&self, gather: impl FnOnce() -> T) -> Arc<T> {
        let cached = self.fresh_or_stale();
        if let Some((true, v)) = &cached {
            return v.clone();
        }
        let _one = match self.gathering.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => match cached {
                // Someone else refreshes it: the stale value serves meanwhile.
                Some((_, v)) => return v,
                None => lock(&self.gathering),
            },
        };
        if let Some((true, v)) = self.fresh_or_stale() {
            return v;
        }
        let v = Arc::new(gather());
        *lock(&self.last) = Some((Instant::now(), v.clone()));
        v
    }

    /// Forgets the value (after an action changed what it describes).
    pub fn invalidate(&self) {
        *lock(&self.last) = None;
    }

    /// The value and whether it is still fresh.
    fn fresh_or_stale(&self) -> Option<(bool, Arc<T>)> {
        lock(&self.last)
            .as_ref()
            .map(|(at, v)| (at.elapsed() < T::TTL, v.clone()))
    }
}

/// Facts the overview and the health report show that cost a program run or
/// many files to read.
#[derive(Debug, Clone)]
pub struct SlowFacts {
    /// What the host's health checks read.
    pub host: health::HostFacts,
    pub host_keys: Vec<hostinfo::HostKey>,
}

impl Expires for SlowFacts {
    const TTL: Duration = Duration::from_secs(10);
}

impl SlowFacts {
    /// Reads the running host (blocking: runs programs, asks libvirt).
    pub fn gather(ssh_dir: &Path, libvirt: &Libvirt, reader: &Reader) -> Self {
        let security = libvirt
            .security_models()
            .map(|models| models.into_iter().map(|m| m.model).collect())
            .map_err(|e| e.to_string());
        SlowFacts {
            host: health::HostFacts::gather(security, reader.thin_pools()),
            host_keys: hostinfo::host_key_fingerprints(ssh_dir),
        }
    }
}

/// The host's slow facts, shared by overview and Node page requests.
pub type FactsCache = TtlCache<SlowFacts>;

impl FactsCache {
    /// The cached facts, learned afresh when stale (blocking).
    pub fn get(&self, ssh_dir: &Path, libvirt: &Libvirt, reader: &Reader) -> Arc<SlowFacts> {
        self.get_with(|| SlowFacts::gather(ssh_dir, libvirt, reader))
    }
}

/// The layered root's facts as gathered once, or why they could not be.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub facts: Result<Facts, String>,
    /// The running image's NVR (`/usr/lib/hvnode/image.json`).
    pub image: Option<String>,
}

impl Expires for Snapshot {
    const TTL: Duration = Duration::from_secs(10);
}

impl Snapshot {
    /// Reads the running system, the store through `reader` (blocking: runs
    /// programs, or asks the helper).
    pub fn gather(reader: &Reader) -> Self {
        Self {
            facts: reader.layer_facts(),
            image: status::image_nvr(),
        }
    }
}

/// The layer facts, shared by Node page requests.
pub type LayersCache = TtlCache<Snapshot>;

impl LayersCache {
    /// The facts, gathered afresh when stale (blocking).
    pub fn get(&self, reader: &Reader) -> Arc<Snapshot> {
        self.get_with(|| Snapshot::gather(reader))
    }
}

/// Facts only root can read (LVM's and btrfs's views of the layer store, the thin
/// pools): asked of the privileged helper when one is configured, read in this
/// process otherwise.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    helper: Option<helper::Client>,
}

impl Reader {
    /// Asks the helper at `socket`, or reads here without one.
    pub fn new(socket: Option<&Path>) -> Self {
        Self {
            helper: socket.map(helper::Client::new),
        }
    }

    /// The layer store's facts, as `nodectl info` reads them (blocking).
    pub fn layer_facts(&self) -> Result<Facts, String> {
        match &self.helper {
            Some(client) => client.layer_facts().map_err(|e| e.to_string()),
            None => status::gather(&status::boot_dir()).map_err(|e| format!("{e:#}")),
        }
    }

    /// The thin pools and their use (blocking).
    pub fn thin_pools(&self) -> Result<Vec<hostinfo::ThinPool>, String> {
        match &self.helper {
            Some(client) => client.thin_pools().map_err(|e| e.to_string()),
            None => hostinfo::thin_pools().map_err(|e| e.last_line().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Short;

    impl Expires for Short {
        const TTL: Duration = Duration::from_millis(200);
    }

    #[test]
    fn one_gathering_serves_all_and_a_stale_value_serves_while_refreshing() {
        let cache = Arc::new(TtlCache::<Short>::default());
        let count = Arc::new(AtomicUsize::new(0));
        let gather = |c: &Arc<AtomicUsize>, pause: u64| {
            let c = c.clone();
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(pause));
                Short
            }
        };
        // An empty cache: every caller waits for the one gathering.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (cache, g) = (cache.clone(), gather(&count, 50));
                std::thread::spawn(move || cache.get_with(g))
            })
            .collect();
        let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got.iter().all(|v| Arc::ptr_eq(v, &got[0])));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Fresh: reused.
        assert!(Arc::ptr_eq(&cache.get_with(gather(&count, 0)), &got[0]));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Stale: one caller refreshes, the other gets the stale value at once.
        std::thread::sleep(Short::TTL);
        let slow = {
            let (cache, g) = (cache.clone(), gather(&count, 300));
            std::thread::spawn(move || cache.get_with(g))
        };
        std::thread::sleep(Duration::from_millis(50));
        let during = cache.get_with(gather(&count, 0));
        assert!(Arc::ptr_eq(&during, &got[0]), "the stale value");
        let fresh = slow.join().unwrap();
        assert!(!Arc::ptr_eq(&fresh, &got[0]));
        assert_eq!(count.load(Ordering::SeqCst), 2);
        cache.invalidate();
        cache.get_with(gather(&count, 0));
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn slow_facts_are_learned_once_and_shared() {
        let cache = Arc::new(FactsCache::default());
        let libvirt = Arc::new(Libvirt::new("test:///default"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, l) = (cache.clone(), libvirt.clone());
                std::thread::spawn(move || c.get(Path::new("/etc/ssh"), &l, &Reader::default()))
            })
            .collect();
        let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(
            got.iter().all(|f| Arc::ptr_eq(f, &got[0])),
            "one refresh for all"
        );
        let again = cache.get(Path::new("/etc/ssh"), &libvirt, &Reader::default());
        assert!(Arc::ptr_eq(&again, &got[0]), "reused within the TTL");
        assert_eq!(
            again.host.libvirt_security.as_ref().unwrap()[0],
            "testSecurity"
        );
    }
}
