//! What every handler can reach: the configuration, sessions and throttle, the
//! libvirt connection, the metrics and the cached node facts. The pages, the API
//! and the router import this module; it imports none of them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::auth::{Authenticator, Checks};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::facts::{FactsCache, LayersCache};
use crate::metrics::Metrics;
use crate::node_update::Jobs;
use crate::session::{Session, Sessions, Throttle};
use crate::sudo::{AdminPolicy, Sudo};
use crate::vms::Libvirt;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub sessions: Mutex<Sessions>,
    pub throttle: Mutex<Throttle>,
    /// What checks user names and passwords: PAM, or a stand-in in tests.
    pub authenticator: Arc<dyn Authenticator>,
    /// The threads password checks run on, a few at a time.
    pub checks: Checks,
    /// Whether an account's sudo rules let it do anything as root, which administrative
    /// access needs ([`crate::admin`]): sudo itself, or a stand-in in tests.
    pub policy: Arc<dyn AdminPolicy>,
    /// What session idle times and the login throttle's window are measured with.
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub libvirt: Arc<Libvirt>,
    /// Whether the console is served over TLS (cookies and HSTS depend on it).
    pub tls: bool,
    /// Slow host facts shared by overview requests.
    pub facts: FactsCache,
    /// The layered root's facts shared by Node page requests.
    pub layers: LayersCache,
    /// The node's update job (`nodectl update`, started from the Node page).
    pub updates: Arc<Jobs>,
    /// Where the facts only root can read come from (the helper, when configured).
    pub reader: crate::facts::Reader,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Shared {
        Self::with_clock(config, metrics, Arc::new(SystemClock))
    }

    /// [`AppState::new`] with sessions and the login throttle on `clock`.
    pub fn with_clock(config: Config, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Shared {
        let (auth, policy) = config.checks();
        Self::with_checks(config, metrics, clock, auth, policy)
    }

    /// [`AppState::with_clock`] with logins checked by `authenticator` instead of PAM.
    pub fn with_parts(
        config: Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Shared {
        Self::with_checks(
            config,
            metrics,
            clock,
            authenticator,
            Arc::new(Sudo::default()),
        )
    }

    /// [`AppState::with_parts`] with the sudo policy asked of `policy` instead of sudo.
    pub fn with_checks(
        config: Config,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        authenticator: Arc<dyn Authenticator>,
        policy: Arc<dyn AdminPolicy>,
    ) -> Shared {
        // With a helper, which makes every change, the web process only reads.
        let libvirt = Arc::new(match config.helper_socket {
            Some(_) => Libvirt::read_only(&config.libvirt_uri),
            None => Libvirt::new(&config.libvirt_uri),
        });
        let max_age = config.session_max_age();
        let reader = crate::facts::Reader::new(config.helper_socket.as_deref());
        Arc::new(Self {
            tls: !config.insecure_http,
            config,
            sessions: Mutex::new(Sessions::with_clock(clock.clone()).max_age(max_age)),
            throttle: Mutex::new(Throttle::default()),
            authenticator,
            checks: Checks::default(),
            policy,
            clock,
            metrics,
            libvirt,
            facts: FactsCache::default(),
            layers: LayersCache::default(),
            updates: Arc::new(Jobs::default()),
            reader,
        })
    }

    /// The privileged helper's connection holding the login of the session of
    /// `token`, when the helper holds it: requests made as that session's user
    /// (changes, terminals, updates) go over it.
    pub fn helper_of(&self, token: &str) -> Option<Arc<helper::Held>> {
        self.sessions.lock().ok().and_then(|s| s.helper_of(token))
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// The client's address, put into each request by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The logged-in session of a request, put there by [`crate::guard::require_session`].
#[derive(Debug, Clone)]
pub struct Authed {
    pub token: String,
    pub session: Session,
}
