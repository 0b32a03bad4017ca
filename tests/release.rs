//! What a release ships besides code, kept consistent: the license the crate and the chart
//! declare is the LICENSE file, both binaries print the version they were built from, and the
//! chart, the crate and the changelog name the same version; the plugin's krew archive and
//! manifest that `make release` writes pass krew-index's own check and install with krew; the
//! dependency policy (deny.toml) refuses what it says. CI also runs `make release` on the static
//! binaries and `.ci/check-release.sh` on the result.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

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
    // Artifact Hub lists the image the chart runs: the same tag.
    let images: serde_yaml::Value = serde_yaml::from_str(
        chart["annotations"]["artifacthub.io/images"]
            .as_str()
            .expect("artifacthub.io/images"),
    )
    .unwrap();
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("charts/dataminer-keys-operator/values.yaml")).unwrap();
    assert_eq!(
        images[0]["image"].as_str(),
        Some(
            format!(
                "{}:{VERSION}",
                values["image"]["repository"].as_str().unwrap()
            )
            .as_str()
        )
    );
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

// ---- make release: the plugin's krew archive and manifest --------------------------------

/// One release directory for the tests below, made by `.ci/release.sh` (what `make release`
/// runs) from the debug binaries, stripped so the archive stays small. The manifest's uri
/// points at a local server that hands out that directory under `/v<version>/`, so krew can
/// download it as it would from GitHub.
struct Release {
    dir: PathBuf,
    plugin: PathBuf,
    base_url: String,
    served: Arc<Mutex<Vec<String>>>,
    _tmp: tempfile::TempDir,
}

fn release() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = tmp.path().join("kubectl-dmkeys");
        let out = Command::new("strip")
            .arg("-o")
            .arg(&plugin)
            .arg(env!("CARGO_BIN_EXE_kubectl-dmkeys"))
            .output()
            .unwrap();
        assert!(out.status.success(), "strip: {out:?}");
        let dir = tmp.path().join("release-artifacts");
        let (base_url, served) = serve(dir.clone());
        release_script(&dir, &plugin, Some(&base_url));
        Release {
            dir,
            plugin,
            base_url,
            served,
            _tmp: tmp,
        }
    })
}

/// Runs `.ci/release.sh` into `dir`; panics with its output when it fails.
fn release_script(dir: &Path, plugin: &Path, base_url: Option<&str>) {
    let out = release_script_with(
        dir,
        env!("CARGO_BIN_EXE_dataminer-keys-operator"),
        plugin,
        base_url,
    );
    assert!(
        out.status.success(),
        "release.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn release_script_with(
    dir: &Path,
    operator: &str,
    plugin: &Path,
    base_url: Option<&str>,
) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{ROOT}/.ci/release.sh"))
        .arg("--out")
        .arg(dir)
        .args(["--operator", operator])
        .arg("--plugin")
        .arg(plugin);
    if let Some(url) = base_url {
        cmd.args(["--base-url", url]);
    }
    cmd.output().unwrap()
}

/// A minimal HTTP/1.0 file server on a free loopback port: GET /v<version>/<name> -> the file.
/// Returns the base URL and the paths asked for.
fn serve(dir: PathBuf) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v{VERSION}", listener.local_addr().unwrap());
    let served = Arc::new(Mutex::new(Vec::new()));
    let log = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let file = path
                .strip_prefix(&format!("/v{VERSION}/"))
                .filter(|name| !name.contains('/'))
                .and_then(|name| std::fs::read(dir.join(name)).ok());
            let _ = match file {
                Some(body) => stream
                    .write_all(
                        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .as_bytes(),
                    )
                    .and_then(|()| stream.write_all(&body)),
                None => stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            };
        }
    });
    (base_url, served)
}

