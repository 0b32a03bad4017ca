//! A real Kubernetes control plane for tests and local runs.
//!
//! [`ControlPlane::start`] runs etcd, kube-apiserver (RBAC on) and, unless disabled,
//! kube-controller-manager (garbage collector, namespace and ClusterRole aggregation
//! controllers) on free loopback ports, from the binaries that `build.sh` builds and caches.
//! [`ControlPlane::from_env`] does the same, or attaches to the cluster in `KUBECONFIG` when
//! `DMK_TEST_CLUSTER=kubeconfig`, so one integration suite runs on both.
//! [`shared`] hands every test of one test binary the same control plane. [`kit`] is what the
//! suites, the benchmark and `make run` share on top of it.

mod access;
mod binaries;
mod certs;
pub mod kit;
pub mod node;
mod policies;
mod process;
pub mod versions;

pub use binaries::{binaries, built_by};
pub use policies::RELEASE as POLICY_RELEASE;
pub use process::spawn as spawn_supervised;
pub use versions::{helm_capabilities, kubernetes_version};

use binaries::{free_port, kubeconfig_yaml, spawn_logged, tail};

use kube::config::Kubeconfig;
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

/// Environment variable that selects the cluster for the integration tests:
/// unset or `local` starts a control plane, `kubeconfig` uses the cluster in `KUBECONFIG`.
pub const CLUSTER_ENV: &str = "DMK_TEST_CLUSTER";
/// Environment variable naming a directory that already holds the binaries (skips `build.sh`).
pub const BIN_DIR_ENV: &str = "DMK_CONTROL_PLANE_BIN";
/// Field manager used for everything the harness applies.
pub const FIELD_MANAGER: &str = "dmk-control-plane";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the {what} certificate: {source}")]
    Certificate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("building a tool in tests/control-plane failed: {0}")]
    Build(String),
    #[error("{process} did not become ready within {seconds}s; last lines of {log}:\n{tail}")]
    NotReady {
        process: &'static str,
        seconds: u64,
        log: String,
        tail: String,
    },
    #[error("{process} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    Exited {
        process: &'static str,
        status: std::process::ExitStatus,
        log: String,
        tail: String,
    },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("Kubernetes API: {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("CRD {name} was not Established within {seconds}s")]
    CrdNotEstablished { name: String, seconds: u64 },
    #[error("{0}")]
    Yaml(String),
    #[error("test node: {0}")]
    Node(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// How to start or attach.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Apply every `*.yaml` CRD in this directory and wait until each is Established.
    pub crd_dir: Option<PathBuf>,
    /// Apply the admission policies this Helm chart renders (after the CRDs), as a Helm
    /// install would, minus the one that refuses deleting key sets that hold keys.
    pub chart_dir: Option<PathBuf>,
    /// Keep state in this directory (wiped first) instead of a temporary one that is removed at
    /// exit. `make run` uses this so the kubeconfig path is stable.
    pub state_dir: Option<PathBuf>,
    /// Do not start kube-controller-manager (no garbage collection, namespaces never finish
    /// terminating, aggregated ClusterRoles stay empty).
    pub without_controller_manager: bool,
    /// Run what Pods on a [`node::Node`] need: kube-scheduler, the Deployment, ReplicaSet,
    /// PodDisruptionBudget and service-account CA controllers, and the Node authorizer.
    pub node: bool,
}

/// A running (or attached) control plane.
pub struct ControlPlane {
    kubeconfig: Kubeconfig,
    kubeconfig_path: Option<PathBuf>,
    dir: Option<PathBuf>,
    children: Vec<Launched>,
    bin_dir: Option<PathBuf>,
}

/// A process of the control plane, with what it takes to start it again in place.
struct Launched {
    name: &'static str,
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    child: Child,
}

/// A process of a local control plane that tests can restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    ApiServer,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
        }
    }
}

impl ControlPlane {
    /// Starts a local control plane, or attaches to `KUBECONFIG` when `DMK_TEST_CLUSTER=kubeconfig`.
    pub async fn from_env(opts: &Options) -> Result<Self> {
        match std::env::var(CLUSTER_ENV).as_deref() {
            Ok("kubeconfig") => Self::existing(opts).await,
            Ok("local") | Err(_) => Self::start(opts).await,
            Ok(other) => Err(Error::Kubeconfig(format!(
                "{CLUSTER_ENV}={other} is not understood: use `local` (default) or `kubeconfig`"
            ))),
        }
    }

    /// Attaches to the cluster of the current kubeconfig (`KUBECONFIG` or `~/.kube/config`).
    pub async fn existing(opts: &Options) -> Result<Self> {
        let kubeconfig = Kubeconfig::read().map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Self::attach(kubeconfig, opts).await
    }

