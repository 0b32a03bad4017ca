//! The control plane's binaries (built and cached by build.sh) and what starting them needs:
//! logged child processes, free ports, the admin kubeconfig.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::{BIN_DIR_ENV, Error, Result, io, process};

/// Returns the binary directory, building (or finding cached) binaries with `build.sh`.
pub fn binaries() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var(BIN_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    built_by("build.sh")
}

/// Runs one of this directory's cached build scripts (`build.sh`, `build-krew.sh`, ...) and
/// returns the path it prints last: the cached binary or directory.
pub fn built_by(script: &str) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(io(format!("run {}", script.display())))?;
    if !out.status.success() {
        return Err(Error::Build(format!(
            "{} exited with {}",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .ok_or_else(|| Error::Build(format!("{} printed no path", script.display())))?;
    Ok(PathBuf::from(last.trim()))
}

/// Starts `cmd` supervised, appending its output to `<dir>/<name>.log`.
pub(crate) fn spawn_logged(name: &'static str, mut cmd: Command, dir: &Path) -> Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .map_err(io(format!("open {name}.log")))?;
    let log2 = log.try_clone().map_err(io("clone log handle"))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    process::spawn(cmd).map_err(io(format!("start {name}")))
}

pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    Ok(l.local_addr().map_err(io("find a free port"))?.port())
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The admin kubeconfig of a local control plane whose PKI is in `dir`.
pub(crate) fn kubeconfig_yaml(port: u16, dir: &Path) -> String {
    kubeconfig_for(&format!("https://127.0.0.1:{port}"), dir, "admin")
}

/// A kubeconfig for `server`, trusting `dir`/ca.crt, with the client identity
/// `dir`/`<user>.crt` and `.key`.
pub(crate) fn kubeconfig_for(server: &str, dir: &Path, user: &str) -> String {
    let d = |f: &str| dir.join(f).display().to_string();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: dmk-local
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: dmk-{user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: dmk-local
  context:
    cluster: dmk-local
    user: dmk-{user}
    namespace: default
current-context: dmk-local
",
        ca = d("ca.crt"),
        cert = d(&format!("{user}.crt")),
        key = d(&format!("{user}.key")),
    )
}
