//! What every runner of one client shares: configuration, the node as registered, the
//! drivers, time and randomness, the inherited environment, the state directory and the
//! update batcher.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use stead_model::Node;

use crate::clock::{Clock, Entropy};
use crate::config::ClientConfig;
use crate::driver::Drivers;
use crate::state::StateDir;
use crate::updater::Updater;

pub(crate) struct ClientCore {
    pub config: ClientConfig,
    /// The node as last registered (drivers' health changes it: `fingerprint_loop`).
    pub node: RwLock<Arc<Node>>,
    pub drivers: Drivers,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// The client's environment less the denylist: what raw_exec tasks inherit.
    pub host_env: BTreeMap<String, String>,
    pub state: StateDir,
    pub updater: Updater,
}

impl ClientCore {
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ns()
    }

    pub(crate) fn node(&self) -> Arc<Node> {
        self.node.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
