//! A TCP proxy on loopback in front of the API server that can be told to stall: from then on it
//! forwards nothing in either direction, on open or new connections, and never closes them. A
//! client behind it sees requests that hang, the way a partitioned node or a stuck load balancer
//! behaves.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub struct StallingProxy {
    pub address: String,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, flag.clone()));
                tokio::spawn(pipe(sr, cw, flag.clone()));
            }
        });
        StallingProxy { address, stalled }
    }

    /// Stops forwarding, for good.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            // Hold the bytes and the connection; never deliver them.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A copy of the kubeconfig at `path` whose server is `address` (same TLS names: loopback).
pub fn kubeconfig_via(
    path: &std::path::Path,
    address: &str,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for cluster in config["clusters"].as_sequence_mut().unwrap() {
        cluster["cluster"]["server"] = format!("https://{address}").into();
    }
    let out = dir.join("kubeconfig-via-proxy");
    std::fs::write(&out, serde_yaml::to_string(&config).unwrap()).unwrap();
    out
}

/// `host:port` of the API server in the kubeconfig at `path`.
pub fn server_address(path: &std::path::Path) -> String {
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let server = config["clusters"][0]["cluster"]["server"].as_str().unwrap();
    server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}
