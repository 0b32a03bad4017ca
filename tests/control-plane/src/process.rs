//! Child processes that cannot outlive us.
//!
//! Every etcd / kube-apiserver / kube-controller-manager is started from one long-lived
//! thread with `PR_SET_PDEATHSIG=SIGKILL`, so the kernel kills it when this process dies for
//! any reason (a panic, `exit`, SIGKILL of the test binary). The death signal follows the
//! *thread* that forked, which is why spawning happens on a thread that never ends rather than
//! on whichever test thread got there first. An `atexit` hook additionally stops them gracefully
//! and removes their directories on a normal exit.

use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command},
    sync::{Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("control-plane-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop runs until the process ends.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the control-plane spawner thread");
        // SAFETY: atexit takes a plain extern "C" fn without captured state.
        unsafe { libc::atexit(cleanup_at_exit) };
        Mutex::new(tx)
    })
}

/// What must be stopped and removed when the process exits.
#[derive(Default)]
struct Registry {
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Starts `cmd` so that it dies with this process (tests use it for the operator too).
pub fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    // SAFETY: prctl and setpgid are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A process group of its own: a terminal's Ctrl-C reaches the program under test
            // (which may still need the API server to shut down cleanly), not etcd and the
            // API server, which we stop ourselves, in order, afterwards.
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .expect("spawner lock")
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("control-plane spawner thread is gone"))?;
    let child = rx
        .recv()
        .map_err(|_| std::io::Error::other("control-plane spawner thread is gone"))??;
    registry()
        .lock()
        .expect("registry lock")
        .pids
        .push(child.id());
    Ok(child)
}

/// Removes `dir` at process exit (after the processes using it are stopped).
pub fn remove_at_exit(dir: PathBuf) {
    registry().lock().expect("registry lock").dirs.push(dir);
}

/// Stops the given processes: SIGTERM, then SIGKILL after `grace`. Reaps them.
pub fn stop(pids: &[u32], grace: Duration) {
    for &pid in pids {
        // SAFETY: plain syscall on a pid we started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    let mut alive: Vec<u32> = pids.to_vec();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|&pid| {
            let mut status = 0;
            // SAFETY: WNOHANG wait on our own child; returns 0 while it still runs.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            r == 0
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in alive {
        // SAFETY: as above.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }
    let mut reg = registry().lock().expect("registry lock");
    reg.pids.retain(|p| !pids.contains(p));
}

extern "C" fn cleanup_at_exit() {
    // Never panic across the FFI boundary: a poisoned lock just means nothing to clean.
    let Ok(reg) = registry().lock() else { return };
    let pids = reg.pids.clone();
    let dirs = reg.dirs.clone();
    drop(reg);
    stop(&pids, Duration::from_secs(3));
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}
