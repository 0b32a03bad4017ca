//! The test kit: what the integration suites (`tests/`), the benchmark (`bench/`) and
//! `make run` share on top of the control plane. One real control plane per test binary, the
//! generated CRDs and the chart's admission policies installed, a fresh namespace per test, the
//! operator and the plugin run as the real processes, and the waits and checks every suite
//! uses.

use crate::{ControlPlane, Options};
use std::path::{Path, PathBuf};

pub mod backup;
pub mod chart;
pub mod cpu;
pub mod operator;
pub mod plugin;
pub mod proxy;
pub mod refuse;
pub mod scripted;

/// The repository's root (this crate sits in tests/control-plane).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn crd_dir() -> PathBuf {
    repo_root().join("crds")
}

/// A binary of this workspace (`dataminer-keys-operator`, `kubectl-dmkeys`), from
/// `$DMK_BIN_DIR`, else beside the running executable: Cargo builds a package's binaries before
/// its integration tests, in the directory above the tests' `deps/`.
pub fn workspace_binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("DMK_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("the running executable");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// The control plane of this test binary, started on first use, with the CRDs and the chart's
/// admission policies (all but the one that refuses deleting key sets holding keys).
pub async fn control_plane() -> &'static ControlPlane {
    let opts = Options {
        crd_dir: Some(crd_dir()),
        chart_dir: Some(PathBuf::from(chart::CHART)),
        ..Default::default()
    };
    match crate::shared(&opts).await {
        Ok(cp) => cp,
        Err(e) => panic!("test control plane: {e}"),
    }
}

/// A new admin client and a fresh namespace named after the test.
pub async fn client_and_namespace(prefix: &str) -> (kube::Client, String) {
    let cp = control_plane().await;
    let ns = cp.namespace(prefix).await.expect("create test namespace");
    (cp.client().await.expect("admin client"), ns)
}

use dataminer_keys_api::DataMinerKeySet;
use k8s_openapi::api::{core::v1::Secret, events::v1::Event};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use std::{future::Future, time::Duration};

/// Field manager the tests use for their manifests (as kubectl would).
pub const USER_MANAGER: &str = "kubectl";
pub const LABEL: &str = "GitHub catalog pipeline";

/// A DataMinerKeySet manifest from JSON (the way users write YAML).
pub fn keyset(value: serde_json::Value) -> DataMinerKeySet {
    serde_json::from_value(value).expect("valid DataMinerKeySet manifest")
}

/// An organization key set named `name` with the test label.
pub fn org_keyset(name: &str) -> serde_json::Value {
    org_keyset_with(name, LABEL, "skyline-demo")
}

/// The one key set manifest the suites and the benchmark start from: an organization key set
/// with two permissions.
pub fn org_keyset_with(name: &str, label: &str, organization: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "keys.dataminer.services/v1alpha1",
        "kind": "DataMinerKeySet",
        "metadata": { "name": name },
        "spec": {
            "label": label,
            "scope": { "organization": { "name": organization } },
            "permissions": ["RegisterCatalogItems", "AddDataMinerNodes"]
        }
    })
}

/// `kubectl apply --server-side` of a manifest.
pub async fn apply(
    api: &Api<DataMinerKeySet>,
    manifest: &serde_json::Value,
) -> kube::Result<DataMinerKeySet> {
    let name = manifest["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply(USER_MANAGER).force(),
        &Patch::Apply(manifest),
    )
    .await
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 30 s) until `name` no longer exists.
pub async fn gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(30, what, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await
}

/// The key set once its status satisfies `pred`.
pub async fn keyset_where(
    api: &Api<DataMinerKeySet>,
    name: &str,
    what: &str,
    pred: impl Fn(&DataMinerKeySet) -> bool,
) -> DataMinerKeySet {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = api.get_opt(name).await.ok().flatten();
        if let Some(ks) = current.as_ref().filter(|k| pred(k)) {
            return ks.clone();
        }
        if tokio::time::Instant::now() > deadline {
            let status = current.map(|k| serde_json::to_string_pretty(&k.status).unwrap());
            panic!("timed out after 30s waiting for {what} on {name}; status: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A hand edit: every finalizer of key set `name` removed. Returns the key set as stored.
pub async fn remove_finalizers(api: &Api<DataMinerKeySet>, name: &str) -> DataMinerKeySet {
    let patch = serde_json::json!({ "metadata": { "finalizers": null } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap()
}

pub fn condition<'a>(
    ks: &'a DataMinerKeySet,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    ks.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_ready(ks: &DataMinerKeySet) -> bool {
    condition(ks, "Ready").is_some_and(|c| c.status == "True")
        && ks.status.as_ref().and_then(|s| s.observed_generation) == ks.metadata.generation
}

pub fn revisions(ks: &DataMinerKeySet) -> (i64, i64) {
    let s = ks.status.as_ref().expect("status");
    (
        s.primary.as_ref().map_or(0, |k| k.revision),
        s.secondary.as_ref().map_or(0, |k| k.revision),
    )
}

/// Events about the object `name` in `ns`, as (reason, note, type, series count).
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String, i32)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut out: Vec<(String, String, String, i32)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
                e.type_.clone().unwrap_or_default(),
                e.series.as_ref().map_or(1, |s| s.count),
            )
        })
        .collect();
    out.sort();
    out
}

