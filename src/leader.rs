//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never act at once.
//!
//! The rules, as client-go's leaderelection has them:
//!
//! - **A standby judges expiry on its own monotonic clock**: the Lease counts as expired when the
//!   record (holder, renew time, acquire time, transitions) has not changed for
//!   `leaseDurationSeconds` since *this* replica last saw it change. The holder's wall-clock
//!   `renewTime` is never compared with ours, so clock skew cannot hand over a healthy lease.
//! - **The leader stops before anyone may start**: it counts from when it *sent* its last
//!   successful renew, and gives up after `renew_deadline` (shorter than the lease duration), so
//!   it has stopped acting well before a standby, which counts from when it *saw* that renew
//!   (later), reaches the lease duration.
//! - **Every Lease call has a timeout**, bounded by the time left before the renew deadline: a
//!   hung request cannot keep a leader acting.
//! - **A renew succeeds only while we are the holder.** A leader that finds the Lease held by
//!   someone else, or free (someone released it after taking it over), has lost it and must
//!   stop; it never takes it back without standing by first.
//!
//! Writes use the Lease's resourceVersion (`replace`), so of two racing replicas only one wins.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a standby waits, after it last saw the record change, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps acting without a successful renew (shorter than
    /// `lease_duration`; the difference is the safety margin).
    pub renew_deadline: Duration,
    /// Time between attempts, for the leader and the standby.
    pub retry_period: Duration,
    /// Added to this replica's wall clock when it writes `renewTime` and `acquireTime`: zero in
    /// production; tests set it (`DMK_TEST_CLOCK_SKEW_SECONDS`) to prove skew changes nothing.
    pub clock_skew: SignedDuration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        LeaseConfig {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            clock_skew: SignedDuration::ZERO,
        }
    }
}

/// The part of a Lease record whose change proves its holder is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    acquire_time: Option<Timestamp>,
    transitions: Option<i32>,
    duration: Option<i32>,
}

impl Record {
    fn of(lease: &Lease) -> Record {
        let spec = lease.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew_time: spec.renew_time.map(|t| t.0),
            acquire_time: spec.acquire_time.map(|t| t.0),
            transitions: spec.lease_transitions,
            duration: spec.lease_duration_seconds,
        }
    }
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease (created, renewed or taken over).
    Held,
    /// Someone else holds it and it has not expired (by our clock).
    HeldByOther,
    /// The leader found the Lease no longer its own.
    Lost,
}

#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the Lease call did not answer within {0:?}")]
    TimedOut(Duration),
}

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    leadership: Leadership,
}

/// This replica's right to act, shared with the reconciler: valid until the renew deadline
/// after the last successful renew was sent. Checked before every write, so a leader that was
/// frozen (SIGSTOP, a stalled node) cannot slip a write in before its renew loop notices.
#[derive(Clone, Debug, Default)]
pub struct Leadership(Arc<Mutex<Option<Instant>>>);

impl Leadership {
    pub fn is_valid(&self) -> bool {
        self.0
            .lock()
            .expect("leadership lock")
            .is_some_and(|until| Instant::now() < until)
    }

    fn set(&self, until: Option<Instant>) {
        *self.0.lock().expect("leadership lock") = until;
    }
}

/// The standby's view: the last record seen and when (monotonic) it last changed.
#[derive(Default)]
struct Observed {
    record: Option<Record>,
    changed_at: Option<Instant>,
}

impl Observed {
    fn see(&mut self, record: Record) {
        if self.record.as_ref() != Some(&record) {
            self.record = Some(record);
            self.changed_at = Some(Instant::now());
        }
    }

