//! Model-based test of the planning core, no API server: random sequences of spec edits,
//! rotation requests, Secret deletions, value and annotation tampering (up and down), forged
//! and copied Secrets, restored backups and crashes between the Secret write and the status
//! write, each reconcile run through the real `secret::observe` -> `plan::plan` ->
//! `secret::build` -> `status::next_status`. The reference model is a ledger of every key the
//! operator generated; after every step:
//!
//! - status never records a fingerprint of a value the operator did not generate (for that
//!   slot and revision);
//! - each (slot, revision) is generated at most once;
//! - no rotation is reported (history) that did not happen;
//! - the operator never writes a value it did not generate;
//! - revocation always succeeds, is final, and no key is generated afterwards;
//! - with nothing to report, every confirmed request is satisfied.

use std::collections::BTreeMap;

use dataminer_keys_operator::{
    api::{
        DataMinerKeySet, DataMinerKeySetSpec, DataMinerKeySetStatus, OrganizationScope, Permission,
        RegenerateRequest, RegenerateSpec, RevokeSpec, Scope, SecretSpec,
    },
    keys::{self, KeyValue},
    plan::{self, PlanInput, Problem, SecretWrite, Slot, SlotPlan},
    proof::ProofKey,
    secret::{self, proof_annotation, revision_annotation},
    status::{Applied, next_status},
};
use k8s_openapi::{ByteString, api::core::v1::Secret, jiff::Timestamp};
use kube::ResourceExt;
use proptest::prelude::*;

const LABEL: &str = "CI pipeline";

#[derive(Clone, Debug)]
enum Op {
    /// Raise the request of a slot by `by`, confirmed or not.
    Request {
        slot: usize,
        by: i64,
        confirmed: bool,
    },
    Revoke {
        confirmed: bool,
    },
    /// A spec edit that changes the Secret's layout only.
    ToggleUserLabel,
    DeleteSecret,
    /// Plant a value of one's own in a slot (the proof annotation stays).
    TamperValue {
        slot: usize,
    },
    /// Move a revision annotation up or down.
    TamperRevision {
        slot: usize,
        by: i64,
    },
    /// Put the other slot's value and proof into this one.
    SwapSlots,
    /// Restore the Secret as it was `back` snapshots ago (a backup).
    Restore {
        back: usize,
    },
    /// Replace the Secret by one with the same name, a copied owner reference and, optionally,
    /// the operator's current values and proofs copied over.
    Forge {
        copy_proofs: bool,
    },
    /// Run one reconcile; `crash` stops it right after the Secret write (no status write).
    Reconcile {
        crash: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 1..4i64, prop::bool::weighted(0.85))
            .prop_map(|(slot, by, confirmed)| Op::Request { slot, by, confirmed }),
        1 => prop::bool::weighted(0.6).prop_map(|confirmed| Op::Revoke { confirmed }),
        1 => Just(Op::ToggleUserLabel),
        1 => Just(Op::DeleteSecret),
        1 => (0..2usize).prop_map(|slot| Op::TamperValue { slot }),
        1 => (0..2usize, -3..4i64).prop_map(|(slot, by)| Op::TamperRevision { slot, by }),
        1 => Just(Op::SwapSlots),
        1 => (1..6usize).prop_map(|back| Op::Restore { back }),
        1 => any::<bool>().prop_map(|copy_proofs| Op::Forge { copy_proofs }),
        6 => prop::bool::weighted(0.3).prop_map(|crash| Op::Reconcile { crash }),
    ]
}

struct World {
    ks: DataMinerKeySet,
    secret: Option<Secret>,
    snapshots: Vec<Option<Secret>>,
    proof_key: ProofKey,
    /// Reference model: every key the operator generated, as (slot, revision, fingerprint).
    generated: Vec<(usize, i64, String)>,
    /// Every key status ever recorded.
    recorded: Vec<(usize, i64, String)>,
    uids: u64,
    revoke_confirmed: bool,
}

