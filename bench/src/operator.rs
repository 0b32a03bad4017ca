//! The operator under test: a child process against the same API server, watching only the
//! bench's namespace, with its metrics on a loopback port.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
};

use crate::{Args, Result};

pub struct Operator {
    child: Child,
    metrics: String,
}

impl Operator {
    pub async fn start(
        binary: &Path,
        kubeconfig: &Path,
        ns: &str,
        args: &Args,
    ) -> Result<Operator> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let metrics = format!("127.0.0.1:{port}");
        std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(args.out.join("operator.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args([
                &format!("--namespace={ns}"),
                &format!("--metrics-address={metrics}"),
                &format!("--leader-election-namespace={ns}"),
                &format!("--concurrency={}", args.concurrency),
                &format!("--resync-seconds={}", args.resync_seconds),
                "--log-level=warn",
            ])
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let op = Operator { child, metrics };
        let deadline = Instant::now() + Duration::from_secs(60);
        // Ready: watches synced and the Lease taken.
        while op.get("/readyz").await.map(|(code, _)| code) != Ok(200) {
            if Instant::now() > deadline {
                return Err(
                    "the operator did not become ready within 60s (see operator.log)".into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(op)
    }

    /// Reconciles so far, whatever their result.
    pub async fn reconciles(&self) -> Result<f64> {
        let (_, text) = self.get("/metrics").await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("dataminer_keys_reconciles_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum())
    }

    /// The process's peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let pid = self.child.id().ok_or("the operator has exited")?;
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM in /proc/<pid>/status".into())
    }

    /// CPU time the process has used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let pid = self.child.id().ok_or("the operator has exited")?;
        crate::cpu::seconds(pid).ok_or_else(|| "no CPU times in /proc/<pid>/stat".into())
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: a graceful stop releases the Lease.
            terminate(pid);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }

    async fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(&self.metrics)
            .await
            .map_err(|e| e.to_string())?;
        // HTTP/1.0: the body comes whole, not chunked (/metrics streams its text).
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.metrics);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }
}

/// SIGTERM through `kill(1)`: no libc binding needed for one signal.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
