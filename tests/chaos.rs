//! Chaos: exactly-once under sustained failure, on a control plane this binary owns.
//!
//! Key sets go through creation, three waves of rotation requests (both slots, revision jumps, a
//! request raised again before the previous one was applied) and a wave of revocations, while a
//! seeded schedule SIGKILLs the leading operator replica (two replicas share a Lease), fails over
//! to the standby, and crashes kube-apiserver and etcd in place. After the dust settles every key
//! set is checked (see `check`), a summary is printed, and any violation fails the test.
//!
//! `make test` runs the reduced version below; `make chaos` the full one. Parameters (env):
//! `DMK_CHAOS_SETS` (150), `DMK_CHAOS_KILLS` (10), `DMK_CHAOS_API_RESTARTS` (1),
//! `DMK_CHAOS_ETCD_RESTARTS` (0), `DMK_CHAOS_FAILOVERS` (1), `DMK_CHAOS_SEED` (random, printed:
//! set it to replay a schedule).

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{KeyLedger, LABEL, operator::Operator, org_keyset};
use dataminer_keys_operator::{api::DataMinerKeySet, keys::fingerprint};
use dmk_control_plane::{Component, ControlPlane, Options};
use futures::{StreamExt, stream};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Secret, events::v1::Event};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde_json::json;