/// krew-index's own check (`validate-krew-manifest`, krew v0.4.3, pinned in
/// tests/control-plane/krew): the manifest's rules, then a real `kubectl krew install` from the
/// uri for every platform, then a LICENSE among the installed files. Returns its output.
fn krew_index_check(manifest: &Path) -> (bool, String) {
    let krew = dmk_control_plane::built_by("build-krew.sh").unwrap();
    let kubectl = dmk_control_plane::binaries().unwrap().join("kubectl");
    // It runs `kubectl krew install`: kubectl and krew (as the kubectl-krew plugin) on PATH.
    let path_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&kubectl, path_dir.path().join("kubectl")).unwrap();
    std::os::unix::fs::symlink(krew.join("krew"), path_dir.path().join("kubectl-krew")).unwrap();
    let path = format!(
        "{}:{}",
        path_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(krew.join("validate-krew-manifest"))
        .arg("-manifest")
        .arg(manifest)
        .env("PATH", path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

const TARBALL: &str = "kubectl-dmkeys-linux-amd64.tar.gz";

#[test]
fn krew_index_accepts_the_manifest_and_installs_the_plugin_from_its_uri() {
    let release = release();
    let manifest = release.dir.join("dmkeys.yaml");
    let (ok, text) = krew_index_check(&manifest);
    assert!(ok, "validate-krew-manifest refused dmkeys.yaml:\n{text}");
    assert!(
        text.contains("all 1 spec.platforms installed fine"),
        "{text}"
    );
    // krew fetched the archive from the uri in the manifest.
    let wanted = format!("/v{VERSION}/{TARBALL}");
    assert!(release.served.lock().unwrap().contains(&wanted));

    // What the manifest says, as a reader checks it: the rules krew states, and the sha256 is
    // the archive's and the one in SHA256SUMS.
    let plugin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(
        plugin["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(plugin["kind"], "Plugin");
    assert_eq!(plugin["metadata"]["name"], "dmkeys");
    assert_eq!(
        plugin["spec"]["version"].as_str(),
        Some(format!("v{VERSION}").as_str())
    );
    let platforms = plugin["spec"]["platforms"].as_sequence().unwrap();
    assert_eq!(platforms.len(), 1);
    let p = &platforms[0];
    assert_eq!(p["selector"]["matchLabels"]["os"], "linux");
    assert_eq!(p["selector"]["matchLabels"]["arch"], "amd64");
    assert_eq!(
        p["uri"].as_str(),
        Some(format!("{}/{TARBALL}", release.base_url).as_str())
    );
    assert_eq!(p["bin"], "kubectl-dmkeys");
    let sha = sha256_hex(&release.dir.join(TARBALL));
    assert_eq!(p["sha256"].as_str(), Some(sha.as_str()));
    let froms: Vec<_> = p["files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f["from"].as_str().unwrap())
        .collect();
    assert_eq!(froms, ["kubectl-dmkeys", "LICENSE"]);
    let sums = std::fs::read_to_string(release.dir.join("SHA256SUMS")).unwrap();
    assert!(
        sums.lines().any(|l| l == format!("{sha}  {TARBALL}")),
        "{sums}"
    );
}

#[test]
fn krew_installs_the_archive_and_kubectl_finds_the_plugin() {
    let release = release();
    let krew = dmk_control_plane::built_by("build-krew.sh").unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(krew.join("krew"))
        .args(["install", "--manifest"])
        .arg(release.dir.join("dmkeys.yaml"))
        .arg("--archive")
        .arg(release.dir.join(TARBALL))
        .env("KREW_ROOT", root.path())
        .env("KREW_NO_UPGRADE_CHECK", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "krew install: {out:?}");
    let store = root.path().join(format!("store/dmkeys/v{VERSION}"));
    assert_eq!(
        std::fs::read(store.join("LICENSE")).unwrap(),
        std::fs::read(format!("{ROOT}/LICENSE")).unwrap()
    );
    assert_eq!(
        std::fs::read(store.join("kubectl-dmkeys")).unwrap(),
        std::fs::read(&release.plugin).unwrap()
    );
    // `kubectl dmkeys` through kubectl's plugin lookup on krew's bin directory.
    let kubectl = dmk_control_plane::binaries().unwrap().join("kubectl");
    let out = Command::new(kubectl)
        .args(["dmkeys", "--version"])
        .env("PATH", root.path().join("bin"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("kubectl-dmkeys {VERSION}\n"),
        "{out:?}"
    );
}

/// Each of krew's rules, broken in a copy of the generated manifest, is refused by krew-index's
/// check: the check the first test passes is not one that passes anything.
#[test]
fn krew_index_refuses_a_manifest_that_breaks_each_rule() {
    let release = release();
    let good = std::fs::read_to_string(release.dir.join("dmkeys.yaml")).unwrap();
    let sha = sha256_hex(&release.dir.join(TARBALL));
    let other_sha = sha256_hex(&release.dir.join("SHA256SUMS"));
    let selector = "    - selector:\n        matchLabels:\n          os: linux\n          arch: amd64\n      uri:";
    let uri_line = format!("      uri: {}/{TARBALL}\n", release.base_url);
    let cases: [(&str, &str, String, &str); 8] = [
        (
            "file name",
            "dmkey.yaml",
            good.clone(),
            "plugin should be named \"dmkey\"",
        ),
        (
            "version without v",
            "dmkeys.yaml",
            replace(
                &good,
                &format!("version: v{VERSION}"),
                &format!("version: {VERSION}"),
            ),
            "not starting with 'v'",
        ),
        (
            "no selector",
            "dmkeys.yaml",
            replace(&good, selector, "    - uri:"),
            "nil selector is not supported",
        ),
        (
            "a selector no platform has",
            "dmkeys.yaml",
            replace(&good, "os: linux", "os: plan9"),
            "doesn't match any supported platforms",
        ),
        (
            "no uri",
            "dmkeys.yaml",
            replace(&good, &uri_line, ""),
            "`uri` has to be set",
        ),
        (
            "another archive's sha256",
            "dmkeys.yaml",
            replace(&good, &sha, &other_sha),
            "checksum does not match",
        ),
        (
            "no bin",
            "dmkeys.yaml",
            replace(&good, "      bin: kubectl-dmkeys\n", ""),
            "`bin` has to be set",
        ),
        (
            "LICENSE not among the files",
            "dmkeys.yaml",
            replace(&good, "        - from: LICENSE\n          to: .\n", ""),
            "could not find license file",
        ),
    ];
    for (what, file, text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join(file);
        std::fs::write(&manifest, text).unwrap();
        let (ok, output) = krew_index_check(&manifest);
        assert!(!ok, "{what}: accepted");
        assert!(
            output.contains(expected),
            "{what}: expected {expected:?} in\n{output}"
        );
    }
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the manifest");
    text.replace(from, to)
}

/// The plugin archive holds the plugin and LICENSE at its top, owned by root, and the same
/// inputs give the same bytes (so the sha256 in a krew manifest can be rebuilt and checked).
#[test]
fn the_plugin_archive_is_krews_layout_and_reproducible() {
    let release = release();
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(release.dir.join(TARBALL))
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[1], f[5])
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("-rw-r--r--", "0/0", "LICENSE"),
            ("-rwxr-xr-x", "0/0", "kubectl-dmkeys")
        ],
        "{listing}"
    );

    // A second run, without --base-url: the same bytes, and a manifest that differs only in
    // pointing at the GitHub release of this version.
    let again = tempfile::tempdir().unwrap();
    let dir = again.path().join("release-artifacts");
    release_script(&dir, &release.plugin, None);
    for name in [TARBALL, "dataminer-keys-operator-crds.yaml"] {
        assert_eq!(
            sha256_hex(&dir.join(name)),
            sha256_hex(&release.dir.join(name)),
            "{name} differs between two runs"
        );
    }
    let github = format!(
        "{}/releases/download/v{VERSION}",
        env!("CARGO_PKG_REPOSITORY")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("dmkeys.yaml")).unwrap(),
        std::fs::read_to_string(release.dir.join("dmkeys.yaml"))
            .unwrap()
            .replace(&release.base_url, &github)
    );
    assert!(github.starts_with("https://github.com/"));
}

/// A release never mixes versions: binaries that print another version are refused before
/// anything is written. And the output directory is emptied only when it is a release: a
/// mistyped `--out` pointing at someone's files is refused and they are left alone.
#[test]
fn the_release_script_refuses_mixed_versions_and_foreign_directories() {
    let release = release();
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("dataminer-keys-operator");
    std::fs::write(&fake, "#!/bin/sh\necho 'dataminer-keys-operator 9.9.9'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("out");
    let out = release_script_with(
        &dir,
        fake.to_str().unwrap(),
        &release.plugin,
        Some(&release.base_url),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the operator says 'dataminer-keys-operator 9.9.9', the plugin {VERSION}"
        )),
        "{err}"
    );
    assert!(!dir.exists(), "nothing written");

    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "mine").unwrap();
    let out = release_script_with(
        &precious,
        env!("CARGO_BIN_EXE_dataminer-keys-operator"),
        &release.plugin,
        Some(&release.base_url),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a release directory, not emptying it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&precious).unwrap().count(), 1);
}

