//! The lower bound: a client that makes exactly the writes an operator must, with the
//! operator's own Secret, status and Event bodies (built by the operator's library), and
//! nothing else: no reads, no checks, no finalizer. Its time is what the API server allows.
//! The bench watches it finish exactly as it watches the operator ([`workload::observe`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use dataminer_keys_operator::{
    api::DataMinerKeySet,
    controller::events::{self, Reporter},
    keys::{self, KeyValue},
    plan::{Change, Held, Plan, SecretWrite, Slot},
    proof::ProofKey,
    secret::{self, FIELD_MANAGER},
    status::{self, Applied},
};
use futures::{SinkExt, StreamExt, TryFutureExt, TryStreamExt, channel::mpsc};
use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use crate::{
    Result,
    apiserver::Requests,
    workload::{self, Phase, names},
};

/// Times of both phases, and the writes per key set the bare client made in them.
pub struct Bare {
    pub create: Duration,
    pub rotate: Duration,
    pub requests: Requests,
    /// CPU seconds of the control plane in each phase.
    pub control_plane_cpu: [f64; 2],
}

/// What the bare client remembers of a key set between the phases.
struct Kept {
    values: [KeyValue; 2],
    secret_uid: String,
    secret_version: String,
    lineage: String,
}

struct Writer {
    client: Client,
    secrets: Api<Secret>,
    keysets: Api<DataMinerKeySet>,
    reporter: Reporter,
    proof: ProofKey,
    kept: Mutex<HashMap<String, Kept>>,
}

/// `control_plane`: the local control plane's processes, whose CPU each phase costs.
pub async fn run(
    client: &Client,
    ns: &str,
    n: usize,
    concurrency: usize,
    control_plane: &[u32],
    timeout: Duration,
) -> Result<Bare> {
    let writer = Arc::new(Writer {
        client: client.clone(),
        secrets: Api::namespaced(client.clone(), ns),
        keysets: Api::namespaced(client.clone(), ns),
        reporter: Reporter {
            controller: "dmk-bench-bare".into(),
            instance: "dmk-bench-bare".into(),
        },
        proof: ProofKey::generate().map_err(|e| e.to_string())?,
        kept: Mutex::new(HashMap::new()),
    });
    let names = names(n);

    let cpu_start = dmk_control_plane::kit::cpu::total(control_plane);
    let create = timed_phase(&writer, &names, concurrency, Phase::Create, timeout).await?;
    let cpu_create = dmk_control_plane::kit::cpu::total(control_plane);
    let rotate = timed_phase(&writer, &names, concurrency, Phase::Rotate, timeout).await?;
    let cpu_rotate = dmk_control_plane::kit::cpu::total(control_plane);

    // Per key set and phase: one Secret write, one status apply, one Event.
    let mut requests = Requests::default();
    requests.add("POST secrets (create) / APPLY secrets (rotate)", 1.0);
    requests.add("APPLY dataminerkeysets/status", 1.0);
    requests.add("POST events", 1.0);
    Ok(Bare {
        create,
        rotate,
        requests,
        control_plane_cpu: [cpu_create - cpu_start, cpu_rotate - cpu_create],
    })
}

/// One phase: the bench's request per key set, and the bare client's writes for each answer,
/// timed until the bench's watch has seen every key set done.
async fn timed_phase(
    writer: &Arc<Writer>,
    names: &[String],
    concurrency: usize,
    phase: Phase,
    timeout: Duration,
) -> Result<Duration> {
    let request = |name: String| {
        let w = writer.clone();
        async move { phase.request(&w.keysets, &name).await }
    };
    let work = |ks: DataMinerKeySet| {
        let w = writer.clone();
        async move {
            match phase {
                Phase::Create => w.create_keys(ks).await,
                Phase::Rotate => w.rotate_primary(ks).await,
            }
        }
    };
    // The bench's own requests are not the bare client's: its request table is fixed (run).
    let mut observer = Requests::default();
    let writes = pipeline(names, concurrency, request, work);
    workload::observe(
        &writer.keysets,
        names,
        phase,
        writes,
        &mut observer,
        timeout,
    )
    .await
}