    /// Free, or unchanged for its whole lease duration by our clock.
    fn expired(&self, default: Duration) -> bool {
        let Some(record) = &self.record else {
            return true;
        };
        if record.holder.is_none() {
            return true;
        }
        let duration = record
            .duration
            .and_then(|d| u64::try_from(d).ok())
            .map_or(default, Duration::from_secs);
        self.changed_at.is_some_and(|t| t.elapsed() >= duration)
    }
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        assert!(
            cfg.renew_deadline < cfg.lease_duration,
            "the renew deadline must be shorter than the lease duration"
        );
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            leadership: Leadership::default(),
        }
    }

    /// The handle the reconciler checks before every write.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    fn now(&self) -> Timestamp {
        Timestamp::now() + self.cfg.clock_skew
    }

    /// Waits until this replica holds the Lease; returns when the winning write was sent.
    pub async fn acquire(&self) -> Instant {
        let mut observed = Observed::default();
        let mut announced = false;
        loop {
            let sent = Instant::now();
            match self
                .attempt(&mut observed, false, self.cfg.retry_period)
                .await
            {
                Ok(Attempt::Held) => {
                    self.leadership.set(Some(sent + self.cfg.renew_deadline));
                    return sent;
                }
                Ok(_) if !announced => {
                    tracing::info!(lease = self.cfg.name, "another replica leads; standing by");
                    announced = true;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(lease = self.cfg.name, error = %e, "lease not reachable"),
            }
            tokio::time::sleep(self.cfg.retry_period).await;
        }
    }

    /// Renews the Lease; returns when leadership is lost (taken, released by someone else, or
    /// not renewed within the renew deadline). From then on the caller must not act.
    /// `since` is when the write that won the Lease was sent (from [`Elector::acquire`]).
    pub async fn keep(&self, since: Instant) {
        let mut last_sent = since;
        let mut observed = Observed::default();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let deadline = last_sent + self.cfg.renew_deadline;
            let sent = Instant::now();
            let Some(left) = deadline.checked_duration_since(sent) else {
                self.leadership.set(None);
                tracing::error!(
                    lease = self.cfg.name,
                    "lease not renewed within the deadline"
                );
                return;
            };
            match self.attempt(&mut observed, true, left).await {
                Ok(Attempt::Held) => {
                    last_sent = sent;
                    self.leadership.set(Some(sent + self.cfg.renew_deadline));
                }
                Ok(_) => {
                    self.leadership.set(None);
                    tracing::error!(lease = self.cfg.name, "the lease is no longer ours");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = self.cfg.name, error = %e, "renewing the lease failed");
                    // The attempt's budget ended at the deadline: stop now, not a retry later.
                    if Instant::now() >= deadline {
                        self.leadership.set(None);
                        tracing::error!(
                            lease = self.cfg.name,
                            "lease not renewed within the deadline"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up on a clean shutdown so a standby takes over at once.
    pub async fn release(&self) {
        self.leadership.set(None);
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() == Some(self.cfg.identity.as_str()) {
                spec.holder_identity = None;
                let _ = self
                    .api
                    .replace(&self.cfg.name, &PostParams::default(), &lease)
                    .await;
            }
        }
    }

    /// One attempt to acquire (`leading == false`) or renew (`leading == true`), every call
    /// bounded by `budget` in all.
    async fn attempt(
        &self,
        observed: &mut Observed,
        leading: bool,
        budget: Duration,
    ) -> Result<Attempt, LeaseError> {
        tokio::time::timeout(budget, self.attempt_unbounded(observed, leading))
            .await
            .map_err(|_| LeaseError::TimedOut(budget))?
    }

    async fn attempt_unbounded(
        &self,
        observed: &mut Observed,
        leading: bool,
    ) -> Result<Attempt, LeaseError> {
        let now = self.now();
        let duration_secs = self.cfg.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            if leading {
                // Deleted under us: someone else may be creating it now.
                return Ok(Attempt::Lost);
            }
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldByOther),
                Err(e) => Err(e.into()),
            };
        };
        let record = Record::of(&lease);
        let ours = record.holder.as_deref() == Some(self.cfg.identity.as_str());
        if leading && !ours {
            return Ok(Attempt::Lost);
        }
        if !leading {
            observed.see(record);
            if !ours && !observed.expired(self.cfg.lease_duration) {
                return Ok(Attempt::HeldByOther);
            }
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        if !ours {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.cfg.identity.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(MicroTime(now));
        // replace() sends the resourceVersion we read: a concurrent writer makes this fail.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(if leading {
                Attempt::Lost
            } else {
                Attempt::HeldByOther
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, renew_secs: i64) -> Record {
        Record {
            holder: holder.map(str::to_string),
            renew_time: Some(Timestamp::from_second(renew_secs).unwrap()),
            acquire_time: None,
            transitions: Some(0),
            duration: Some(15),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_is_judged_by_when_this_replica_saw_the_record_change() {
        let mut o = Observed::default();
        assert!(o.expired(Duration::from_secs(15)), "never seen: free");
        // A renew time far in the past (a skewed or stopped clock) does not make it expired.
        o.see(record(Some("a"), 0));
        assert!(!o.expired(Duration::from_secs(15)));
        tokio::time::advance(Duration::from_secs(14)).await;
        o.see(record(Some("a"), 0));
        assert!(!o.expired(Duration::from_secs(15)), "unchanged for 14 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(o.expired(Duration::from_secs(15)), "unchanged for 15 s");
        // Any change restarts the count, whatever the renew time says.
        o.see(record(Some("a"), -1_000_000));
        assert!(!o.expired(Duration::from_secs(15)));
        o.see(record(None, 0));
        assert!(o.expired(Duration::from_secs(15)), "released: free at once");
    }
}
