//! The test node leaves the host as it found it: after a normal stop, and after its launcher was
//! SIGKILLed with Pods running (the next start's sweep cleans up). Kernel settings, links,
//! network namespaces, mounts, cgroups, iptables rules, directories and processes are compared
//! with a snapshot taken before. Needs root, runc and buildah, as the node does (make e2e).

use dmk_control_plane::{
    ControlPlane, Options,
    node::{Node, PAUSE_IMAGE, host},
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{
    Api, Client, Config,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A Pod that gives the node something to clean up: a sandbox (network namespace, veth on the
/// bridge, cgroups, a runc shim) and a Secret volume (a tmpfs the kubelet mounts).
async fn run_a_pod(client: Client) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "teardown" },
        "stringData": { "value": "not a key" }
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "teardown" },
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "pause",
                "image": PAUSE_IMAGE,
                "imagePullPolicy": "Never",
                "volumeMounts": [{ "name": "secret", "mountPath": "/secret" }]
            }],
            "volumes": [{ "name": "secret", "secret": { "secretName": "teardown" } }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let start = Instant::now();
    loop {
        let pod = pods.get("teardown").await.unwrap();
        let status = pod.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the Pod did not run: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn assert_same(before: &host::Snapshot, what: &str) {
    let diff = before.diff(&host::Snapshot::take());
    assert!(
        diff.is_empty(),
        "{what}: the host differs:\n  {}",
        diff.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_leaves_the_host_as_it_found_it_after_a_stop_and_after_a_kill() {
    let before = host::Snapshot::take();

    // A normal stop, with a Pod running.
    let cp = ControlPlane::start(&Options {
        node: true,
        ..Options::default()
    })
    .await
    .unwrap();
    let node = Node::start(&cp, &[]).await.unwrap();
    run_a_pod(cp.client().await.unwrap()).await;
    node.stop().unwrap();
    cp.stop();
    assert_same(&before, "after a stop");

    // The launcher SIGKILLed with a Pod running: nothing of its own teardown runs.
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_dmk-control-plane"))
        .args(["--node", "--", "sleep", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read to the end on a thread of its own: a pipe closed early would fail the launcher's
    // next line of output.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = launcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                let _ = tx.send(path.to_string());
            }
        }
    });
    let kubeconfig = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the launcher prints its kubeconfig");
    let mut stderr = BufReader::new(launcher.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    loop {
        let line = stderr
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the launcher ended before its node was Ready:\n{said:?}"));
        let ready = line.starts_with("[node] Ready");
        said.push(line);
        if ready {
            break;
        }
    }
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    run_a_pod(Client::try_from(config).unwrap()).await;
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(launcher.id() as libc::pid_t, libc::SIGKILL) };
    launcher.wait().unwrap();
    let left = before.diff(&host::Snapshot::take());
    assert!(
        !left.is_empty(),
        "a killed launcher leaves the node's remains (else this test proves nothing)"
    );
    let not_undone = host::sweep_abandoned();
    assert!(not_undone.is_empty(), "{not_undone:?}");
    assert_same(
        &before,
        "after a killed launcher and the next start's sweep",
    );
}
