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

// A CRD older than the operator's (Helm never upgrades a chart's crds/): refused at start-up, with
// what to apply. Once the current CRD is applied, the same operator starts.
#[tokio::test]
async fn an_older_crd_is_refused_until_the_current_one_is_applied() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    if std::env::var(dmk_control_plane::CLUSTER_ENV).as_deref() == Ok("kubeconfig") {
        return; // the suite does not replace the CRD of an existing cluster
    }
    let cp = dmk_control_plane::ControlPlane::start(&Default::default())
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client().await.unwrap());
    let apply = |crd: CustomResourceDefinition| {
        let crds = crds.clone();
        async move {
            let name = crd.metadata.name.clone().unwrap();
            crds.patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
            // Established before the operator lists key sets.
            for _ in 0..100 {
                let got = crds.get(&name).await.unwrap();
                if got
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("CRD not established");
        }
    };
    // As 0.1.0 shipped it: no revision.
    let mut older = dataminer_keys_operator::api::crd();
    older.metadata.annotations = None;
    apply(older).await;
    let (code, stderr) = run(cp.kubeconfig_path().unwrap());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the installed DataMinerKeySet CRD is without a revision, older than this operator's (revision 1): apply this release's CRD first"),
        "{stderr}"
    );

    apply(dataminer_keys_operator::api::crd()).await;
    // A metrics address in use (a second `make run`): the error says what to pass instead.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dataminer-keys-operator"))
        .args(["--leader-elect=false", "--metrics-address"])
        .arg(taken.local_addr().unwrap().to_string())
        .env("KUBECONFIG", cp.kubeconfig_path().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pass another with --metrics-address")
            && stderr.contains("RUN_ARGS='--metrics-address 127.0.0.1:0'"),
        "{stderr}"
    );
    drop(taken);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_dataminer-keys-operator"))
        .args(["--metrics-address", "127.0.0.1:0", "--leader-elect=false"])
        .env("KUBECONFIG", cp.kubeconfig_path().unwrap())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(log.path()).unwrap();
        if text.contains("watches synced; ready") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = operator.kill();
    let _ = operator.wait();
    assert!(text.contains("watches synced; ready"), "{text}");
    // Written to a file, the log carries no terminal colour codes.
    assert!(
        !text.contains('\x1b'),
        "colour codes in a log file: {text:?}"
    );
    cp.stop();
}