    /// Attaches to the cluster of the kubeconfig file at `path`.
    pub async fn existing_at(path: &Path, opts: &Options) -> Result<Self> {
        let kubeconfig =
            Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Self::attach(kubeconfig, opts).await
    }

    async fn attach(kubeconfig: Kubeconfig, opts: &Options) -> Result<Self> {
        let mut cp = ControlPlane {
            kubeconfig,
            kubeconfig_path: None,
            dir: None,
            children: Vec::new(),
            bin_dir: None,
        };
        cp.wait_ready(Duration::from_secs(30)).await?;
        if let Some(dir) = &opts.crd_dir {
            cp.install_crds(dir).await?;
        }
        if let Some(chart) = &opts.chart_dir {
            cp.install_admission_policies(chart).await?;
        }
        Ok(cp)
    }

    /// Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports.
    pub async fn start(opts: &Options) -> Result<Self> {
        let bin_dir = binaries()?;
        let dir = match &opts.state_dir {
            Some(dir) => {
                let _ = fs::remove_dir_all(dir);
                fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
                dir.clone()
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("dmk-control-plane-")
                    .tempdir()
                    .map_err(io("create a temporary directory"))?
                    .keep();
                process::remove_at_exit(dir.clone());
                dir
            }
        };
        let pki = certs::generate(&dir)?;
        let (etcd_port, etcd_peer_port, api_port) = (free_port()?, free_port()?, free_port()?);

        let mut cp = ControlPlane {
            kubeconfig: Kubeconfig::default(),
            kubeconfig_path: Some(dir.join("kubeconfig")),
            dir: Some(dir.clone()),
            children: Vec::new(),
            bin_dir: Some(bin_dir.clone()),
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let mut etcd = Command::new(bin_dir.join("etcd"));
        etcd.args([
            "--name=dmk",
            &format!("--data-dir={}", dir.join("etcd").display()),
            &format!("--listen-client-urls={etcd_url}"),
            &format!("--advertise-client-urls={etcd_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=dmk={peer_url}"),
            // Tests throw the data away: skipping fsync makes every write much cheaper.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        cp.launch("etcd", etcd, &dir)?;

        let d = |f: &str| dir.join(f).display().to_string();
        let mut apiserver = Command::new(bin_dir.join("kube-apiserver"));
        apiserver.args([
            &format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            // Kubernetes 1.37 refuses a loopback address in the `kubernetes` Service's
            // endpoints; nothing here reaches the API server through that Service.
            "--endpoint-reconciler-type=none",
            &format!("--secure-port={api_port}"),
            &format!("--cert-dir={}", d("certs")),
            &format!("--tls-cert-file={}", d("apiserver.crt")),
            &format!("--tls-private-key-file={}", d("apiserver.key")),
            &format!("--client-ca-file={}", d("ca.crt")),
            &format!(
                "--authorization-mode={}",
                if opts.node { "Node,RBAC" } else { "RBAC" }
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!("--service-account-key-file={}", d("sa.pub")),
            &format!("--service-account-signing-key-file={}", d("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--profiling=false",
        ]);
        apiserver.args(versions::apiserver_flags());
        cp.launch("kube-apiserver", apiserver, &dir)?;

        let kubeconfig_text = kubeconfig_yaml(api_port, &dir);
        for (name, content) in [
            ("admin.crt", &pki.admin_cert),
            ("admin.key", &pki.admin_key),
        ] {
            fs::write(dir.join(name), content).map_err(io(format!("write {name}")))?;
        }
        let kubeconfig_path = dir.join("kubeconfig");
        fs::write(&kubeconfig_path, &kubeconfig_text).map_err(io("write kubeconfig"))?;
        cp.kubeconfig = Kubeconfig::from_yaml(&kubeconfig_text)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;

        cp.wait_ready(Duration::from_secs(90)).await?;

        if !opts.without_controller_manager {
            let mut controllers =
                String::from("garbagecollector,namespace,clusterrole-aggregation,serviceaccount");
            if opts.node {
                // What a Deployment's Pods need: their ReplicaSet, the kube-root-ca.crt
                // ConfigMap every service-account token volume mounts, and the node lifecycle
                // controller, which lifts the not-ready taint a new Node is admitted with.
                controllers.push_str(
                    ",deployment,replicaset,disruption,root-ca-cert-publisher,nodelifecycle",
                );
            }
            let mut kcm = Command::new(bin_dir.join("kube-controller-manager"));
            kcm.args([
                &format!("--kubeconfig={}", kubeconfig_path.display()),
                &format!("--authentication-kubeconfig={}", kubeconfig_path.display()),
                &format!("--authorization-kubeconfig={}", kubeconfig_path.display()),
                &format!("--controllers={controllers}"),
                &format!("--root-ca-file={}", d("ca.crt")),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", free_port()?),
                "--profiling=false",
            ]);
            cp.launch("kube-controller-manager", kcm, &dir)?;
        }
        if opts.node {
            let node_bin = binaries::built_by("build-node.sh")?;
            let mut scheduler = Command::new(node_bin.join("kube-scheduler"));
            scheduler.args([
                &format!("--kubeconfig={}", kubeconfig_path.display()),
                &format!("--authentication-kubeconfig={}", kubeconfig_path.display()),
                &format!("--authorization-kubeconfig={}", kubeconfig_path.display()),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", free_port()?),
                "--profiling=false",
            ]);
            cp.launch("kube-scheduler", scheduler, &dir)?;
        }

        if let Some(crds) = &opts.crd_dir {
            cp.install_crds(crds).await?;
        }
        if let Some(chart) = &opts.chart_dir {
            cp.install_admission_policies(chart).await?;
        }
        Ok(cp)
    }

    fn launch(&mut self, name: &'static str, cmd: Command, dir: &Path) -> Result<()> {
        let program = PathBuf::from(cmd.get_program());
        let args = cmd.get_args().map(|a| a.to_os_string()).collect();
        let child = spawn_logged(name, cmd, dir)?;
        self.children.push(Launched {
            name,
            program,
            args,
            child,
        });
        Ok(())
    }

    /// Restarts one process in place (same ports, same data, log appended): SIGKILL, like a
    /// crash, when `kill`, else SIGTERM. Waits until the API server answers `/readyz` again.
    pub async fn restart(&mut self, component: Component, kill: bool) -> Result<()> {
        let dir = self
            .dir
            .clone()
            .ok_or_else(|| Error::Kubeconfig("an attached cluster cannot be restarted".into()))?;
        let name = component.name();
        let launched = self
            .children
            .iter_mut()
            .find(|l| l.name == name)
            .expect("every component is launched");
        let pid = launched.child.id();
        if kill {
            // SAFETY: plain syscall on a pid we started and have not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        // Reaps it (after SIGTERM and a grace period when not killed) and forgets its pid.
        process::stop(&[pid], Duration::from_secs(10));
        let mut cmd = Command::new(&launched.program);
        cmd.args(&launched.args);
        launched.child = spawn_logged(name, cmd, &dir)?;
        self.wait_ready(Duration::from_secs(90)).await
    }

    /// Fails with the log tail of the first process that has exited.
    fn check_children(&mut self) -> Result<()> {
        for Launched { child, name, .. } in self.children.iter_mut() {
            let name = *name;
            if let Ok(Some(status)) = child.try_wait() {
                let log = self
                    .dir
                    .as_ref()
                    .map(|d| d.join(format!("{name}.log")))
                    .unwrap_or_default();
                return Err(Error::Exited {
                    process: name,
                    status,
                    tail: tail(&log, 30),
                    log: log.display().to_string(),
                });
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < within {
            self.check_children()?;
            match self.client().await {
                Ok(client) => {
                    let req = http::Request::get("/readyz")
                        .body(Vec::new())
                        .expect("static request");
                    match client.request_text(req).await {
                        Ok(body) if body.trim() == "ok" => return Ok(()),
                        Ok(body) => last = body,
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let log = self
            .dir
            .as_ref()
            .map(|d| d.join("kube-apiserver.log"))
            .unwrap_or_default();
        Err(Error::NotReady {
            process: "kube-apiserver",
            seconds: within.as_secs(),
            tail: format!("{}\n(last /readyz answer: {last})", tail(&log, 30)),
            log: log.display().to_string(),
        })
    }

    /// Stops every process (SIGTERM, then SIGKILL) and removes a temporary state directory.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let pids: Vec<u32> = self.children.iter().rev().map(|l| l.child.id()).collect();
        // Stop in reverse start order so the API server never loses etcd under load.
        for pid in pids {
            process::stop(&[pid], Duration::from_secs(5));
        }
        self.children.clear();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Tests keep the shared control plane in a static that is never dropped; the atexit hook
        // covers it. A control plane owned by a function (make run) stops here.
        let _ = self.check_children();
        self.shutdown();
    }
}

/// The control plane shared by every test in one test binary, started on first use.
///
/// Tests run in parallel on their own Tokio runtimes, so only the processes and the kubeconfig
/// are shared; each test builds its own [`Client`] with [`ControlPlane::client`].
pub async fn shared(opts: &Options) -> Result<&'static ControlPlane> {
    static SHARED: tokio::sync::OnceCell<ControlPlane> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_try_init(|| ControlPlane::from_env(opts))
        .await
}
