//! The node's network: a namespace of its own holding the node's address (on its loopback) and,
//! once the first Pod starts, the CNI bridge to the Pods' namespaces. It has no route out, so
//! nothing a Pod sends can leave it. The API server stays on the host's loopback; a relay in
//! the kit listens inside the namespace and forwards each connection to it.

use std::{
    fs::File,
    net::SocketAddr,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Command,
};

use super::{API_PORT_IN_NODE, NODE_IP};
use crate::{Error, Result, io};

pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(io("run ip (iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Node(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Creates the namespace: loopback up, holding the node's address too (no dummy link: not every
/// kernel has the module). Pods reach it through the bridge; it is local to the namespace.
pub fn create(name: &str) -> Result<()> {
    ip(&["netns", "add", name])?;
    ip(&["-n", name, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        name,
        "addr",
        "add",
        &format!("{NODE_IP}/32"),
        "dev",
        "lo",
    ])
}

/// Listens on every address of the namespace at [`API_PORT_IN_NODE`] and forwards each
/// connection to `upstream` on the host's loopback. TLS passes through untouched: the kubelet
/// and the Pods verify the API server's own certificate (it names [`NODE_IP`]).
pub async fn relay(netns: &Path, upstream: SocketAddr) -> Result<tokio::task::JoinHandle<()>> {
    let path = netns.to_path_buf();
    // setns changes the calling thread alone: a short-lived thread enters the namespace, opens
    // the socket there and ends; the socket stays in the namespace it was made in.
    let listener = std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
        let ns = File::open(&path)?;
        // SAFETY: setns on a valid namespace fd, for this thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let l = std::net::TcpListener::bind(("0.0.0.0", API_PORT_IN_NODE))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .join()
    .map_err(|_| Error::Node("the relay's set-up thread panicked".into()))?
    .map_err(io("listen inside the node's network namespace"))?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io("relay listener"))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    }))
}