fn param(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the workload asked of one key set, in the end.
#[derive(Clone, Debug, Default)]
struct Wanted {
    primary: i64,
    secondary: i64,
    revoked: bool,
}

fn manifest(name: &str, wanted: &Wanted) -> serde_json::Value {
    let mut m = org_keyset(name);
    if wanted.primary > 1 {
        m["spec"]["regenerate"]["primary"] =
            json!({ "revision": wanted.primary, "confirmLabel": LABEL });
    }
    if wanted.secondary > 1 {
        m["spec"]["regenerate"]["secondary"] =
            json!({ "revision": wanted.secondary, "confirmLabel": LABEL });
    }
    if wanted.revoked {
        m["spec"]["revoke"] = json!({ "confirmLabel": LABEL });
    }
    m
}

/// Applies until the API server takes it (it may be restarting); returns the new generation.
async fn apply_until_accepted(api: &Api<DataMinerKeySet>, m: &serde_json::Value) -> i64 {
    let name = m["metadata"]["name"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let pp = PatchParams::apply(common::USER_MANAGER).force();
        match api.patch(name, &pp, &Patch::Apply(m)).await {
            Ok(ks) => return ks.metadata.generation.unwrap_or_default(),
            Err(kube::Error::Api(s)) if s.code == 422 => panic!("{name} refused: {}", s.message),
            Err(e) => {
                assert!(Instant::now() < deadline, "{name} never accepted: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// One wave: each chosen key set's wanted state changes, and is applied (16 at a time).
/// Returns (name, generation) of each set it changed.
async fn wave(
    api: &Api<DataMinerKeySet>,
    wanted: &mut [Wanted],
    names: &[String],
    mut change: impl FnMut(usize, &mut Wanted) -> bool,
) -> Vec<(String, i64)> {
    let mut manifests = Vec::new();
    for (i, w) in wanted.iter_mut().enumerate() {
        if !w.revoked && change(i, w) {
            manifests.push((names[i].clone(), manifest(&names[i], w)));
        }
    }
    stream::iter(manifests)
        .map(|(name, m)| async move { (name, apply_until_accepted(api, &m).await) })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Waits (at most a minute) until most of a wave's sets were seen by the operator, so the next
/// wave rotates keys that exist rather than merging into one creation.
async fn mostly_observed(api: &Api<DataMinerKeySet>, applied: &[(String, i64)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(list) = api.list(&ListParams::default()).await {
            let observed: BTreeMap<String, i64> = list
                .items
                .iter()
                .filter_map(|k| Some((k.name_any(), k.status.as_ref()?.observed_generation?)))
                .collect();
            let done = applied
                .iter()
                .filter(|(n, g)| observed.get(n).is_some_and(|o| o >= g))
                .count();
            if done * 10 >= applied.len() * 8 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Chaos {
    replicas: Vec<Operator>,
    kills: u64,
    failovers: u64,
    api_restarts: u64,
    etcd_restarts: u64,
}

impl Chaos {
    /// The replica that holds the Lease now, if any.
    async fn leader(&self, client: &Client, ns: &str) -> Option<usize> {
        let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
        let holder = leases
            .get_opt("dataminer-keys-operator")
            .await
            .ok()??
            .spec?
            .holder_identity?;
        ["replica-a", "replica-b"]
            .iter()
            .position(|id| *id == holder)
    }

    /// SIGKILLs the leader and restarts it at once (it takes its own Lease back).
    async fn kill_leader(&mut self, client: &Client, ns: &str) {
        let i = self.leader(client, ns).await.unwrap_or(0);
        self.replicas[i].kill();
        self.replicas[i].restart();
        self.kills += 1;
    }

    /// SIGKILLs the leader and keeps it down until the standby leads.
    async fn fail_over(&mut self, client: &Client, ns: &str) {
        // The Lease may be unreadable for a moment (an API server restart): wait for a leader.
        let deadline = Instant::now() + Duration::from_secs(60);
        let i = loop {
            if let Some(i) = self.leader(client, ns).await {
                break i;
            }
            assert!(Instant::now() < deadline, "no replica leads");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        self.replicas[i].kill();
        self.kills += 1;
        let other = 1 - i;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.leader(client, ns).await != Some(other) {
            assert!(Instant::now() < deadline, "the standby never took over");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.failovers += 1;
        self.replicas[i].restart();
    }
}

#[tokio::test]
async fn exactly_once_under_sustained_failure() {
    if std::env::var("DMK_TEST_CLUSTER").as_deref() == Ok("kubeconfig") {
        return; // an attached cluster is not ours to crash
    }
    let sets = param("DMK_CHAOS_SETS", 150) as usize;
    let kills = param("DMK_CHAOS_KILLS", 10);
    let api_restarts = param("DMK_CHAOS_API_RESTARTS", 1);
    let etcd_restarts = param("DMK_CHAOS_ETCD_RESTARTS", 0);
    let failovers = param("DMK_CHAOS_FAILOVERS", 1);
    let seed = param("DMK_CHAOS_SEED", rand::random::<u32>() as u64);
    println!(
        "chaos: seed {seed} (replay with DMK_CHAOS_SEED={seed}), {sets} key sets, {kills} kills, {api_restarts} API server and {etcd_restarts} etcd restarts, {failovers} failovers"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let mut cp = ControlPlane::start(&Options {
        crd_dir: Some(common::crd_dir()),
        chart_dir: Some(common::chart::CHART.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let ns = cp.namespace("chaos").await.unwrap();
    let client = cp.client().await.unwrap();
    let api: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &ns);
    let mut chaos = Chaos {
        replicas: ["replica-a", "replica-b"]
            .iter()
            .map(|id| Operator::start_with(&cp, &ns, &[&format!("--identity={id}")]))
            .collect(),
        kills: 0,
        failovers: 0,
        api_restarts: 0,
        etcd_restarts: 0,
    };

    // The workload runs in its own task; chaos strikes from this one meanwhile.
    let names: Vec<String> = (0..sets).map(|i| format!("ks-{i:04}")).collect();
    let revoke_every = 10;
    let workload = {
        let api = api.clone();
        let names = names.clone();
        let mut wl_rng = StdRng::seed_from_u64(seed.wrapping_add(1));
        tokio::spawn(async move {
            let mut wanted = vec![
                Wanted {
                    primary: 1,
                    secondary: 1,
                    revoked: false
                };
                names.len()
            ];
            let pause = |r: &mut StdRng| Duration::from_millis(r.random_range(1000..5000));
            let created = wave(&api, &mut wanted, &names, |_, _| true).await;
            mostly_observed(&api, &created).await;
            tokio::time::sleep(pause(&mut wl_rng)).await;
            let first = wave(&api, &mut wanted, &names, |_, w| {
                w.primary += 1;
                true
            })
            .await;
            mostly_observed(&api, &first).await;
            // Revision jumps on the secondary, without waiting for the primaries.
            let jumps: Vec<i64> = (0..names.len())
                .map(|_| wl_rng.random_range(1..4))
                .collect();
            let second = wave(&api, &mut wanted, &names, |i, w| {
                w.secondary += jumps[i];
                true
            })
            .await;
            mostly_observed(&api, &second).await;
            tokio::time::sleep(pause(&mut wl_rng)).await;
            // Raised twice in a row on a third: the first raise is usually still pending.
            for _ in 0..2 {
                wave(&api, &mut wanted, &names, |i, w| {
                    if i % 3 != 0 {
                        return false;
                    }
                    w.primary += 1;
                    true
                })
                .await;
            }
            tokio::time::sleep(pause(&mut wl_rng)).await;
            wave(&api, &mut wanted, &names, |i, w| {
                w.revoked = i % revoke_every == 0;
                w.revoked
            })
            .await;
            (wanted, started.elapsed())
        })
    };

    // Chaos schedule: events spread over the workload, in a seeded order.
    let mut events: Vec<&str> = Vec::new();
    events.extend((0..kills.saturating_sub(failovers)).map(|_| "kill"));
    events.extend((0..failovers).map(|_| "failover"));
    events.extend((0..api_restarts).map(|_| "apiserver"));
    events.extend((0..etcd_restarts).map(|_| "etcd"));
    for i in (1..events.len()).rev() {
        events.swap(i, rng.random_range(0..=i));
    }
    for event in events {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..2500))).await;
        match event {
            "kill" => chaos.kill_leader(&client, &ns).await,
            "failover" => chaos.fail_over(&client, &ns).await,
            "apiserver" => {
                cp.restart(Component::ApiServer, true).await.unwrap();
                chaos.api_restarts += 1;
            }
            _ => {
                cp.restart(Component::Etcd, true).await.unwrap();
                chaos.etcd_restarts += 1;
            }
        }
    }
    let chaos_done = started.elapsed();
    let (wanted, workload_done) = workload.await.unwrap();

    // Settle: every key set where the workload left it.
    let settle_deadline = Instant::now() + Duration::from_secs(param("DMK_CHAOS_SETTLE_SECS", 180));
    let settled = loop {
        let list = api.list(&ListParams::default()).await;
        if let Ok(list) = list {
            let done = list.items.iter().filter(|k| settled(k)).count();
            if done == sets {
                break list.items;
            }
            if Instant::now() > settle_deadline {
                break list.items;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Check.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secrets: BTreeMap<String, Secret> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    let events_api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let mut events_by: BTreeMap<(String, String), i32> = BTreeMap::new();
    for e in events_api.list(&ListParams::default()).await.unwrap().items {
        let name = e
            .regarding
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let count = e.series.as_ref().map_or(1, |s| s.count);
        *events_by
            .entry((name, e.reason.unwrap_or_default()))
            .or_default() += count;
    }
    let mut ledger = KeyLedger::default();
    let mut violations = Vec::new();
    let mut rotations = 0;
    let by_name: BTreeMap<String, &DataMinerKeySet> =
        settled.iter().map(|k| (k.name_any(), k)).collect();
    for (i, name) in names.iter().enumerate() {
        let Some(ks) = by_name.get(name) else {
            violations.push(format!("{name}: missing"));
            continue;
        };
        rotations += check(
            ks,
            &wanted[i],
            &secrets,
            &events_by,
            &mut ledger,
            &mut violations,
        );
    }

    println!(
        "chaos summary: seed {seed}, {sets} key sets, {} kills ({} failovers), {} API server restarts, {} etcd restarts, {rotations} rotations recorded, {} violations; workload done after {workload_done:.0?}, chaos after {chaos_done:.0?}, all in {:.0?}",
        chaos.kills,
        chaos.failovers,
        chaos.api_restarts,
        chaos.etcd_restarts,
        violations.len(),
        started.elapsed()
    );
    for v in violations.iter().take(30) {
        println!("violation: {v}");
    }
    assert!(
        violations.is_empty(),
        "{} violations (seed {seed})",
        violations.len()
    );
    assert_eq!(
        (
            chaos.kills,
            chaos.failovers,
            chaos.api_restarts,
            chaos.etcd_restarts
        ),
        (kills.max(failovers), failovers, api_restarts, etcd_restarts),
        "the whole schedule ran"
    );
    let logs: String = chaos.replicas.iter().map(|r| r.logs()).collect();
    ledger.assert_no_leaks(&client, &ns, &logs).await;
    for r in &mut chaos.replicas {
        r.kill();
    }
    cp.stop();
}

fn settled(ks: &DataMinerKeySet) -> bool {
    let current = ks.status.as_ref().and_then(|s| s.observed_generation) == ks.metadata.generation;
    current
        && (common::is_ready(ks)
            || common::condition(ks, "Revoked").is_some_and(|c| c.status == "True"))
}

/// Every promise for one key set; returns the rotations its history records.
fn check(
    ks: &DataMinerKeySet,
    wanted: &Wanted,
    secrets: &BTreeMap<String, Secret>,
    events: &BTreeMap<(String, String), i32>,
    ledger: &mut KeyLedger,
    violations: &mut Vec<String>,
) -> usize {
    let name = ks.name_any();
    let mut fail = |what: String| violations.push(format!("{name}: {what}"));
    if !settled(ks) {
        fail(format!(
            "not settled: generation {:?}, status {:?}",
            ks.metadata.generation,
            ks.status
                .as_ref()
                .map(|s| (&s.observed_generation, &s.conditions))
        ));
        return 0;
    }
    let status = ks.status.as_ref().unwrap();
    let history = &status.history;
    let count = |action: &str| history.iter().filter(|h| h.action == action).count();
    // A set revoked before the operator first reached it never got keys: no KeysCreated then.
    let created_ok = match (wanted.revoked, count("KeysCreated")) {
        (_, 1) => true,
        (true, 0) => status.primary.is_none(),
        _ => false,
    };
    if !created_ok {
        fail(format!("{} KeysCreated in history", count("KeysCreated")));
    }
    let mut seen = Vec::new();
    for h in history {
        if let (Some(slot), Some(rev)) = (&h.slot, h.revision) {
            if seen.contains(&(slot.clone(), rev)) {
                fail(format!("{slot} revision {rev} recorded twice"));
            }
            seen.push((slot.clone(), rev));
        }
    }
    for (action, reason) in [
        ("KeysCreated", "KeysCreated"),
        ("RegeneratePrimary", "PrimaryKeyRegenerated"),
        ("RegenerateSecondary", "SecondaryKeyRegenerated"),
        ("Revoke", "KeysRevoked"),
    ] {
        let recorded = count(action) as i32;
        let announced = events
            .get(&(name.clone(), reason.to_string()))
            .copied()
            .unwrap_or(0);
        if announced < recorded {
            fail(format!(
                "{recorded} {action} recorded, {announced} {reason} Events"
            ));
        }
    }
    let rotations = count("RegeneratePrimary") + count("RegenerateSecondary");
    let secret = secrets.get(&format!("{name}-keys"));
    if wanted.revoked {
        if status.revoked_at.is_none() {
            fail("revocation not recorded".into());
        }
        if secret.is_some() {
            fail("revoked, yet its Secret exists".into());
        }
        return rotations;
    }
    let Some(secret) = secret else {
        fail("no Secret".into());
        return rotations;
    };
    let (p, s) = ledger.record(secret);
    let annotation = |slot: &str| -> Option<i64> {
        secret
            .annotations()
            .get(&format!("keys.dataminer.services/{slot}-revision"))?
            .parse()
            .ok()
    };
    for (slot, value, recorded, want) in [
        ("primary", &p, status.primary.as_ref(), wanted.primary),
        ("secondary", &s, status.secondary.as_ref(), wanted.secondary),
    ] {
        let Some(recorded) = recorded else {
            fail(format!("no {slot} in status"));
            continue;
        };
        if recorded.fingerprint != fingerprint(value.as_bytes()) {
            fail(format!(
                "{slot}: status fingerprint is not the Secret's key"
            ));
        }
        if (annotation(slot), recorded.revision) != (Some(want), want) {
            fail(format!(
                "{slot}: annotation {:?}, status {}, requested {want}",
                annotation(slot),
                recorded.revision
            ));
        }
    }
    rotations
}
