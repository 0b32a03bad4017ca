//! The results: a table for the terminal and JSON for the record.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Result, apiserver::Requests};

#[derive(Serialize)]
pub struct Phase {
    pub operator_seconds: f64,
    pub bare_seconds: f64,
    /// The operator's requests in this phase (the bench's own subtracted).
    pub requests: Requests,
    /// Requests to resources the operator never uses (other components' in the same window).
    pub others: Requests,
    pub reconciles: f64,
    /// CPU seconds the operator process used in this phase.
    pub operator_cpu_seconds: f64,
    /// CPU seconds of the local control plane (kube-apiserver, etcd, kube-controller-manager) in
    /// the operator's phase and in the bare client's; 0 against a remote cluster.
    pub control_plane_cpu_seconds: f64,
    pub bare_control_plane_cpu_seconds: f64,
}

impl Phase {
    pub fn ratio(&self) -> f64 {
        self.operator_seconds / self.bare_seconds
    }
}

#[derive(Serialize)]
pub struct Results {
    pub machine: String,
    pub sets: usize,
    pub concurrency: usize,
    /// The bare client's workers (the operator's concurrency unless --bare-workers).
    pub bare_workers: usize,
    /// New key sets got the operator's finalizer at admission (the chart's policy).
    pub finalizer_policy: bool,
    pub create: Phase,
    pub rotate: Phase,
    pub rest_seconds: u64,
    pub resync_seconds: u64,
    /// The operator's requests at rest: all requests in the window minus `background`.
    pub rest_requests: Requests,
    /// Requests at rest to resources the operator never uses.
    pub rest_others: Requests,
    /// Requests in an equally long window before the operator started (the API server's own
    /// leases and endpoints, kube-controller-manager).
    pub background: Requests,
    pub rest_reconciles: f64,
    /// The operator's CPU over the rest window: the cost of its re-checks.
    pub rest_operator_cpu_seconds: f64,
    pub peak_rss_kib: u64,
    pub bare_requests_per_set: Requests,
    /// Time to act with the key sets at rest (after the rest window).
    pub latency: crate::latency::Results,
    pub restart: crate::handover::Restart,
    pub failover: crate::handover::Failover,
}

/// CPU model and count, memory: where the figures came from.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!("{cpus} x {model}, {} GiB", mem_kib / 1024 / 1024)
}

