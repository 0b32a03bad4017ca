//! The operator binary, run as a real process against the test control plane (or any cluster),
//! restricted to one namespace (its Lease lives there too), logging JSON to a file the caller
//! can read. The suites start it with the defaults; the benchmark with [`Launch`].

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::ControlPlane;

/// How to start the operator: which binary, where it logs, with what.
pub struct Launch {
    /// Default: the workspace's debug build ([`super::workspace_binary`]).
    pub binary: PathBuf,
    /// Default: `operator.log` in a directory removed with the handle.
    pub log: Option<PathBuf>,
    pub namespace: String,
    /// Flags; each wins over the default of the same flag.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub kubeconfig: Option<PathBuf>,
}

impl Launch {
    pub fn new(namespace: &str) -> Launch {
        Launch {
            binary: super::workspace_binary("dataminer-keys-operator"),
            log: None,
            namespace: namespace.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            kubeconfig: None,
        }
    }
}

pub struct Operator {
    child: Option<Child>,
    binary: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
    kubeconfig: Option<PathBuf>,
    namespace: String,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

impl Operator {
    pub fn start(cp: &ControlPlane, namespace: &str) -> Operator {
        Self::start_with(cp, namespace, &[])
    }

    /// Starts with extra flags (they win over the defaults above them).
    pub fn start_with(cp: &ControlPlane, namespace: &str, extra_args: &[&str]) -> Operator {
        Self::start_with_env(cp, namespace, extra_args, &[])
    }

    /// Starts with extra flags and environment variables.
    pub fn start_with_env(
        cp: &ControlPlane,
        namespace: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Operator {
        Self::start_with_kubeconfig(
            namespace,
            extra_args,
            extra_env,
            cp.kubeconfig_path().map(PathBuf::from),
        )
    }

    /// Starts with extra flags, environment variables, and its own kubeconfig (for example one
    /// that reaches the API server through a proxy).
    pub fn start_with_kubeconfig(
        namespace: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
        kubeconfig: Option<PathBuf>,
    ) -> Operator {
        Self::launch(Launch {
            args: extra_args.iter().map(|a| a.to_string()).collect(),
            env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kubeconfig,
            ..Launch::new(namespace)
        })
    }

    pub fn launch(launch: Launch) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        let mut op = Operator {
            child: None,
            binary: launch.binary,
            log: launch
                .log
                .unwrap_or_else(|| dir.path().join("operator.log")),
            _dir: dir,
            kubeconfig: launch.kubeconfig,
            namespace: launch.namespace,
            extra_args: launch.args,
            extra_env: launch.env,
        };
        op.restart();
        op
    }

    /// Starts the process again (after `stop` or `kill`), appending to the same log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "operator already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(&self.binary);
        let defaults = [
            ("--namespace", self.namespace.as_str()),
            ("--leader-election-namespace", self.namespace.as_str()),
            ("--metrics-address", "127.0.0.1:0"),
            ("--log-format", "json"),
            ("--log-level", "info"),
        ];
        for (flag, value) in defaults {
            // An extra argument for the same flag replaces the default.
            if !self.extra_args.iter().any(|a| a.starts_with(flag)) {
                cmd.arg(format!("{flag}={value}"));
            }
        }
        cmd.args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        if let Some(k) = &self.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        self.child = Some(crate::spawn_supervised(cmd).expect("start the operator"));
    }

    /// Starts the process again with extra environment variables for this run only (a fault
    /// hook such as `DMK_CRASH_AFTER`).
    pub fn restart_once_with_env(&mut self, env: &[(&str, &str)]) {
        let saved = self.extra_env.clone();
        self.extra_env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.restart();
        self.extra_env = saved;
    }

    /// A real crash between two writes: restarts the process with `DMK_CRASH_AFTER=secret-write`,
    /// lets `act` trigger a Secret write, and waits for the abort that follows it. The process
    /// stays down; the caller restarts it (after looking at what the crash left, if it likes).
    pub async fn crash_after_secret_write(&mut self, act: impl std::future::Future<Output = ()>) {
        self.stop();
        self.restart_once_with_env(&[("DMK_CRASH_AFTER", "secret-write")]);
        act.await;
        let status = self.wait_exit(30);
        assert!(!status.success(), "the crash hook aborts: {status}");
    }

    /// Waits for the process to exit by itself (a crash hook), at most `secs` seconds.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().expect("operator running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the operator did not exit within {secs}s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as Kubernetes stops a pod; waits for a clean exit.
    pub fn stop(&mut self) {
        self.stop_within(20);
    }

    /// SIGTERM; the process must exit cleanly within `secs` seconds.
    pub fn stop_within(&mut self, secs: u64) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc_kill(child.id() as i32, 15) };
            let deadline = std::time::Instant::now() + Duration::from_secs(secs);
            while std::time::Instant::now() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "a SIGTERM stop exits cleanly, got {status}"
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the operator did not stop within {secs}s of SIGTERM:\n{}",
                self.logs()
            );
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The address of /healthz, /readyz and /metrics: the flag's when it names a port, else the
    /// one the latest start logged; `None` before it has.
    fn address(&self) -> Option<String> {
        let fixed = self
            .extra_args
            .iter()
            .find_map(|a| a.strip_prefix("--metrics-address="))
            .filter(|a| !a.ends_with(":0"));
        if let Some(address) = fixed {
            return Some(address.to_string());
        }
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .rfind(|v| v["message"] == "serving /healthz, /readyz, /metrics")
            .and_then(|v| v["address"].as_str().map(str::to_string))
    }

    /// The address of /healthz, /readyz and /metrics (waits for the start-up log line).
    pub async fn http_address(&self) -> String {
        super::eventually(20, "the operator's HTTP address in its log", || async {
            self.address()
        })
        .await
    }

    /// This process's /metrics text, or `None` while it does not answer yet (just restarted).
    pub async fn metrics_text(&self) -> Option<String> {
        let address = self.address()?;
        super::http_get_opt(&address, "/metrics")
            .await
            .map(|(_, body)| body)
    }

    /// The sum of a counter family on this process's /metrics, or `None` while it does not
    /// answer yet (just restarted).
    pub async fn metric_sum(&self, family: &str) -> Option<f64> {
        let text = self.metrics_text().await?;
        let prefix = format!("{family}{{");
        Some(
            text.lines()
                .filter(|l| l.starts_with(&prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Waits until this process (the latest start) has finished at least `n` reconciles: a test
    /// that then asserts "nothing changed" knows the operator really looked.
    pub async fn reconciled(&self, n: u64) {
        super::eventually(30, "the operator to reconcile", || async {
            self.metric_sum("dataminer_keys_reconciles_total")
                .await
                .filter(|&sum| sum >= n as f64)
                .map(|_| ())
        })
        .await
    }

    /// Waits at most `secs` seconds for /readyz to answer 200 (watches synced, Lease taken).
    pub async fn wait_ready(&self, secs: u64) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let address = self.address();
            if let Some(address) = address
                && super::http_get_opt(&address, "/readyz").await.map(|r| r.0) == Some(200)
            {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the operator did not become ready within {secs}s (log: {})",
                    self.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reconciles this process has finished so far, whatever their result.
    pub async fn reconciles(&self) -> Option<f64> {
        self.metric_sum("dataminer_keys_reconciles_total").await
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process's peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time the process has used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        super::cpu::seconds(self.pid()?)
    }

    /// Sends a signal to the running process (SIGSTOP 19 freezes it, SIGCONT 18 resumes it).
    pub fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("operator running");
        unsafe { libc_kill(child.id() as i32, sig) };
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