/// How often an Event with `reason` was reported for `name`.
pub async fn event_count(client: &Client, ns: &str, name: &str, reason: &str) -> i32 {
    events(client, ns, name)
        .await
        .iter()
        .filter(|e| e.0 == reason)
        .map(|e| e.3)
        .sum()
}

/// The note of the first Event with `reason` about `name`, once there is one (at most 10 s).
pub async fn event_note(client: &Client, ns: &str, name: &str, reason: &str) -> String {
    eventually(10, &format!("a {reason} Event"), || async {
        events(client, ns, name)
            .await
            .into_iter()
            .find(|ev| ev.0 == reason)
            .map(|ev| ev.1)
    })
    .await
}

/// Primary and secondary key values of a Secret (default data key names).
pub fn key_values(secret: &Secret) -> (String, String) {
    let data = secret.data.as_ref().expect("Secret data");
    let get = |k: &str| String::from_utf8(data.get(k).expect(k).0.clone()).unwrap();
    (get("primaryKey"), get("secondaryKey"))
}

/// Every key value a test has seen, to prove none of them leaked.
#[derive(Default)]
pub struct KeyLedger(Vec<String>);

impl KeyLedger {
    pub fn record(&mut self, secret: &Secret) -> (String, String) {
        let (p, s) = key_values(secret);
        self.0.push(p.clone());
        self.0.push(s.clone());
        (p, s)
    }

    pub fn record_value(&mut self, value: &str) {
        self.0.push(value.to_string());
    }

    /// Fails if any recorded key appears in the operator's log, an Event or a key set's
    /// status/spec in the namespace.
    pub async fn assert_no_leaks(&self, client: &Client, ns: &str, operator_log: &str) {
        assert!(!self.0.is_empty(), "the test recorded no keys to check");
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let events =
            serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items)
                .unwrap();
        let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), ns);
        let keysets =
            serde_json::to_string(&keysets.list(&ListParams::default()).await.unwrap().items)
                .unwrap();
        assert!(!operator_log.is_empty(), "no operator log captured");
        for key in &self.0 {
            assert!(
                !operator_log.contains(key.as_str()),
                "a key value appears in the operator log"
            );
            assert!(
                !events.contains(key.as_str()),
                "a key value appears in an Event"
            );
            assert!(
                !keysets.contains(key.as_str()),
                "a key value appears in a key set"
            );
        }
    }
}

/// A plain HTTP/1.1 GET on loopback: (status code, body).
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    http_get_opt(address, path)
        .await
        .unwrap_or_else(|| panic!("GET {path} from {address}"))
}

/// [`http_get`], `None` when the server does not answer. A chunked body (how `/metrics`
/// streams) is put back together.
pub async fn http_get_opt(address: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = &response[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Some((code, String::from_utf8_lossy(body).into_owned()));
    }
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?.trim(), 16).ok()?;
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(body.get(start..start + size)?);
        body = body.get(start + size + 2..)?;
    }
    Some((code, String::from_utf8(out).ok()?))
}

/// JSON log lines of the operator that record an action.
pub fn action_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "key set action")
        .collect()
}

/// Runs `cmd` with `input` on its stdin (none when `None`); the command must succeed. Returns
/// its output; a failure panics with its stdout and stderr.
pub fn run_checked(cmd: &mut std::process::Command, input: Option<&[u8]>) -> std::process::Output {
    use std::{io::Write, process::Stdio};
    let out = match input {
        Some(input) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
        None => cmd.output().unwrap(),
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One test's world: a fresh namespace, an operator watching it, clients, and the keys seen.
pub struct Env {
    pub client: Client,
    pub ns: String,
    pub keysets: Api<DataMinerKeySet>,
    pub secrets: Api<Secret>,
    pub operator: operator::Operator,
    pub ledger: KeyLedger,
}

impl Env {
    pub async fn new(cp: &ControlPlane, prefix: &str) -> Env {
        let ns = cp.namespace(prefix).await.unwrap();
        let client = cp.client().await.unwrap();
        let operator = if chart::as_chart() {
            chart::grant(cp, "t", &ns, None).await;
            chart::operator(cp, "t", &ns)
        } else {
            operator::Operator::start(cp, &ns)
        };
        Env {
            keysets: Api::namespaced(client.clone(), &ns),
            secrets: Api::namespaced(client.clone(), &ns),
            operator,
            client,
            ns,
            ledger: KeyLedger::default(),
        }
    }

    pub async fn ready(&self, name: &str) -> DataMinerKeySet {
        keyset_where(&self.keysets, name, "Ready=True", is_ready).await
    }

    /// Ends the test by proving no key value leaked.
    pub async fn finish(self) {
        if chart::as_chart() {
            // kube-rs logs the impersonation it applies: proof the restricted identity was used.
            assert!(self.operator.logs().contains("impersonating user"));
        }
        self.ledger
            .assert_no_leaks(&self.client, &self.ns, &self.operator.logs())
            .await;
    }
}
