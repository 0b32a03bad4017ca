//! The harness must never leave an etcd or kube-apiserver behind, not even when a test panics
//! or the test binary is killed. Each case runs this test binary again as a child that starts a
//! control plane and then dies; the parent checks that the grandchildren died with it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

const CHILD_ENV: &str = "DMK_CLEANUP_CHILD";

#[tokio::test]
#[ignore = "only run as a child of the tests below"]
async fn child_starts_a_control_plane_then_dies() {
    let spec = std::env::var(CHILD_ENV).expect("run by the parent tests with DMK_CLEANUP_CHILD");
    let (mode, report) = spec.split_once(':').expect("mode:path");
    let opts = dmk_control_plane::Options {
        without_controller_manager: true,
        ..Default::default()
    };
    let cp = dmk_control_plane::shared(&opts)
        .await
        .expect("control plane");
    let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
    let dir = cp
        .state_dir()
        .expect("local control plane")
        .display()
        .to_string();
    std::fs::write(report, format!("{}\n{dir}\n", pids.join(" "))).unwrap();
    match mode {
        "panic" => panic!("deliberate panic with a running control plane"),
        "abort" => std::process::abort(),
        other => panic!("unknown mode {other}"),
    }
}

/// Runs the child in `mode`; returns the pids it started and its state directory.
fn run_child(mode: &str) -> (Vec<i32>, PathBuf) {
    let report = tempfile::NamedTempFile::new().unwrap();
    // Output is captured: the child's own "test result: FAILED" is expected, not ours.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_starts_a_control_plane_then_dies",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", report.path().display()))
        .env_remove(dmk_control_plane::CLUSTER_ENV)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the child must die ({mode}), got {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut lines = text.lines();
    let pids: Vec<i32> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        pids.len(),
        2,
        "etcd and kube-apiserver were started: {text}"
    );
    (pids, PathBuf::from(lines.next().unwrap()))
}

/// A pid is gone when /proc no longer lists it, or lists a zombie waiting for init to reap it.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn assert_all_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !pids.iter().all(|&p| gone(p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| !gone(p)).collect();
    assert!(
        alive.is_empty(),
        "processes outlived the test binary: {alive:?}"
    );
}

#[test]
fn processes_and_state_are_removed_when_a_test_panics() {
    let (pids, dir) = run_child("panic");
    assert_all_gone(&pids);
    assert!(
        !Path::new(&dir).exists(),
        "{} was left behind",
        dir.display()
    );
}

#[test]
fn processes_die_when_the_test_binary_is_killed() {
    let (pids, dir) = run_child("abort");
    // abort() runs no exit hooks: only the kernel's parent-death signal can stop them.
    assert_all_gone(&pids);
    let _ = std::fs::remove_dir_all(dir);
}
