//! The node's configuration files: containerd, the kubelet, the CNI bridge, the kubelet's
//! kubeconfig. Every path points into the node's state directory.

use std::path::Path;

use super::{API_PORT_IN_NODE, POD_GATEWAY, POD_SUBNET};

/// The image every Pod sandbox runs (built from the Kubernetes module's pause.c; never pulled).
pub const PAUSE_IMAGE: &str = "dmk.local/pause:node";

/// containerd 2.x, config version 3: CRI on a socket in `dir`, runc from Debian with cgroupfs,
/// overlayfs, the CNI plugins built beside it, and the sandbox image loaded locally.
/// `restrict_oom_score_adj`: lowering a score needs CAP_SYS_RESOURCE, which a sandboxed CI
/// machine lacks (every sandbox then fails with "can't get final child's PID from pipe").
pub fn containerd(dir: &Path, bin: &Path) -> String {
    let d = |f: &str| dir.join(f).display().to_string();
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{ttrpc}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
"#,
        root = d("containerd/root"),
        state = d("containerd/state"),
        socket = d("containerd.sock"),
        ttrpc = d("containerd-ttrpc.sock"),
        pause = PAUSE_IMAGE,
        cni_bin = bin.join("cni").display(),
        cni_conf = d("cni/net.d"),
    )
}

/// One bridge inside the node's network namespace; Pods reach the node's address (and through
/// the kit's relay, the API server) and each other, and nothing else exists to reach.
pub fn cni(dir: &Path) -> String {
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "dmk-node",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "dmkbr0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "dataDir": "{data}",
        "ranges": [[{{ "subnet": "{POD_SUBNET}", "gateway": "{POD_GATEWAY}" }}]],
        "routes": [{{ "dst": "0.0.0.0/0" }}]
      }}
    }}
  ]
}}
"#,
        data = dir.join("cni/ipam").display(),
    )
}

/// The kubelet: cgroupfs under a cgroup root of this node's own (removed at teardown), its API
/// on the namespace's loopback only, Pod logs in the state directory, and no disk-pressure
/// evictions (CI disks are shared and may be fuller than a real node's thresholds).
pub fn kubelet(dir: &Path, cp_dir: &Path, cgroup_root: &str) -> String {
    let d = |f: &str| dir.join(f).display().to_string();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{socket}
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
podLogsDir: {logs}
resolvConf: {resolv}
staticPodPath: ""
syncFrequency: 10s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
"#,
        ca = cp_dir.join("ca.crt").display(),
        socket = d("containerd.sock"),
        logs = d("pod-logs"),
        resolv = d("resolv.conf"),
    )
}

/// The kubelet's kubeconfig: the API server through the relay on the namespace's loopback, as
/// `system:node:<name>` (the Node authorizer's identity; `node.crt` in the control plane's PKI).
pub fn kubelet_kubeconfig(cp_dir: &Path) -> String {
    crate::binaries::kubeconfig_for(
        &format!("https://127.0.0.1:{API_PORT_IN_NODE}"),
        cp_dir,
        "node",
    )
}
