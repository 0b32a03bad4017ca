//! Dev launcher behind `make run`: starts the local control plane (or, with
//! `--prefer-kubeconfig`, uses the cluster in `KUBECONFIG` when it answers), installs the CRDs
//! and the chart's admission policies, prints the `export KUBECONFIG=...` line, then runs the
//! given command against it (or waits) until Ctrl-C / SIGTERM, and stops everything it started.
//!
//! With `--node`, the control plane also gets a real node (kubelet, containerd, runc; src/node/)
//! that loads each `--image` archive; the command then also sees `DMK_NODE_API_HOST` and
//! `DMK_NODE_API_PORT` (where Pods reach the API server), `DMK_NODE_DIR` (its logs) and
//! `DMK_NODE_CTR` (a `ctr` command line for its containerd). The node's teardown is checked:
//! anything it leaves on the host fails the run.
//!
//! Usage: dmk-control-plane [--prefer-kubeconfig] [--state-dir DIR] [--crds DIR] [--chart DIR] [--no-controller-manager] [--node [--image ARCHIVE]...] [-- CMD ARGS...]

use dmk_control_plane::{
    ControlPlane, Options,
    node::{API_PORT_IN_NODE, NODE_IP, Node},
};
use std::{io::IsTerminal, path::PathBuf, process::ExitCode};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: dmk-control-plane [--prefer-kubeconfig] [--state-dir DIR] [--crds DIR] [--chart DIR] [--no-controller-manager] [--node [--image ARCHIVE]...] [-- CMD ARGS...]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut opts = Options::default();
    let mut command: Vec<String> = Vec::new();
    let mut prefer_kubeconfig = false;
    let mut images: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--state-dir" => opts.state_dir = args.next().map(PathBuf::from),
            "--crds" => opts.crd_dir = args.next().map(PathBuf::from),
            "--chart" => opts.chart_dir = args.next().map(PathBuf::from),
            "--no-controller-manager" => opts.without_controller_manager = true,
            "--prefer-kubeconfig" => prefer_kubeconfig = true,
            "--node" => opts.node = true,
            "--image" => images.extend(args.next().map(PathBuf::from)),
            "--" => {
                command = args.by_ref().collect();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    if opts.node && prefer_kubeconfig {
        eprintln!("--node starts a local control plane; it cannot join the cluster in KUBECONFIG");
        return ExitCode::from(2);
    }
    let cp = match attach(prefer_kubeconfig, &opts).await {
        Some(cp) => cp,
        None => {
            eprintln!(
                "[control-plane] starting etcd, kube-apiserver and kube-controller-manager ..."
            );
            match ControlPlane::start(&opts).await {
                Ok(cp) => cp,
                Err(e) => {
                    eprintln!("[control-plane] failed to start: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    // A local control plane: its kubeconfig for the command and the user; an attached cluster
    // keeps the user's own.
    let kubeconfig = cp.kubeconfig_path().map(|p| p.to_path_buf());
    if let (Some(kubeconfig), Some(bin)) = (&kubeconfig, cp.bin_dir()) {
        eprintln!("[control-plane] ready. In another shell:");
        println!("export KUBECONFIG={}", kubeconfig.display());
        println!("export PATH={}:$PATH   # the pinned kubectl", bin.display());
    }
    let node = if opts.node {
        eprintln!("[node] starting containerd and kubelet (a cold build compiles them first) ...");
        match Node::start(&cp, &images).await {
            Ok(node) => {
                eprintln!("[node] Ready; logs in {}", node.dir().display());
                Some(node)
            }
            Err(e) => {
                eprintln!("[node] failed to start: {e}");
                cp.stop();
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    if opts.crd_dir.is_some() {
        eprintln!("[control-plane] CRDs installed; try: kubectl apply -f examples/");
    }
    if opts.chart_dir.is_some() {
        eprintln!(
            "[control-plane] the chart's admission policies installed as release \"{}\" (who asked, the Secret metadata deny-list, the finalizer); not the delete guard, which a Helm install adds",
            dmk_control_plane::POLICY_RELEASE
        );
    }
    if !command.is_empty() {
        let what = match kubeconfig {
            Some(_) => "it and the control plane",
            None => "it",
        };
        eprintln!(
            "[control-plane] running {} (Ctrl-C stops {what})",
            command[0]
        );
    }

    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let code = if command.is_empty() {
        eprintln!("[control-plane] press Ctrl-C to stop");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        ExitCode::SUCCESS
    } else {
        let mut cmd = tokio::process::Command::new(&command[0]);
        cmd.args(&command[1..]);
        if let Some(kubeconfig) = &kubeconfig {
            cmd.env("KUBECONFIG", kubeconfig);
        }
        if let Some(bin) = cp.bin_dir() {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", bin.display()));
        }
        if let Some(node) = &node {
            cmd.env("DMK_NODE_API_HOST", NODE_IP)
                .env("DMK_NODE_API_PORT", API_PORT_IN_NODE.to_string())
                .env("DMK_NODE_DIR", node.dir())
                .env(
                    "DMK_NODE_CTR",
                    format!(
                        "{} --address {} --namespace k8s.io",
                        node.bin_dir().join("ctr").display(),
                        node.containerd_socket().display()
                    ),
                );
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                eprintln!("[control-plane] cannot run {:?}: {e}", command[0]);
                cp.stop();
                return ExitCode::FAILURE;
            }
        };
        tokio::select! {
            status = child.wait() => match status {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            },
            // Ctrl-C in a terminal reaches the whole foreground process group, the command
            // included: give it time to finish its own shutdown while the API server is still
            // up. A SIGINT sent to this process alone is passed on as SIGTERM.
            _ = tokio::signal::ctrl_c() => {
                if tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await.is_err() {
                    if let Some(pid) = child.id() {
                        // SAFETY: plain syscall on our own child.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    }
                    let _ = child.wait().await;
                }
                ExitCode::SUCCESS
            },
            _ = term.recv() => {
                if let Some(pid) = child.id() {
                    // SAFETY: plain syscall on our own child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                let _ = child.wait().await;
                ExitCode::SUCCESS
            },
        }
    };
    let mut code = code;
    if let Some(node) = node {
        eprintln!("[node] stopping, and checking the host is as it was");
        match node.stop() {
            Ok(()) => eprintln!("[node] torn down; the host is as it was"),
            Err(e) => {
                eprintln!("[node] {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    eprintln!("[control-plane] stopping");
    cp.stop();
    code
}

/// With `--prefer-kubeconfig`, the cluster in `KUBECONFIG` when it answers within 5 s, with the
/// CRDs and the chart's admission policies installed; else `None` (start a local one).
async fn attach(prefer: bool, opts: &Options) -> Option<ControlPlane> {
    let path = std::env::var_os("KUBECONFIG").filter(|_| prefer)?;
    let shown = PathBuf::from(&path).display().to_string();
    let bare = Options::default();
    let probe = ControlPlane::existing(&bare);
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(_)) => {}
        _ => {
            eprintln!("[run] KUBECONFIG={shown} does not answer; starting a local control plane");
            return None;
        }
    }
    eprintln!("[run] using the cluster in KUBECONFIG={shown}");
    if opts.chart_dir.is_some() {
        // Said before it happens: these are cluster-wide and refuse requests when they fail.
        eprintln!(
            "[run] installing there: the DataMinerKeySet CRD and the chart's admission policies (release \"{release}\"), cluster-wide, with failurePolicy Fail: a key set request they cannot evaluate is refused. Remove them afterwards with\n  kubectl delete validatingadmissionpolicies,validatingadmissionpolicybindings,mutatingadmissionpolicies,mutatingadmissionpolicybindings,mutatingwebhookconfigurations -l app.kubernetes.io/instance={release}",
            release = dmk_control_plane::POLICY_RELEASE
        );
        if std::io::stdin().is_terminal() {
            eprintln!("[run] Ctrl-C within 10 s to stop here");
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
    }
    match ControlPlane::existing(opts).await {
        Ok(cp) => Some(cp),
        Err(e) => {
            eprintln!("[run] installing the CRDs and policies there failed: {e}");
            std::process::exit(1);
        }
    }
}