/// `request` per name by `concurrency` workers, each result handed to `concurrency` other
/// workers that run `work`: the shape of a client creating objects while an operator acts on
/// them. The worker gets the object from the request's answer, as an operator gets it from its
/// watch.
async fn pipeline<R, W, RF, WF>(
    names: &[String],
    concurrency: usize,
    request: R,
    work: W,
) -> Result<()>
where
    R: Fn(String) -> RF,
    RF: Future<Output = Result<DataMinerKeySet>>,
    W: Fn(DataMinerKeySet) -> WF,
    WF: Future<Output = Result<()>>,
{
    let (tx, rx) = mpsc::channel::<DataMinerKeySet>(concurrency * 4);
    let requests = futures::stream::iter(names.iter().cloned())
        .map(request)
        .buffer_unordered(concurrency)
        .try_fold(tx, |mut tx, ks| async move {
            tx.send(ks).await.map_err(|e| e.to_string())?;
            Ok(tx)
        })
        // Dropping the sender when all are sent ends the workers' stream.
        .map_ok(drop);
    let works = rx
        .map(work)
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>();
    let (sent, done) = futures::join!(requests, works);
    sent.map(drop)?;
    done.map(drop)
}

impl Writer {
    async fn create_keys(&self, ks: DataMinerKeySet) -> Result<()> {
        let values = [generate(&ks)?, generate(&ks)?];
        let lineage = dataminer_keys_operator::proof::new_lineage().map_err(|e| e.to_string())?;
        let body = secret::build(
            &ks,
            &self.proof,
            [&values[0], &values[1]],
            [1, 1],
            &lineage,
            None,
        );
        let made = self
            .secrets
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &body,
            )
            .await
            .map_err(|e| e.to_string())?;
        let held = held(&values, [1, 1]);
        self.finish(&ks, Change::KeysCreated, held, made.uid(), &lineage)
            .await?;
        self.kept.lock().expect("lock").insert(
            ks.name_any(),
            Kept {
                values,
                secret_uid: made.uid().unwrap_or_default(),
                secret_version: made.resource_version().unwrap_or_default(),
                lineage,
            },
        );
        Ok(())
    }

    async fn rotate_primary(&self, ks: DataMinerKeySet) -> Result<()> {
        let kept = self.kept.lock().expect("lock").remove(&ks.name_any());
        let kept = kept.ok_or_else(|| format!("{} was not created", ks.name_any()))?;
        let values = [generate(&ks)?, kept.values[1].clone()];
        let body = secret::build(
            &ks,
            &self.proof,
            [&values[0], &values[1]],
            [2, 1],
            &kept.lineage,
            Some((kept.secret_uid.clone(), kept.secret_version)),
        );
        self.secrets
            .patch(
                &ks.secret_name(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| e.to_string())?;
        let change = Change::Regenerated {
            slot: Slot::Primary,
            revision: 2,
            found: None,
        };
        self.finish(
            &ks,
            change,
            held(&values, [2, 1]),
            Some(kept.secret_uid),
            &kept.lineage,
        )
        .await
    }

    /// The Event and the status, with the operator's own words and shape.
    async fn finish(
        &self,
        ks: &DataMinerKeySet,
        change: Change,
        held: [Option<Held>; 2],
        secret_uid: Option<String>,
        lineage: &str,
    ) -> Result<()> {
        let plan = Plan {
            write: SecretWrite::None,
            changes: vec![change],
            problems: vec![],
            revoked: false,
            secret_uid: secret_uid.clone(),
            holds: held.clone(),
            lineage: Some(lineage.into()),
        };
        let applied = Applied {
            plan,
            held,
            secret_uid,
            lineage: Some(lineage.into()),
            now: Timestamp::now(),
        };
        let notices = status::notices(ks, &applied);
        for queued in status::queue(ks, notices, applied.now) {
            let event = events::event(&self.reporter, &queued, ks.object_ref(&()));
            events::publish(&self.client, &event)
                .await
                .map_err(|e| e.to_string())?;
        }
        let next = status::next_status(ks, &applied);
        let body = json!({
            "apiVersion": DataMinerKeySet::api_version(&()),
            "kind": DataMinerKeySet::kind(&()),
            "status": next,
        });
        self.keysets
            .patch_status(
                &ks.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

fn generate(ks: &DataMinerKeySet) -> Result<KeyValue> {
    keys::generate(ks.spec.key_format).map_err(|e| e.to_string())
}

fn held(values: &[KeyValue; 2], revisions: [i64; 2]) -> [Option<Held>; 2] {
    [0, 1].map(|i| {
        Some(Held {
            revision: revisions[i],
            fingerprint: values[i].fingerprint(),
        })
    })
}