// ---- the dependency policy ---------------------------------------------------------------

/// deny.toml refuses what it says it refuses: a crate that links OpenSSL, a copyleft license, a
/// `*` version. Checked with the pinned cargo-deny on a throwaway crate holding all three,
/// while this workspace passes.
#[test]
fn the_dependency_policy_refuses_openssl_copyleft_and_wildcards() {
    let deny = dmk_control_plane::built_by("build-cargo-deny.sh").unwrap();
    // cargo-deny reads the deny.toml next to the manifest.
    let ours = Command::new(&deny)
        .args(["--manifest-path", &format!("{ROOT}/Cargo.toml")])
        .args(["check", "licenses", "bans", "sources"])
        .output()
        .unwrap();
    assert!(ours.status.success(), "this workspace: {ours:?}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("src")).unwrap();
    std::fs::write(tmp.path().join("src/lib.rs"), "").unwrap();
    std::fs::copy(format!("{ROOT}/deny.toml"), tmp.path().join("deny.toml")).unwrap();
    std::fs::write(
        tmp.path().join("Cargo.toml"),
        "[package]\nname = \"policy-probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         license = \"GPL-3.0-only\"\n\n[dependencies]\nopenssl-sys = \"0.9\"\nhex = \"*\"\n\n\
         [workspace]\n",
    )
    .unwrap();
    let out = Command::new(&deny)
        .arg("--manifest-path")
        .arg(tmp.path().join("Cargo.toml"))
        .args(["check", "licenses", "bans", "sources"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert!(text.contains("openssl-sys"), "{text}");
    assert!(text.contains("GPL-3.0-only"), "{text}");
    assert!(text.contains("wildcard"), "{text}");
}

// ---- the container image -----------------------------------------------------------------

/// Where cargo builds (CARGO_TARGET_DIR or ./target): two levels above a test binary's target.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_dataminer-keys-operator"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn json_blob(blobs: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(blobs.join(hex)).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        hex,
        "blob {digest} is intact"
    );
    serde_json::from_slice(&bytes).unwrap()
}

/// The image `make image` builds from the Dockerfile (an OCI archive, which `make test` builds
/// first and `make e2e` runs on a real node): the static operator that `make static` checked,
/// byte for byte, and LICENSE, on an empty base; a non-root numeric user; the chart's default
/// repository and appVersion as its name.
#[test]
fn the_image_is_the_static_operator_on_an_empty_base_as_a_non_root_user() {
    let archive = target_dir().join("image/dataminer-keys-operator.oci.tar");
    assert!(
        archive.exists(),
        "{} is missing: `make image` builds it (`make test` runs it first)",
        archive.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let untar = |file: &Path, into: &Path| {
        std::fs::create_dir_all(into).unwrap();
        let out = Command::new("tar")
            .arg("-xf")
            .arg(file)
            .arg("-C")
            .arg(into)
            .output()
            .unwrap();
        assert!(out.status.success(), "tar -xf {}: {out:?}", file.display());
    };
    let oci = tmp.path().join("oci");
    untar(&archive, &oci);
    let blobs = oci.join("blobs/sha256");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one image: {index}");
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("charts/dataminer-keys-operator/values.yaml")).unwrap();
    let name = format!(
        "{}:{VERSION}",
        values["image"]["repository"].as_str().unwrap()
    );
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"].as_str(),
        Some(name.as_str())
    );
    let manifest = json_blob(&blobs, manifests[0]["digest"].as_str().unwrap());
    let config = json_blob(&blobs, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let run = &config["config"];
    assert_eq!(run["User"], "65532:65532", "{run}");
    assert_eq!(
        run["Entrypoint"],
        serde_json::json!(["/usr/local/bin/dataminer-keys-operator"])
    );
    assert_eq!(
        run["Labels"]["org.opencontainers.image.licenses"],
        "Apache-2.0"
    );
    assert!(run["ExposedPorts"].get("8080/tcp").is_some(), "{run}");

    // Every layer unpacked in order: the image's whole file system.
    let rootfs = tmp.path().join("rootfs");
    let layers = manifest["layers"].as_array().unwrap();
    for layer in layers {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        untar(&blobs.join(hex), &rootfs);
    }
    let out = Command::new("find")
        .arg(".")
        .args(["-not", "-type", "d"])
        .current_dir(&rootfs)
        .output()
        .unwrap();
    let mut files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "./usr/local/bin/dataminer-keys-operator",
            "./usr/share/doc/dataminer-keys-operator/LICENSE"
        ],
        "nothing but the binary and LICENSE: no shell, no libc"
    );
    let binary = rootfs.join("usr/local/bin/dataminer-keys-operator");
    let built = target_dir().join("x86_64-unknown-linux-gnu/release/dataminer-keys-operator");
    assert_eq!(
        sha256_hex(&binary),
        sha256_hex(&built),
        "the image holds the binary `make static` built and checked"
    );
    assert_eq!(
        std::fs::read(rootfs.join("usr/share/doc/dataminer-keys-operator/LICENSE")).unwrap(),
        std::fs::read(Path::new(ROOT).join("LICENSE")).unwrap()
    );
    let readelf = Command::new("readelf")
        .arg("-d")
        .arg(&binary)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&readelf.stdout).contains("NEEDED"),
        "the binary needs no shared library"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("dataminer-keys-operator {VERSION}\n")
    );
}
