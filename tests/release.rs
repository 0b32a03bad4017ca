//! What a release ships besides code, kept consistent: the license the crate and the chart
//! declare is the LICENSE file, both binaries print the version they were built from, and the
//! chart, the crate and the changelog name the same version.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_license_is_the_one_declared() {
    let license = read("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "the whole text"
    );
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&read("charts/dataminer-keys-operator/Chart.yaml")).unwrap();
    assert_eq!(chart["annotations"]["artifacthub.io/license"], "Apache-2.0");
}

#[test]
fn both_binaries_print_the_version_they_were_built_from() {
    for (bin, name) in [
        (
            env!("CARGO_BIN_EXE_dataminer-keys-operator"),
            "dataminer-keys-operator",
        ),
        (env!("CARGO_BIN_EXE_kubectl-dmkeys"), "kubectl-dmkeys"),
    ] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{name} {VERSION}\n")
        );
    }
}

#[test]
fn chart_crate_and_changelog_name_the_same_version() {
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&read("charts/dataminer-keys-operator/Chart.yaml")).unwrap();
    assert_eq!(chart["version"].as_str(), Some(VERSION));
    assert_eq!(chart["appVersion"].as_str(), Some(VERSION));
    for key in ["home", "icon", "kubeVersion"] {
        assert!(
            chart[key].as_str().is_some_and(|v| !v.is_empty()),
            "Chart.yaml {key}"
        );
    }
    let changelog = read("CHANGELOG.md");
    assert!(changelog.contains("## [Unreleased]"));
    assert!(
        changelog.contains(&format!("## [{VERSION}] - ")),
        "a section for {VERSION}"
    );
    assert!(
        changelog.contains(&format!("[{VERSION}]: ")),
        "a link for {VERSION}"
    );
}