impl World {
    fn new() -> World {
        let mut ks = DataMinerKeySet::new(
            "ks",
            DataMinerKeySetSpec {
                label: LABEL.into(),
                scope: Scope {
                    organization: Some(OrganizationScope { name: "org".into() }),
                    system: None,
                },
                permissions: vec![Permission::ReadCatalogItems],
                key_format: Default::default(),
                secret: None,
                regenerate: None,
                revoke: None,
                adopt: None,
            },
        );
        ks.metadata.namespace = Some("ns".into());
        ks.metadata.uid = Some("keyset-uid".into());
        ks.metadata.generation = Some(1);
        World {
            ks,
            secret: None,
            snapshots: Vec::new(),
            proof_key: ProofKey::generate().unwrap(),
            generated: Vec::new(),
            recorded: Vec::new(),
            uids: 0,
            revoke_confirmed: false,
        }
    }

    fn new_uid(&mut self) -> String {
        self.uids += 1;
        format!("secret-uid-{}", self.uids)
    }

    fn status(&self) -> DataMinerKeySetStatus {
        self.ks.status.clone().unwrap_or_default()
    }

    fn data_key(slot: usize) -> &'static str {
        ["primaryKey", "secondaryKey"][slot]
    }

    fn value(secret: &Secret, slot: usize) -> Option<String> {
        let b = secret.data.as_ref()?.get(Self::data_key(slot))?;
        String::from_utf8(b.0.clone()).ok()
    }

    fn apply_op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let spec = &mut self.ks.spec;
        match op {
            Op::Request {
                slot,
                by,
                confirmed,
            } => {
                let r = spec.regenerate.get_or_insert_with(RegenerateSpec::default);
                let req = if *slot == 0 {
                    &mut r.primary
                } else {
                    &mut r.secondary
                };
                let revision = req.as_ref().map_or(1, |r| r.revision) + by;
                *req = Some(RegenerateRequest {
                    revision,
                    confirm_label: if *confirmed { LABEL } else { "wrong" }.into(),
                });
                self.bump();
            }
            Op::Revoke { confirmed } => {
                if spec.revoke.is_none() || *confirmed {
                    spec.revoke = Some(
                        RevokeSpec {
                            confirm_label: if *confirmed { LABEL } else { "wrong" }.into(),
                        }
                        .into(),
                    );
                    self.revoke_confirmed |= *confirmed;
                    self.bump();
                }
            }
            Op::ToggleUserLabel => {
                spec.secret = match spec.secret.take() {
                    Some(_) => None,
                    None => Some(
                        SecretSpec {
                            labels: BTreeMap::from([("team".into(), "platform".into())]),
                            ..Default::default()
                        }
                        .into(),
                    ),
                };
                self.bump();
            }
            Op::DeleteSecret => self.set_secret(None),
            Op::TamperValue { slot } => {
                if let Some(mut s) = self.secret.clone() {
                    let planted = keys::generate(Default::default()).unwrap();
                    s.data.get_or_insert_with(Default::default).insert(
                        Self::data_key(*slot).into(),
                        ByteString(planted.expose().as_bytes().to_vec()),
                    );
                    self.set_secret(Some(s));
                }
            }
            Op::TamperRevision { slot, by } => {
                if let Some(mut s) = self.secret.clone() {
                    let key = revision_annotation(if *slot == 0 {
                        Slot::Primary
                    } else {
                        Slot::Secondary
                    });
                    let current: i64 = s
                        .annotations()
                        .get(key)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    s.annotations_mut()
                        .insert(key.into(), (current + by).to_string());
                    self.set_secret(Some(s));
                }
            }
            Op::SwapSlots => {
                if let Some(mut s) = self.secret.clone() {
                    let (p, q) = (Self::value(&s, 0), Self::value(&s, 1));
                    let data = s.data.get_or_insert_with(Default::default);
                    if let (Some(p), Some(q)) = (p, q) {
                        data.insert("primaryKey".into(), ByteString(q.into_bytes()));
                        data.insert("secondaryKey".into(), ByteString(p.into_bytes()));
                    }
                    let a = s.annotations_mut();
                    let pp = a.get(proof_annotation(Slot::Primary)).cloned();
                    let sp = a.get(proof_annotation(Slot::Secondary)).cloned();
                    if let (Some(pp), Some(sp)) = (pp, sp) {
                        a.insert(proof_annotation(Slot::Primary).into(), sp);
                        a.insert(proof_annotation(Slot::Secondary).into(), pp);
                    }
                    self.set_secret(Some(s));
                }
            }
            Op::Restore { back } => {
                if *back <= self.snapshots.len() {
                    let old = self.snapshots[self.snapshots.len() - back].clone();
                    // A restore makes a new object when the Secret was deleted since.
                    let old = old.map(|mut s| {
                        if self.secret.as_ref().map(|c| c.uid()) != Some(s.uid()) {
                            s.metadata.uid = Some(self.new_uid());
                        }
                        s
                    });
                    self.set_secret(old);
                }
            }
            Op::Forge { copy_proofs } => {
                let mut forged = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some("ks-keys".into()),
                        uid: Some(self.new_uid()),
                        owner_references: Some(vec![
                            kube::Resource::controller_owner_ref(&self.ks, &()).unwrap(),
                        ]),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                match (&self.secret, copy_proofs) {
                    (Some(current), true) => {
                        forged.data = current.data.clone();
                        forged.metadata.annotations = current.metadata.annotations.clone();
                        forged.metadata.labels = current.metadata.labels.clone();
                    }
                    _ => {
                        let mut data = BTreeMap::new();
                        for slot in 0..2 {
                            let v = keys::generate(Default::default()).unwrap();
                            data.insert(
                                Self::data_key(slot).into(),
                                ByteString(v.expose().as_bytes().to_vec()),
                            );
                        }
                        forged.data = Some(data);
                    }
                }
                self.set_secret(Some(forged));
            }
            Op::Reconcile { crash } => self.reconcile(*crash)?,
        }
        self.check()
    }

    fn bump(&mut self) {
        let g = self.ks.metadata.generation.unwrap_or(1);
        self.ks.metadata.generation = Some(g + 1);
    }

    fn set_secret(&mut self, secret: Option<Secret>) {
        self.snapshots.push(self.secret.clone());
        self.secret = secret;
    }

    /// One reconcile, as the controller does it, minus the API.
    fn reconcile(&mut self, crash: bool) -> Result<(), TestCaseError> {
        let status = self.status();
        let was_revoked = status.revoked_at.is_some();
        let (seen, values) =
            secret::observe(&self.ks, &status, &self.proof_key, self.secret.as_ref());
        let name = self.ks.name_any();
        let secret_name = self.ks.secret_name();
        let plan = plan::plan(&PlanInput {
            name: &name,
            spec: &self.ks.spec,
            status: &status,
            secret_name: &secret_name,
            secret: seen,
            denied_prefixes: &[],
        });
        let mut held = plan.holds.clone();
        let mut secret_uid = plan.secret_uid.clone();
        let mut lineage = plan.lineage.clone();
        match &plan.write {
            SecretWrite::None => {}
            SecretWrite::Delete => self.set_secret(None),
            SecretWrite::Create { slots } | SecretWrite::Update { slots } => {
                prop_assert!(!was_revoked, "a write after revocation: {plan:?}");
                let mut new_values = Vec::new();
                for (i, s) in slots.iter().enumerate() {
                    new_values.push(match s {
                        SlotPlan::Generate { revision } => {
                            let v = keys::generate(self.ks.spec.key_format).unwrap();
                            let key = (i, *revision, v.fingerprint());
                            // The one duplicate no design can avoid without a write before
                            // every Secret write: the first key was never recorded, and the
                            // Secret that held it is gone (deleted in the crash window).
                            let held_now = self.secret.as_ref().and_then(|s| Self::value(s, i));
                            let earlier = self.generated.iter().find(|g| (g.0, g.1) == (i, *revision));
                            prop_assert!(
                                earlier.is_none_or(|g| !self.recorded.contains(g)
                                    && held_now.as_deref().map(|v| keys::fingerprint(v.as_bytes())) != Some(g.2.clone())),
                                "slot {i} revision {revision} generated twice"
                            );
                            self.generated.push(key);
                            v
                        }
                        SlotPlan::Keep { revision } => {
                            let v = values[i].clone().expect("kept values exist");
                            prop_assert!(
                                self.generated.contains(&(i, *revision, v.fingerprint())),
                                "slot {i} kept at revision {revision} a value the operator did not generate there"
                            );
                            v
                        }
                    });
                }
                let revisions = [slots[0].revision(), slots[1].revision()];
                let refs: [&KeyValue; 2] = [&new_values[0], &new_values[1]];
                let drawn = lineage
                    .get_or_insert_with(|| dataminer_keys_operator::proof::new_lineage().unwrap());
                let mut built =
                    secret::build(&self.ks, &self.proof_key, refs, revisions, drawn, None);
                let uid = match (&plan.write, &self.secret) {
                    (SecretWrite::Update { .. }, Some(current)) => current.uid().unwrap(),
                    _ => {
                        prop_assert!(self.secret.is_none(), "a create over an existing Secret");
                        self.new_uid()
                    }
                };
                built.metadata.uid = Some(uid.clone());
                secret_uid = Some(uid);
                held = [0, 1].map(|i| {
                    Some(plan::Held {
                        revision: revisions[i],
                        fingerprint: new_values[i].fingerprint(),
                    })
                });
                self.set_secret(Some(built));
            }
        }
        if crash {
            return Ok(());
        }
        let applied = Applied {
            plan,
            held,
            secret_uid,
            lineage,
            now: Timestamp::UNIX_EPOCH,
        };
        let next = next_status(&self.ks, &applied);
        self.ks.status = Some(next.clone());
        let plan = applied.plan;

        if self.revoke_confirmed || was_revoked {
            prop_assert!(next.revoked_at.is_some(), "revocation did not go through");
            let uid = next.secret_uid.clone();
            prop_assert!(
                self.secret.as_ref().is_none_or(|s| s.uid() != uid),
                "the operator's Secret survived revocation"
            );
        }
        let troubled = plan
            .problems
            .iter()
            .any(|p| !matches!(p, Problem::SecretMissing));
        if !troubled && !plan.revoked {
            for (i, slot) in [next.primary.as_ref(), next.secondary.as_ref()]
                .into_iter()
                .enumerate()
            {
                let requested = self.ks.spec.regenerate.as_ref().and_then(|r| {
                    if i == 0 {
                        r.primary.as_ref()
                    } else {
                        r.secondary.as_ref()
                    }
                });
                if let Some(r) = requested {
                    prop_assert!(
                        slot.is_some_and(|k| k.revision >= r.revision),
                        "request for slot {i} at {} not satisfied: {next:?}",
                        r.revision
                    );
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let status = self.status();
        let mut recorded_now = Vec::new();
        for (i, k) in [status.primary.as_ref(), status.secondary.as_ref()]
            .into_iter()
            .enumerate()
        {
            if let Some(k) = k {
                let key = (i, k.revision, k.fingerprint.clone());
                if !self.recorded.contains(&key) {
                    recorded_now.push(key);
                }
                prop_assert!(
                    self.generated
                        .contains(&(i, k.revision, k.fingerprint.clone())),
                    "status records slot {i} at {} with {} that the operator never generated there",
                    k.revision,
                    k.fingerprint
                );
            }
        }
        let mut seen = Vec::new();
        for h in &status.history {
            if let (Some(slot), Some(rev), Some(fp)) = (&h.slot, h.revision, &h.fingerprint) {
                let i = usize::from(slot == "secondary");
                prop_assert!(
                    self.generated.contains(&(i, rev, fp.clone())),
                    "history reports a rotation that never happened: {h:?}"
                );
                prop_assert!(!seen.contains(&(i, rev)), "rotation reported twice: {h:?}");
                seen.push((i, rev));
            }
        }
        self.recorded.extend(recorded_now);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=100000 for a longer hunt; 3,000 in `make test`.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_plan_keeps_its_promises_under_any_sequence(ops in prop::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in &ops {
            world.apply_op(op)?;
        }
        // Let the dust settle: two clean reconciles.
        world.apply_op(&Op::Reconcile { crash: false })?;
        world.apply_op(&Op::Reconcile { crash: false })?;
    }
}
