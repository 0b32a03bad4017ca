//! `kubectl dmkeys`, run as a real process against a test control plane: without a terminal,
//! or in a pseudo-terminal (util-linux `script`) where a person would type.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

use super::Env;

/// The plugin binary of this workspace.
pub fn binary() -> PathBuf {
    super::workspace_binary("kubectl-dmkeys")
}

pub struct Plugin {
    kubeconfig: Option<PathBuf>,
    ns: String,
}

impl Plugin {
    pub fn new(e: &Env, kubeconfig: Option<PathBuf>) -> Plugin {
        Plugin {
            kubeconfig,
            ns: e.ns.clone(),
        }
    }

    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![];
        if let Some(k) = &self.kubeconfig {
            all.push(format!("--kubeconfig={}", k.display()));
        }
        all.push(format!("--namespace={}", self.ns));
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// Runs the plugin with no terminal; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(binary())
            .args(self.args(args))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        decode(out)
    }

    /// Runs the plugin in a pseudo-terminal, typing `input`; returns (exit code, terminal text).
    pub fn run_in_pty(&self, args: &[&str], input: &str) -> (i32, String) {
        let line = std::iter::once(binary().display().to_string())
            .chain(self.args(args))
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux script");
        // Type once the prompt is up, as a person would.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let (code, out, err) = decode(child.wait_with_output().unwrap());
        (code, out + &err)
    }
}

pub fn decode(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
