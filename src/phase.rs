//! The process's phases, and the readiness `/readyz` reports from them.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

/// Where the process is in its life. It moves forward only: Starting, then Standby (with
/// leader election), Syncing, Serving, and Draining once a stop is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// The API checks and the proof key; nothing is served yet.
    Starting,
    /// Waiting for the Lease: healthy and ready, only not acting.
    Standby,
    /// Leading (or alone); the watches are filling their caches.
    Syncing,
    /// Reconciling.
    Serving,
    /// Asked to stop: in-flight reconciles finish, nothing new starts.
    Draining,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Phase::Starting,
            1 => Phase::Standby,
            2 => Phase::Syncing,
            3 => Phase::Serving,
            _ => Phase::Draining,
        }
    }
}

/// The current phase, shared by the runtime (which moves it) and `/readyz` (which reads it).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// Moves to `phase`; a move backwards is ignored (a late "synced" after a stop, say).
    pub fn enter(&self, phase: Phase) {
        self.0.fetch_max(phase as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// `Ok` when ready, else why not, for `/readyz`.
    pub fn check(&self) -> Result<(), &'static str> {
        match self.phase() {
            Phase::Standby | Phase::Serving => Ok(()),
            Phase::Starting | Phase::Syncing => Err("watches not synced yet"),
            Phase::Draining => Err("stopping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_on_standby_and_serving_only_and_never_backwards() {
        let readiness = Readiness::default();
        assert_eq!(readiness.check(), Err("watches not synced yet"));
        readiness.enter(Phase::Standby);
        assert_eq!(readiness.check(), Ok(()));
        readiness.enter(Phase::Syncing);
        assert!(readiness.check().is_err());
        readiness.enter(Phase::Serving);
        assert_eq!(readiness.check(), Ok(()));
        readiness.enter(Phase::Draining);
        readiness.enter(Phase::Serving);
        assert_eq!(readiness.phase(), Phase::Draining);
        assert_eq!(readiness.check(), Err("stopping"));
    }
}
