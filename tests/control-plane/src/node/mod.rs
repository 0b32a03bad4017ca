//! A real node for a local control plane: kubelet and containerd (runc from Debian, the CNI
//! bridge plugin), built by `build-node.sh` at the control plane's Kubernetes release, running
//! Pods from images loaded from local OCI archives (nothing is pulled).
//!
//! The daemons run in a network namespace of their own (see [`network`]) and a private mount
//! namespace (`node/run-node.sh`); [`host`] undoes the rest and checks that the host is left as
//! it was found. Needs root, as a kubelet does. Start the control plane with
//! [`Options::node`](crate::Options::node) so it runs what Pods need (scheduler, the ReplicaSet
//! and Deployment controllers, the service-account CA publisher, the Node authorizer).

pub mod host;
mod network;

mod config;

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;
use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::{
    ControlPlane, Error, Result,
    binaries::{built_by, spawn_logged, tail},
    io, process,
};
pub use config::PAUSE_IMAGE;

/// The Node object's name.
pub const NODE_NAME: &str = "dmk-node";
/// The node's address, inside its network namespace only; the API server's certificate names it.
pub const NODE_IP: &str = "10.231.0.2";
/// Where the relay listens inside the namespace: Pods set `KUBERNETES_SERVICE_HOST` to
/// [`NODE_IP`] and `KUBERNETES_SERVICE_PORT` to this (there is no kube-proxy for the Service).
pub const API_PORT_IN_NODE: u16 = 6443;
const POD_SUBNET: &str = "10.231.1.0/24";
const POD_GATEWAY: &str = "10.231.1.1";

/// A running node. [`Node::stop`] tears it down and reports anything left on the host.
pub struct Node {
    record: host::Record,
    before: host::Snapshot,
    dir: PathBuf,
    bin: PathBuf,
    wrapper: Option<Child>,
    relay: Option<tokio::task::JoinHandle<()>>,
    torn_down: bool,
}