pub fn table(r: &Results) -> String {
    let n = r.sets as f64;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "machine: {}; {} key sets, concurrency {} (bare client: {} workers); finalizer {}",
        r.machine,
        r.sets,
        r.concurrency,
        r.bare_workers,
        if r.finalizer_policy {
            "added at admission (the chart's policy)"
        } else {
            "patched in by the operator (no policy)"
        }
    ));
    line(format!(
        "{:<28} {:>12} {:>12} {:>8}",
        "", "operator", "bare client", "ratio"
    ));
    for (name, p) in [
        ("all Ready after create", &r.create),
        ("all rotated", &r.rotate),
    ] {
        line(format!(
            "{name:<28} {:>11.2}s {:>11.2}s {:>7.2}x",
            p.operator_seconds,
            p.bare_seconds,
            p.ratio()
        ));
    }
    for (name, p) in [("create", &r.create), ("rotate", &r.rotate)] {
        line(format!(
            "{name}: {:.2} writes and {:.2} reads per key set, {:.2} reconciles per key set",
            p.requests.writes() / n,
            p.requests.reads() / n,
            p.reconciles / n,
        ));
        line(format!(
            "    CPU seconds: operator {:.1}, control plane {:.1} (bare client's phase: {:.1})",
            p.operator_cpu_seconds, p.control_plane_cpu_seconds, p.bare_control_plane_cpu_seconds,
        ));
        for (k, v) in &p.requests.0 {
            line(format!("    {k:<40} {:>8.2} per key set", v / n));
        }
        line(format!(
            "    (and {} requests to resources the operator never uses)",
            p.others.total()
        ));
    }
    line(format!(
        "at rest ({} s, resync every {} s, background of {} requests subtracted): {} requests ({} without Leases), {} reconciles, {:.1} CPU s",
        r.rest_seconds,
        r.resync_seconds,
        r.background.total(),
        r.rest_requests.total(),
        r.rest_requests.without_leases().total(),
        r.rest_reconciles,
        r.rest_operator_cpu_seconds
    ));
    for (k, v) in &r.rest_requests.0 {
        line(format!("    {k:<40} {v:>8}"));
    }
    line(format!(
        "    (and {} requests to resources the operator never uses)",
        r.rest_others.total()
    ));
    for (name, l) in [
        ("single regenerates", &r.latency.singles),
        ("a burst of regenerates", &r.latency.burst),
    ] {
        line(format!(
            "{name} ({}, at rest): new key in the Secret p50 {:.3}s p99 {:.3}s max {:.3}s; in status p50 {:.3}s p99 {:.3}s max {:.3}s",
            l.to_secret.count,
            l.to_secret.p50_seconds,
            l.to_secret.p99_seconds,
            l.to_secret.max_seconds,
            l.to_status.p50_seconds,
            l.to_status.p99_seconds,
            l.to_status.max_seconds,
        ));
    }
    line(format!(
        "restart (SIGTERM, start): settled after {:.2}s (every key set verified {:.2}s, the regenerate sent while down {:.2}s); {:.2} writes and {:.2} reads per key set",
        r.restart.settled_seconds,
        r.restart.verified_seconds,
        r.restart.regenerated_seconds,
        r.restart.writes_per_set,
        r.restart.reads_per_set,
    ));
    line(format!(
        "failover (2 replicas): the standby's first action {:.2}s after SIGKILL of the leader, {:.2}s after SIGTERM",
        r.failover.kill_first_action_seconds, r.failover.term_first_action_seconds,
    ));
    line(format!(
        "operator peak RSS: {:.1} MiB ({:.2} MiB per 1,000 key sets)",
        r.peak_rss_kib as f64 / 1024.0,
        r.peak_rss_kib as f64 / 1024.0 / n * 1000.0
    ));
    out
}

/// The request budget (issue 11): what the operator may cost per key set and at rest. Fractions allow for the odd retry after a conflict. A second Event
/// or status write for one change (a plan made from a cache that had not seen the last status
/// write) shows as writes over budget.
pub fn check(r: &Results) -> Result<()> {
    let n = r.sets as f64;
    let mut over = Vec::new();
    let rest = r.rest_requests.without_leases();
    if rest.total() > 0.0 {
        over.push(format!(
            "{} requests at rest besides the Lease: {:?}",
            rest.total(),
            rest.0
        ));
    }
    // The Secret, the status and the Event; and the finalizer patch where no policy adds it.
    let create_writes = if r.finalizer_policy { 3.1 } else { 4.1 };
    let budget = [
        (
            "writes per new key set",
            r.create.requests.writes() / n,
            create_writes,
        ),
        ("reads per new key set", r.create.requests.reads() / n, 0.1),
        // One reconcile makes the writes; the echoes of our own writes are skipped, and the few
        // that arrive before a write's answer make no call (2.5 per key set when they were not).
        ("reconciles per new key set", r.create.reconciles / n, 2.0),
        ("writes per rotation", r.rotate.requests.writes() / n, 3.1),
        ("reads per rotation", r.rotate.requests.reads() / n, 1.1),
    ];
    for (what, got, max) in budget {
        if got > max {
            over.push(format!("{what}: {got:.2} (budget {max})"));
        }
    }
    match over.is_empty() {
        true => Ok(()),
        false => Err(format!("over budget: {}", over.join("; "))),
    }
}

/// Writes `<out>/<unix time>.json` and `<out>/latest.json`.
pub fn write_json(r: &Results, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "results": r,
        "create_ratio": r.create.ratio(),
        "rotate_ratio": r.rotate.ratio(),
    }))
    .map_err(|e| e.to_string())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = out.join(format!("{stamp}.json"));
    std::fs::write(&path, &text).map_err(|e| e.to_string())?;
    std::fs::write(out.join("latest.json"), &text).map_err(|e| e.to_string())?;
    Ok(path)
}
