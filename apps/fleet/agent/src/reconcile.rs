//! The seam between the agent's loop and what a device holds: one
//! [`Reconciler`] per kind of resource. Each takes the resources a manifest
//! asks for (desired), looks at the device (observed), does what differs
//! (actions) and says how each resource of its kind is (status). The loop
//! (`agent`) knows only this trait; the kinds a device has are listed in one
//! place, `agent::reconcilers`. A new kind is a file with its `Reconciler`
//! and a line there (and its `Resource` variant in the model, the wire
//! format the operator writes).

use std::future::Future;
use std::pin::Pin;

use fleet_model::{Resource, ResourceStatus};

/// The work of one [`Reconciler::reconcile`] call.
pub type Reconciling<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One kind of resource on a device.
pub trait Reconciler: Send + Sync {
    /// Make the device hold what `desired` (a whole manifest's resources:
    /// take those of your kind) asks of this kind, and nothing else of it
    /// that this reconciler made. Idempotent: what is already right is left
    /// alone. Called when a manifest is applied and again at every heartbeat,
    /// when what changed behind the agent's back is put back.
    fn reconcile<'a>(&'a mut self, desired: &'a [Resource]) -> Reconciling<'a>;

    /// How each resource of this kind is, by name.
    fn statuses(&self) -> Vec<(String, ResourceStatus)>;
}

/// Where a reconciler, like the loop, says what the device's keeper should
/// know: the agent's log, each line naming the device.
#[derive(Clone, Debug)]
pub struct Log {
    device: String,
}

impl Log {
    pub fn new(device: &str) -> Self {
        Self { device: device.to_owned() }
    }

    pub fn say(&self, message: impl std::fmt::Display) {
        eprintln!("fleet-agent[{}]: {message}", self.device);
    }
}