impl Node {
    /// Starts the node, loads `images` (OCI archives) and waits until the Node is Ready.
    pub async fn start(cp: &ControlPlane, images: &[PathBuf]) -> Result<Node> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Node(
                "a node needs root (namespaces, mounts, cgroups), as any kubelet does".into(),
            ));
        }
        let cp_dir = cp
            .state_dir()
            .ok_or_else(|| Error::Node("a node joins a local control plane only".into()))?
            .to_path_buf();
        let runc = Command::new("runc").arg("--version").output();
        if !matches!(&runc, Ok(o) if o.status.success()) {
            return Err(Error::Node(
                "runc is not installed: apt-get install runc (tests/control-plane/install-node-packages.sh)".into(),
            ));
        }
        let bin = built_by("build-node.sh")?;
        host::left_behind(host::sweep_abandoned())?;

        let before = host::Snapshot::take();
        let name = format!("dmk-node-{}", std::process::id());
        let record = host::Record::begin(&name, &name)?;
        let dir = cp_dir.join("node");
        let mut node = Node {
            record,
            before,
            dir: dir.clone(),
            bin: bin.clone(),
            wrapper: None,
            relay: None,
            torn_down: false,
        };
        // From here on a failure tears down what was made (Drop).
        node.record.make_cgroup_root()?;
        for sub in ["containerd", "cni/net.d", "cni/ipam", "pod-logs", "kubelet"] {
            fs::create_dir_all(dir.join(sub)).map_err(io(format!("create node/{sub}")))?;
        }
        let files = [
            ("containerd.toml", config::containerd(&dir, &bin)),
            ("cni/net.d/10-dmk-node.conflist", config::cni(&dir)),
            ("kubelet.yaml", config::kubelet(&dir, &cp_dir, &name)),
            ("kubelet.kubeconfig", config::kubelet_kubeconfig(&cp_dir)),
            // No cluster DNS: Pods get an empty resolver configuration.
            ("resolv.conf", String::new()),
        ];
        for (file, text) in files {
            fs::write(dir.join(file), text).map_err(io(format!("write node/{file}")))?;
        }

        network::create(&name)?;
        let upstream: SocketAddr = ([127, 0, 0, 1], cp.api_port()?).into();
        node.relay = Some(network::relay(&network::netns_path(&name), upstream).await?);

        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", network::netns_path(&name).display()))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
            .arg("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("node/run-node.sh"))
            .arg(&dir)
            .arg(&bin)
            .env("NODE_NAME", NODE_NAME)
            .env("NODE_IP", NODE_IP);
        let wrapper = spawn_logged("node", cmd, &dir)?;
        let pid = wrapper.id();
        node.wrapper = Some(wrapper);
        node.record_mount_namespace(pid).await?;
        node.wait_for_containerd().await?;
        let pause = bin.join("pause.oci.tar");
        for archive in std::iter::once(&pause).chain(images) {
            node.import(archive)?;
        }
        node.wait_ready(cp).await?;
        Ok(node)
    }

    /// The node's state directory: configuration, the daemons' logs, `pod-logs/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding kubelet, containerd, ctr and the CNI plugins.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// containerd's socket, for `ctr --address`.
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The daemons' mount namespace is the wrapper's once `unshare` has run; recorded so a
    /// later sweep finds the runc shims, which outlive containerd by design.
    async fn record_mount_namespace(&mut self, pid: u32) -> Result<()> {
        let ours =
            fs::metadata("/proc/self/ns/mnt").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            self.check_wrapper()?;
            let theirs = fs::metadata(format!("/proc/{pid}/ns/mnt"))
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            if let (Ok(o), Ok(t)) = (&ours, &theirs)
                && o != t
            {
                self.record.mount_ns = Some(*t);
                return self.record.save();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(self.failed("the node's mount namespace did not appear within 10s"))
    }

    async fn wait_for_containerd(&mut self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            self.check_wrapper()?;
            if self.containerd_socket().exists() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.failed("containerd did not open its socket within 20s"))
    }

    /// Loads an OCI archive into the namespace the kubelet's runtime uses, unpacked.
    pub fn import(&self, archive: &Path) -> Result<()> {
        let out = Command::new(self.bin.join("ctr"))
            .arg("--address")
            .arg(self.containerd_socket())
            .args(["--namespace", "k8s.io", "images", "import"])
            .arg(archive)
            .output()
            .map_err(io("run ctr images import"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Node(format!(
                "ctr images import {}: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    async fn wait_ready(&mut self, cp: &ControlPlane) -> Result<()> {
        let nodes: Api<NodeObject> = Api::all(cp.client().await?);
        let start = Instant::now();
        let mut last = String::from("not registered");
        while start.elapsed() < Duration::from_secs(120) {
            self.check_wrapper()?;
            if let Ok(Some(node)) = nodes.get_opt(NODE_NAME).await {
                let ready = node
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready");
                match ready {
                    Some(c) if c.status == "True" => return Ok(()),
                    Some(c) => last = c.message.unwrap_or(c.status),
                    None => last = "no Ready condition yet".into(),
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(self.failed(&format!(
            "node {NODE_NAME} was not Ready within 120s ({last})"
        )))
    }

    fn check_wrapper(&mut self) -> Result<()> {
        if let Some(w) = &mut self.wrapper
            && let Ok(Some(status)) = w.try_wait()
        {
            return Err(self.failed(&format!("the node's daemons exited ({status})")));
        }
        Ok(())
    }

    fn failed(&self, what: &str) -> Error {
        let mut text = what.to_string();
        for log in ["node.log", "containerd.log", "kubelet.log"] {
            let path = self.dir.join(log);
            text.push_str(&format!(
                "\n--- last lines of {}:\n{}",
                path.display(),
                tail(&path, 20)
            ));
        }
        Error::Node(text)
    }

    /// Stops the daemons, removes everything the node made, and fails if the host differs from
    /// what it was before the node started (kernel settings, links, namespaces, mounts,
    /// cgroups, iptables rules, directories, processes).
    pub fn stop(mut self) -> Result<()> {
        let left = self.teardown();
        host::left_behind(left)?;
        let diff = self.before.diff(&host::Snapshot::take());
        if diff.is_empty() {
            Ok(())
        } else {
            Err(Error::Node(format!(
                "the host differs after the node's teardown:\n  {}",
                diff.join("\n  ")
            )))
        }
    }

    fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        if let Some(w) = self.wrapper.take() {
            // SIGTERM: the kubelet stops, then containerd; SIGKILL after the grace period.
            process::stop(&[w.id()], Duration::from_secs(20));
        }
        self.record.undo()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let left = self.teardown();
        if !left.is_empty() {
            eprintln!("[node] teardown left behind: {left:?}");
        }
    }
}
