//! Which Kubernetes release the local control plane runs, and what that release serves: the one
//! place the kit decides by version (as the chart does with `.Capabilities`).

/// Names one of the pinned releases (tests/control-plane/versions.env) for `build.sh` and the
/// kit: `make matrix` sets it per release.
pub const VERSION_ENV: &str = "DMK_KUBERNETES_VERSION";

const VERSIONS_ENV_FILE: &str = include_str!("../versions.env");

fn pinned(key: &str) -> String {
    VERSIONS_ENV_FILE
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("versions.env has no {key}"))
}

/// The pinned releases, oldest first (`KUBERNETES_VERSIONS`).
pub fn supported() -> Vec<String> {
    pinned("KUBERNETES_VERSIONS")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The release the local control plane runs, as `v1.37.2`: `DMK_KUBERNETES_VERSION`, else the
/// default pin.
pub fn kubernetes_version() -> String {
    std::env::var(VERSION_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| pinned("KUBERNETES_VERSION"))
}

/// The minor of [`kubernetes_version`] (37 for v1.37.2).
pub fn minor() -> u32 {
    kubernetes_version()
        .trim_start_matches("v1.")
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("a version like v1.37.2")
}

/// Whether the release serves MutatingAdmissionPolicy v1 (from 1.36, on by default).
pub fn serves_mutating_policies() -> bool {
    minor() >= 36
}

/// The `helm template` flags that stand for what discovery tells `helm install` on this release.
pub fn helm_capabilities() -> Vec<String> {
    let mut args = vec![
        "--kube-version".to_string(),
        kubernetes_version().trim_start_matches('v').to_string(),
    ];
    if serves_mutating_policies() {
        args.push("--api-versions".into());
        args.push("admissionregistration.k8s.io/v1/MutatingAdmissionPolicy".into());
    }
    args
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_pin_is_the_newest_supported_release() {
        let all = super::supported();
        assert!(all.len() >= 4, "{all:?}");
        assert_eq!(all.last(), Some(&super::pinned("KUBERNETES_VERSION")));
    }
}
