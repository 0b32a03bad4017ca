//! The operator refuses to start with a message that says what is wrong and what to do.
//! This binary's control plane has no CRDs installed.

use std::process::Command;

fn run(kubeconfig: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dataminer-keys-operator"))
        .args(["--metrics-address", "127.0.0.1:0", "--leader-elect=false"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn without_the_crd_it_says_how_to_install_it() {
    if std::env::var(dmk_control_plane::CLUSTER_ENV).as_deref() == Ok("kubeconfig") {
        return; // an existing cluster has the CRD installed by the suite
    }
    let cp = dmk_control_plane::shared(&Default::default())
        .await
        .unwrap();
    let (code, stderr) = run(cp.kubeconfig_path().unwrap());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "the DataMinerKeySet CRD is not installed: run `kubectl apply --server-side -f crds/`"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_named() {
    // A kubeconfig pointing at a loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let (code, stderr) = run(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach the Kubernetes API server"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_plugin_says_when_the_crd_is_missing() {
    if std::env::var(dmk_control_plane::CLUSTER_ENV).as_deref() == Ok("kubeconfig") {
        return;
    }
    let cp = dmk_control_plane::shared(&Default::default())
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-dmkeys"))
        .arg(format!(
            "--kubeconfig={}",
            cp.kubeconfig_path().unwrap().display()
        ))
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("the DataMinerKeySet CRD is not installed"),
        "{stderr}"
    );
}
