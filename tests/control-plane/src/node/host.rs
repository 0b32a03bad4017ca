//! What a node changes on the host, and how it is all undone.
//!
//! The kubelet and containerd run in a network namespace and a private mount namespace of their
//! own, so their routes, bridge, iptables chains and mounts vanish with those namespaces. What
//! is left is global and undone here: the kernel settings the kubelet writes, the cgroups under
//! the node's cgroup root, processes that outlive the daemons (runc shims, containers), the
//! namespace's name and the mount points made for the private tmpfs mounts. A record of each
//! node is kept under /run, so a node whose launcher was killed is cleaned up by the next start.

use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use crate::{Error, Result, io};

/// The kernel settings the kubelet sets at start-up (pkg/kubelet/cm, setupKernelTunables).
pub const SYSCTLS: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// Mount points node/run-node.sh covers with a private tmpfs (keep the two lists equal).
pub const SCRATCH_DIRS: [&str; 8] = [
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
    "/etc/cni",
    "/opt/cni",
];

const RECORDS: &str = "/run/dataminer-keys-node";

/// One node's undo list, written before the node changes anything.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// The launcher; a record whose launcher is gone belongs to a node nobody tore down.
    pub pid: u32,
    pub sysctls: Vec<(String, String)>,
    pub created_dirs: Vec<PathBuf>,
    pub cgroup_root: String,
    /// The daemons' mount namespace (inode of /proc/PID/ns/mnt), once known.
    pub mount_ns: Option<u64>,
    /// `ip netns add` makes /run/netns a mount point of its own and leaves it so.
    pub netns_dir_was_mounted: bool,
}

impl Record {
    pub fn begin(name: &str, cgroup_root: &str) -> Result<Record> {
        let sysctls = SYSCTLS
            .iter()
            .map(|k| Ok((k.to_string(), read_sysctl(k)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut record = Record {
            name: name.to_string(),
            pid: std::process::id(),
            sysctls,
            created_dirs: Vec::new(),
            cgroup_root: cgroup_root.to_string(),
            mount_ns: None,
            netns_dir_was_mounted: is_mount_point("/run/netns"),
        };
        record.save()?;
        for dir in SCRATCH_DIRS {
            let mut missing = Vec::new();
            let mut p = Path::new(dir);
            while !p.exists() {
                missing.push(p.to_path_buf());
                p = p.parent().expect("an absolute path ends at /");
            }
            fs::create_dir_all(dir).map_err(io(format!("create {dir}")))?;
            // Deepest first, so removal can rmdir in order.
            record.created_dirs.extend(missing);
            record.save()?;
        }
        Ok(record)
    }

    /// The kubelet wants its cgroup root to exist in every hierarchy. A new cpuset cgroup starts
    /// with no CPUs and no memory nodes, where nothing can run: it gets its parent's.
    pub fn make_cgroup_root(&self) -> Result<()> {
        for hierarchy in hierarchies() {
            let dir = hierarchy.join(&self.cgroup_root);
            fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = fs::read_to_string(hierarchy.join(file)) {
                    fs::write(dir.join(file), value.trim())
                        .map_err(io(format!("write {}", dir.join(file).display())))?;
                }
            }
        }
        Ok(())
    }

    pub fn save(&self) -> Result<()> {
        fs::create_dir_all(RECORDS).map_err(io(format!("create {RECORDS}")))?;
        let text = serde_json::to_string_pretty(self).expect("a record serializes");
        fs::write(self.path(), text).map_err(io(format!("write {}", self.path().display())))
    }

    fn path(&self) -> PathBuf {
        Path::new(RECORDS).join(format!("{}.json", self.name))
    }

    /// Undoes everything, in an order where each step can succeed: processes first (they hold
    /// cgroups and mounts), then cgroups, the namespace, kernel settings, directories.
    /// Returns what could not be undone.
    pub fn undo(&self) -> Vec<String> {
        let mut left = Vec::new();
        kill_node_processes(self, Duration::from_secs(15), &mut left);
        for hierarchy in hierarchies() {
            let root = hierarchy.join(&self.cgroup_root);
            if root.exists()
                && let Err(e) = remove_cgroup_tree(&root)
            {
                left.push(format!("cgroup {}: {e}", root.display()));
            }
        }
        if Path::new("/run/netns").join(&self.name).exists() {
            let out = Command::new("ip")
                .args(["netns", "delete", &self.name])
                .output();
            if !matches!(&out, Ok(o) if o.status.success()) {
                left.push(format!("ip netns delete {}: {out:?}", self.name));
            }
        }
        if !self.netns_dir_was_mounted
            && is_mount_point("/run/netns")
            && let Err(e) = umount("/run/netns")
        {
            left.push(format!("umount /run/netns: {e}"));
        }
        for (key, value) in &self.sysctls {
            if let Err(e) = write_sysctl(key, value) {
                left.push(format!("sysctl {key}={value}: {e}"));
            }
        }
        for dir in &self.created_dirs {
            if let Err(e) = fs::remove_dir(dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                left.push(format!("rmdir {}: {e}", dir.display()));
            }
        }
        if left.is_empty() {
            let _ = fs::remove_file(self.path());
            let _ = fs::remove_dir(RECORDS);
        }
        left
    }
}

/// Tears down every node whose launcher is gone (killed before its own teardown ran).
pub fn sweep_abandoned() -> Vec<String> {
    let Ok(entries) = fs::read_dir(RECORDS) else {
        return Vec::new();
    };
    let mut left = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Record>(&text) else {
            continue;
        };
        if Path::new(&format!("/proc/{}", record.pid)).exists() {
            continue;
        }
        eprintln!(
            "[node] cleaning up {} (its launcher, pid {}, is gone)",
            record.name, record.pid
        );
        left.extend(record.undo());
    }
    left
}

fn is_mount_point(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(4) == Some(path)))
        .unwrap_or(false)
}

