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

/// With `1`, a release before 1.36 runs with MutatingAdmissionPolicy v1beta1 turned on, as a
/// provider may have it (`make matrix` runs 1.35 this way too).
pub const POLICY_BETA_ENV: &str = "DMK_TEST_MUTATING_POLICY_BETA";

fn policy_beta() -> bool {
    minor() < 36 && std::env::var(POLICY_BETA_ENV).is_ok_and(|v| v == "1")
}

/// The MutatingAdmissionPolicy version the release serves: `v1` from 1.36 (on by default),
/// `v1beta1` before that only where turned on, else none.
pub fn mutating_policy_version() -> Option<&'static str> {
    match minor() {
        36.. => Some("v1"),
        _ if policy_beta() => Some("v1beta1"),
        _ => None,
    }
}

/// Whether the chart records the requester with a MutatingAdmissionPolicy here (else with the
/// operator's webhook).
pub fn serves_mutating_policies() -> bool {
    mutating_policy_version().is_some()
}

/// Extra kube-apiserver flags: the beta turned on where asked for.
pub fn apiserver_flags() -> Vec<String> {
    match policy_beta() {
        true => vec![
            "--runtime-config=admissionregistration.k8s.io/v1beta1=true".into(),
            "--feature-gates=MutatingAdmissionPolicy=true".into(),
        ],
        false => Vec::new(),
    }
}

/// The `helm template` flags that stand for what discovery tells `helm install` on this release.
pub fn helm_capabilities() -> Vec<String> {
    let mut args = vec![
        "--kube-version".to_string(),
        kubernetes_version().trim_start_matches('v').to_string(),
    ];
    if let Some(version) = mutating_policy_version() {
        args.push("--api-versions".into());
        args.push(format!(
            "admissionregistration.k8s.io/{version}/MutatingAdmissionPolicy"
        ));
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