fn umount(path: &str) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path).expect("no NUL in a path");
    // SAFETY: a valid C string; umount2 has no other preconditions.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn read_sysctl(key: &str) -> Result<String> {
    let path = Path::new("/proc/sys").join(key);
    fs::read_to_string(&path)
        .map(|v| v.trim().to_string())
        .map_err(io(format!("read {}", path.display())))
}

fn write_sysctl(key: &str, value: &str) -> std::io::Result<()> {
    if read_sysctl(key).ok().as_deref() == Some(value) {
        return Ok(());
    }
    fs::write(Path::new("/proc/sys").join(key), value)
}

/// Every mounted cgroup hierarchy (v1 controllers, the named systemd one, the unified one).
fn hierarchies() -> Vec<PathBuf> {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .collect()
}

fn cgroup_pids(root: &Path, pids: &mut BTreeSet<u32>) {
    if let Ok(text) = fs::read_to_string(root.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(root) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                cgroup_pids(&e.path(), pids);
            }
        }
    }
}

fn mount_ns_of(pid: u32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| m.ino())
}

/// The node's processes: those in its mount namespace (the daemons, the runc shims) and those
/// in its cgroups (the Pods' containers, which have mount namespaces of their own).
fn node_processes(record: &Record) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for hierarchy in hierarchies() {
        cgroup_pids(&hierarchy.join(&record.cgroup_root), &mut pids);
    }
    if let Some(ns) = record.mount_ns
        && let Ok(entries) = fs::read_dir("/proc")
    {
        for e in entries.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && mount_ns_of(pid) == Some(ns)
            {
                pids.insert(pid);
            }
        }
    }
    pids.remove(&std::process::id());
    pids
}

fn kill_node_processes(record: &Record, within: Duration, left: &mut Vec<String>) {
    let start = Instant::now();
    let mut killed = BTreeSet::new();
    loop {
        let pids = node_processes(record);
        // Done when none is left, and every one killed is gone from /proc: a killed process is
        // a zombie until its parent (or init) reaps it, out of its cgroup but still there.
        if pids.is_empty()
            && killed
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        {
            return;
        }
        if start.elapsed() > within {
            left.push(format!(
                "processes still running: {pids:?} (killed: {killed:?})"
            ));
            return;
        }
        for pid in pids {
            // SAFETY: plain syscall; a pid that ended meanwhile gets ESRCH.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// rmdir from the leaves up; a cgroup with no processes and no children can always go.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_dir() {
            remove_cgroup_tree(&e.path())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            // Busy for a moment after its last process was killed.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a node could leave behind, read from the host: compared before a node starts and after
/// it is torn down.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    lines: BTreeSet<String>,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut lines = BTreeSet::new();
        for key in SYSCTLS {
            lines.insert(format!(
                "sysctl {key} = {}",
                read_sysctl(key).unwrap_or_default()
            ));
        }
        for dir in SCRATCH_DIRS {
            lines.insert(format!("{dir} exists: {}", Path::new(dir).exists()));
        }
        if let Ok(entries) = fs::read_dir("/run/netns") {
            for e in entries.flatten() {
                lines.insert(format!("netns {}", e.file_name().to_string_lossy()));
            }
        }
        if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                let name = l.split(':').nth(1).unwrap_or("").trim().to_string();
                lines.insert(format!("link {name}"));
            }
        }
        if let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") {
            for l in mounts.lines() {
                if let Some(point) = l.split_whitespace().nth(4) {
                    lines.insert(format!("mount {point}"));
                }
            }
        }
        for hierarchy in hierarchies() {
            if let Ok(entries) = fs::read_dir(&hierarchy) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        lines.insert(format!(
                            "cgroup {}/{}",
                            hierarchy.display(),
                            e.file_name().to_string_lossy()
                        ));
                    }
                }
            }
        }
        for table in ["filter", "nat", "mangle"] {
            if let Ok(out) = Command::new("iptables-save").args(["-t", table]).output() {
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    // Counters and the header's timestamp change on their own.
                    if !l.starts_with('#') && !l.starts_with(':') {
                        lines.insert(format!("iptables {table} {l}"));
                    } else if let Some(chain) = l.strip_prefix(':') {
                        let chain = chain.split_whitespace().next().unwrap_or("");
                        lines.insert(format!("iptables {table} chain {chain}"));
                    }
                }
            }
        }
        for name in ["containerd", "kubelet", "containerd-shim", "pause"] {
            lines.insert(format!("processes named {name}: {}", count_named(name)));
        }
        Snapshot { lines }
    }

    /// Lines only in `self` (`-`) or only in `after` (`+`).
    pub fn diff(&self, after: &Snapshot) -> Vec<String> {
        let gone = self
            .lines
            .difference(&after.lines)
            .map(|l| format!("- {l}"));
        let new = after
            .lines
            .difference(&self.lines)
            .map(|l| format!("+ {l}"));
        gone.chain(new).collect()
    }
}

fn count_named(name: &str) -> usize {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .filter(|e| {
            fs::read_to_string(e.path().join("comm"))
                .map(|c| c.trim().starts_with(name))
                .unwrap_or(false)
        })
        .count()
}

/// The error for a teardown that left something behind.
pub fn left_behind(what: Vec<String>) -> Result<()> {
    if what.is_empty() {
        Ok(())
    } else {
        Err(Error::Node(format!(
            "the node's teardown left this behind:\n  {}",
            what.join("\n  ")
        )))
    }
}
