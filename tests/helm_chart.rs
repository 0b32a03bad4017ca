//! The Helm chart on the real API server: it lints, renders with default and non-default values,
//! every rendered object is accepted by `kubectl apply --dry-run=server`, and once installed
//! with `helm install` its RBAC is exactly what the operator needs, its user roles give people
//! the right access, and its admission policy protects active key sets.

mod common;

use common::{LABEL, apply, is_ready, keyset_where, org_keyset, revisions};
use dataminer_keys_operator::api::DataMinerKeySet;
use dmk_control_plane::ControlPlane;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/dataminer-keys-operator"
);

fn tool(name: &str) -> PathBuf {
    dmk_control_plane::binaries().unwrap().join(name)
}

/// Runs helm or kubectl against the test cluster; returns the output, panicking with stderr
/// when `must_succeed` and the command failed.
fn run(cp: &ControlPlane, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(tool(program));
    cmd.args(args);
    if let Some(k) = cp.kubeconfig_path() {
        cmd.env("KUBECONFIG", k);
    }
    common::run_checked(&mut cmd, stdin)
}

/// `helm template dmk` of the chart for the control plane's Kubernetes release with `args`,
/// which must succeed; returns the manifests.
fn template(args: &[&str]) -> Vec<u8> {
    let mut helm = Command::new(tool("helm"));
    helm.args(["template", "dmk", CHART])
        .args(dmk_control_plane::helm_capabilities())
        .args(args);
    common::run_checked(&mut helm, None).stdout
}

/// `helm template` with `values` must fail (the values schema); returns its error output.
fn refused(values: &[&str]) -> String {
    let out = Command::new(tool("helm"))
        .args(["template", "dmk", CHART])
        .args(dmk_control_plane::helm_capabilities())
        .args(values)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{values:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Prometheus' own rule checker, built from tests/control-plane/promrules (cached).
fn promrules() -> PathBuf {
    dmk_control_plane::built_by("build-promrules.sh").unwrap()
}

/// The chart's PrometheusRule, rendered with `values`: its `spec` as a Prometheus rule file.
fn rendered_rule(values: &[&str]) -> String {
    let mut args = vec![
        "--show-only",
        "templates/prometheusrule.yaml",
        "--set",
        "metrics.prometheusRule.enabled=true",
    ];
    args.extend(values);
    let rule: serde_json::Value = serde_yaml::from_slice(&template(&args)).unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    serde_yaml::to_string(&rule["spec"]).unwrap()
}

#[test]
fn the_key_age_alert_is_a_rule_prometheus_loads() {
    let dir = tempfile::tempdir().unwrap();
    let checker = promrules();
    let check = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        Command::new(&checker).arg(&file).output().unwrap()
    };
    // Off by default.
    let off = Command::new(tool("helm"))
        .args(["template", "dmk", CHART])
        .args(dmk_control_plane::helm_capabilities())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&off.stdout).contains("PrometheusRule"));

    let default = rendered_rule(&[]);
    let out = check("default.yaml", &default);
    assert!(
        out.status.success(),
        "{}\n{default}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 90 days, on the series the operator exports (tests/requester.rs scrapes it).
    assert!(
        default.contains("dataminer_keys_key_generated_timestamp_seconds"),
        "{default}"
    );
    assert!(default.contains("> 7776000"), "{default}");
    assert!(default.contains("for: 1h"), "{default}");

    let custom = rendered_rule(&[
        "--set",
        "metrics.prometheusRule.keyMaxAgeDays=30",
        "--set",
        "metrics.prometheusRule.for=15m",
        "--set",
        "metrics.prometheusRule.severity=critical",
    ]);
    let out = check("custom.yaml", &custom);
    assert!(
        out.status.success(),
        "{}\n{custom}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        custom.contains("> 2592000") && custom.contains("for: 15m"),
        "{custom}"
    );
    assert!(custom.contains("severity: critical"), "{custom}");

    // The checker is not a rubber stamp: a broken expression or template fails it.
    let broken = default.replace(
        "max by (keyset_namespace, keyset, slot) (",
        "max by (keyset_namespace, keyset, slot (",
    );
    assert!(!check("broken.yaml", &broken).status.success());
    let broken = default.replace("{{ $labels.slot }}", "{{ $labels.slot ");
    assert!(!check("broken-template.yaml", &broken).status.success());

    // The schema refuses an age that is not a whole number of days.
    assert!(
        refused(&["--set", "metrics.prometheusRule.keyMaxAgeDays=0"]).contains("keyMaxAgeDays")
    );
}

// The alerts fire in the situations they are written for and stay quiet otherwise, as
// Prometheus' own rule evaluation computes it (tests/alerts/cases.yaml; the evaluator is
// tests/control-plane/promrules/alerts_test.go, built from Prometheus' module).
#[test]
fn the_alerts_fire_when_they_should_and_only_then() {
    let rule = rendered_rule(&["-n", "keys-system"]);
    for alert in [
        "DataMinerKeyTooOld",
        "DataMinerKeysOperatorDown",
        "DataMinerKeysNoLeader",
        "DataMinerKeysWritesFailing",
        "DataMinerKeySetsNotReady",
    ] {
        assert!(
            rule.contains(&format!("alert: {alert}")),
            "{alert} in\n{rule}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, &rule).unwrap();
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alerts/cases.yaml");
    let evaluate = |cases: &Path| {
        Command::new(promrules().with_file_name("alerts.test"))
            .args(["-test.run", "TestAlerts", "-test.v"])
            .env("PROMRULES_RULES", &file)
            .env("PROMRULES_CASES", cases)
            .output()
            .unwrap()
    };
    let out = evaluate(Path::new(cases));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("--- PASS: TestAlerts/").count(), 11, "{text}");
    // Not a rubber stamp: an alert expected where it cannot fire fails it.
    let wrong = std::fs::read_to_string(cases).unwrap().replacen(
        "firing: []",
        "firing: [DataMinerKeysNoLeader]",
        1,
    );
    let wrong_file = dir.path().join("wrong.yaml");
    std::fs::write(&wrong_file, wrong).unwrap();
    assert!(!evaluate(&wrong_file).status.success());
}

// The Grafana dashboard, checked mechanically: every query parses as PromQL (Prometheus' own
// parser, through the rule checker), names only series the operator exports, and the chart's
// ConfigMap carries the file unchanged under the sidecar's label.
#[test]
fn the_dashboard_queries_parse_and_name_real_series() {
    let file = Path::new(CHART).join("dashboards/dataminer-keys-operator.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    // Grafana's variables, as Grafana substitutes them.
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let expr = e
                .replace("$__rate_interval", "5m")
                .replace("$job", "dmk-dataminer-keys-operator-metrics")
                .replace("$namespace", "keys-system");
            json!({ "record": format!("dashboard:panel_{i}"), "expr": expr })
        })
        .collect();
    let rule_file = json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yaml");
    std::fs::write(&path, serde_yaml::to_string(&rule_file).unwrap()).unwrap();
    let out = Command::new(promrules()).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The series the operator exports, by their TYPE lines (a labelled family shows once used).
    let metrics = dataminer_keys_operator::metrics::Metrics::default();
    metrics.reconciled("ok", std::time::Duration::from_millis(1));
    metrics.action("KeysCreated");
    metrics.write_failed("create");
    metrics.keyset_moved(None, Some(dataminer_keys_operator::status::Standing::Ready));
    let exported: Vec<String> = metrics
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let mut named = 0;
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.starts_with("dataminer_keys_") {
                continue;
            }
            named += 1;
            let family = ["_bucket", "_total", "_count", "_sum"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word);
            assert!(
                exported.iter().any(|e| e == family),
                "{word} is not exported (exported: {exported:?})"
            );
        }
    }
    assert!(named >= 10);

    let map: serde_json::Value = serde_yaml::from_slice(&template(&[
        "--show-only",
        "templates/dashboard.yaml",
        "--set",
        "metrics.dashboard.enabled=true",
    ]))
    .unwrap();
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: serde_json::Value = serde_json::from_str(
        map["data"]["dataminer-keys-operator.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(embedded, dashboard);
}

#[test]
fn the_charts_crd_is_the_generated_one() {
    let generated = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crds/dataminerkeysets.keys.dataminer.services.yaml"),
    )
    .unwrap();
    let in_chart = std::fs::read_to_string(
        Path::new(CHART).join("files/dataminerkeysets.keys.dataminer.services.yaml"),
    )
    .unwrap();
    assert!(
        generated == in_chart,
        "charts/*/files/ differs from crds/: run `make crds`"
    );
    // Rendered, it is that file with only the release's labels and Helm's keep policy added.
    let mut rendered: serde_yaml::Value =
        serde_yaml::from_slice(&template(&["--show-only", "templates/crd.yaml"])).unwrap();
    assert_eq!(
        rendered["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let metadata = rendered["metadata"].as_mapping_mut().unwrap();
    metadata.remove("labels");
    metadata["annotations"]
        .as_mapping_mut()
        .unwrap()
        .remove("helm.sh/resource-policy");
    let generated: serde_yaml::Value = serde_yaml::from_str(&generated).unwrap();
    assert_eq!(rendered, generated);
}

#[tokio::test]
async fn the_chart_lints_renders_and_every_object_is_accepted_by_the_api_server() {
    let cp = common::control_plane().await;
    let release_ns = cp.namespace("chart-render").await.unwrap();
    let team_a = cp.namespace("chart-team-a").await.unwrap();
    let team_b = cp.namespace("chart-team-b").await.unwrap();
    let watch = format!("watchNamespaces={{{team_a},{team_b}}}");
    let value_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec![
            "--set",
            &watch,
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.apiServerCIDRs={10.0.0.1/32}",
            "--set",
            "replicaCount=1",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "admissionPolicy.preventDeletingActiveKeySets=false",
            "--set",
            "userRoles.create=false",
            "--set",
            "serviceAccount.name=custom-sa",
            "--set",
            "image.tag=test",
            "--set",
            "extraArgs={--concurrency=8}",
            "--set",
            "admissionPolicy.addFinalizerOnCreate=false",
            "--set",
            "admissionPolicy.recordRequester=false",
        ],
    ];
    for values in &value_sets {
        let mut lint = vec!["lint", CHART, "--strict"];
        lint.extend(values);
        let linted = String::from_utf8(run(cp, "helm", &lint, None).stdout).unwrap();
        // Not even an [INFO] (helm asks for an icon, for example).
        assert!(
            !linted.contains("[INFO]") && !linted.contains("[WARNING]"),
            "{linted}"
        );
        // What discovery tells `helm install` on the control plane's release.
        let capabilities = dmk_control_plane::helm_capabilities();
        let mut template = vec!["template", "lint", CHART, "-n", &release_ns];
        template.extend(capabilities.iter().map(String::as_str));
        template.extend(values);
        let rendered = run(cp, "helm", &template, None).stdout;
        let applied = run(
            cp,
            "kubectl",
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&rendered),
        );
        let text = String::from_utf8_lossy(&applied.stdout);
        assert!(
            text.contains("deployment.apps/lint-dataminer-keys-operator created (server dry run)"),
            "{text}"
        );
        // Two replicas by default: a disruption budget keeps a standby through a node drain.
        assert_eq!(
            text.contains("poddisruptionbudget.policy/lint-dataminer-keys-operator created"),
            values.is_empty(),
            "a PodDisruptionBudget with more than one replica only: {text}"
        );
        // Its own release name: the install test's release "dmk" lives in the same cluster, and a
        // dry run against its objects would merge into them. Where
        // MutatingAdmissionPolicy is served, policies stamp the requester and add the finalizer;
        // elsewhere the operator's webhook does both.
        let policies = dmk_control_plane::versions::serves_mutating_policies();
        let finalizer_policy = "mutatingadmissionpolicy.admissionregistration.k8s.io/lint-dataminer-keys-operator-add-finalizer ";
        assert_eq!(
            text.contains(finalizer_policy),
            values.is_empty() && policies,
            "the finalizer policy, on by default: {text}"
        );
        let recorders = if policies {
            [
                "mutatingadmissionpolicy.admissionregistration.k8s.io/lint-dataminer-keys-operator-record-requester ",
                "mutatingadmissionpolicybinding.admissionregistration.k8s.io/lint-dataminer-keys-operator-record-requester ",
            ]
        } else {
            [
                "mutatingwebhookconfiguration.admissionregistration.k8s.io/lint-dataminer-keys-operator-record-requester ",
                "service/lint-dataminer-keys-operator-webhook ",
            ]
        };
        for requester_policy in recorders.into_iter().chain([
            "validatingadmissionpolicy.admissionregistration.k8s.io/lint-dataminer-keys-operator-protect-requester ",
            "validatingadmissionpolicybinding.admissionregistration.k8s.io/lint-dataminer-keys-operator-protect-requester ",
        ]) {
            assert_eq!(
                text.contains(requester_policy),
                values.is_empty(),
                "the requester policies, on by default: {text}"
            );
        }
    }
    // The chart picks who records the requester from what the cluster serves: without
    // MutatingAdmissionPolicy (1.34 and 1.35 by default) the operator's webhook, with v1beta1
    // (turned on there) the beta policy. The validating policy that refuses forged names is
    // there in every case.
    let render_for = |extra: &[&str]| {
        let mut args = vec![
            "template",
            "dmk",
            CHART,
            "-n",
            "keys",
            "--kube-version",
            "1.34.4",
        ];
        args.extend(extra);
        String::from_utf8_lossy(&run(cp, "helm", &args, None).stdout).into_owned()
    };
    let older = render_for(&[]);
    assert!(!older.contains("kind: MutatingAdmissionPolicy"), "{older}");
    assert!(
        older.contains("kind: MutatingWebhookConfiguration"),
        "{older}"
    );
    assert!(older.contains("--requester-webhook=dmk-dataminer-keys-operator-record-requester"));
    assert!(older.contains("--webhook-host=dmk-dataminer-keys-operator-webhook.keys.svc"));
    assert!(older.contains("--webhook-add-finalizer=true"));
    let beta = render_for(&[
        "--api-versions",
        "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy",
    ]);
    assert!(
        beta.contains(
            "apiVersion: admissionregistration.k8s.io/v1beta1\nkind: MutatingAdmissionPolicy\n"
        ),
        "{beta}"
    );
    assert!(
        !beta.contains("MutatingWebhookConfiguration") && !beta.contains("--requester-webhook")
    );
    let off = render_for(&["--set", "admissionPolicy.requesterWebhook.enabled=false"]);
    assert!(!off.contains("MutatingWebhookConfiguration") && !off.contains("--requester-webhook"));
    for text in [&older, &beta, &off] {
        assert!(
            text.contains("name: dmk-dataminer-keys-operator-protect-requester"),
            "{text}"
        );
    }
    // Below the oldest release tested, the chart refuses to install.
    let too_old = Command::new(tool("helm"))
        .args(["template", "dmk", CHART, "--kube-version", "1.33.9"])
        .output()
        .unwrap();
    assert!(!too_old.status.success());
    assert!(String::from_utf8_lossy(&too_old.stderr).contains(">=1.34.0-0"));
    // The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs, which this cluster
    // lacks: lint only (the rule itself is checked by Prometheus' parser above).
    run(
        cp,
        "helm",
        &[
            "lint",
            CHART,
            "--strict",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.prometheusRule.enabled=true",
        ],
        None,
    );
    // A value the schema refuses.
    assert!(refused(&["--set", "logFormat=xml"]).contains("logFormat"));
    // Two writers: refused at render, with what to do instead.
    let two_writers = refused(&[
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert!(
        two_writers.contains("enable leader election, or set replicaCount=1"),
        "{two_writers}"
    );
    // As a subchart: Helm passes `global`, which the schema accepts.
    run(
        cp,
        "helm",
        &[
            "template",
            "dmk",
            CHART,
            "--kube-version",
            "1.37.2",
            "--set",
            "global.imageRegistry=registry.example.com",
        ],
        None,
    );
}

/// Installs the chart for real, once for this test binary (its ClusterRoles have fixed names).
struct Installed {
    release_ns: String,
    team: String,
    /// Where the release's requester webhook listens, on clusters without
    /// MutatingAdmissionPolicy: the API server calls it by URL (nothing runs the Deployment's
    /// Pods here), and the test's operator serves it.
    webhook: Option<u16>,
}

async fn installed(cp: &ControlPlane) -> Installed {
    let release_ns = cp.namespace("keys-system").await.unwrap();
    let team = cp.namespace("team").await.unwrap();
    let watch = format!("watchNamespaces={{{team}}}");
    let webhook = (!dmk_control_plane::versions::serves_mutating_policies()).then(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    });
    let url = webhook.map(|port| {
        format!("admissionPolicy.requesterWebhook.url=https://127.0.0.1:{port}/requester")
    });
    let mut args = vec![
        "install",
        "dmk",
        CHART,
        "-n",
        &release_ns,
        "--set",
        &watch,
        // The suite installed the CRD already (not through Helm): this release leaves it be.
        "--set",
        "crds.install=false",
    ];
    if let Some(url) = &url {
        args.extend(["--set", url]);
    }
    run(cp, "helm", &args, None);
    Installed {
        release_ns,
        team,
        webhook,
    }
}

async fn client_as(cp: &ControlPlane, user: &str) -> Client {
    cp.client_as(user, &["system:authenticated"]).await.unwrap()
}

#[tokio::test]
async fn installed_with_helm_the_operator_roles_and_admission_policy_work() {
    let cp = common::control_plane().await;
    let Installed {
        release_ns,
        team,
        webhook,
    } = installed(cp).await;
    let admin = cp.client().await.unwrap();
    let keysets: Api<DataMinerKeySet> = Api::namespaced(admin.clone(), &team);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &team);

    // The operator, acting as the chart's ServiceAccount and nothing more.
    let sa = format!("system:serviceaccount:{release_ns}:dmk-dataminer-keys-operator");
    let groups =
        format!("system:serviceaccounts,system:serviceaccounts:{release_ns},system:authenticated");
    let lease_ns = format!("--leader-election-namespace={release_ns}");
    let mut args = vec![
        lease_ns,
        "--lease-name=dmk-dataminer-keys-operator".to_string(),
    ];
    // Where the chart renders the requester webhook, the operator serves it as the Deployment
    // would (its flags, the chart's rules for its Secret and caBundle), on the URL's port.
    if let Some(port) = webhook {
        args.extend([
            "--requester-webhook=dmk-dataminer-keys-operator-record-requester".to_string(),
            format!("--webhook-address=127.0.0.1:{port}"),
            "--webhook-host=127.0.0.1".to_string(),
            "--webhook-secret=dmk-dataminer-keys-operator-webhook-tls".to_string(),
            "--webhook-add-finalizer=true".to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = common::operator::Operator::start_with_env(
        cp,
        &team,
        &args,
        &[
            ("KUBE_RS_DEBUG_IMPERSONATE_USER", &sa),
            ("KUBE_RS_DEBUG_IMPERSONATE_GROUP", &groups),
        ],
    );

    // helm install saw MutatingAdmissionPolicy v1 in discovery and installed the finalizer
    // policy; without it, the requester webhook, whose caBundle the operator fills in.
    match webhook {
        None => {
            run(
                cp,
                "kubectl",
                &[
                    "get",
                    "mutatingadmissionpolicy",
                    "dmk-dataminer-keys-operator-add-finalizer",
                ],
                None,
            );
        }
        Some(_) => {
            common::eventually(
                30,
                "the release's caBundle, kept by the operator",
                || async {
                    let config = Api::<
                        k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
                    >::all(admin.clone())
                    .get("dmk-dataminer-keys-operator-record-requester")
                    .await
                    .ok()?;
                    config.webhooks?[0]
                        .client_config
                        .ca_bundle
                        .as_ref()
                        .map(|_| ())
                },
            )
            .await;
            // The API server picks the new caBundle up within moments: until then it cannot
            // call the webhook, and a create is refused (the failure policy).
            let probe: DataMinerKeySet = serde_json::from_value(org_keyset("probe")).unwrap();
            let dry = kube::api::PostParams {
                dry_run: true,
                ..Default::default()
            };
            common::eventually(30, "the release's webhook answering", || async {
                keysets.create(&dry, &probe).await.ok().map(|_| ())
            })
            .await;
        }
    }

    // Every code path that touches the API: create, regenerate, drift, recreate, revoke.
    apply(&keysets, &org_keyset("ks")).await.unwrap();
    let ready = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        keyset_where(&keysets, "ks", "Ready", is_ready),
    )
    .await;
    assert!(
        ready.is_ok(),
        "not Ready as the chart's ServiceAccount:\n{}",
        op.logs()
    );
    let mut manifest = org_keyset("ks");
    manifest["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": LABEL}});
    apply(&keysets, &manifest).await.unwrap();
    keyset_where(&keysets, "ks", "primary 2", |k| {
        is_ready(k) && revisions(k) == (2, 1)
    })
    .await;
    secrets
        .delete("ks-keys", &DeleteParams::default())
        .await
        .unwrap();
    keyset_where(&keysets, "ks", "recreated", |k| {
        is_ready(k) && revisions(k) == (3, 2)
    })
    .await;
    common::eventually(20, "the Events", || async {
        (common::event_count(&admin, &team, "ks", "SecretMissing").await == 1
            && common::event_count(&admin, &team, "ks", "PrimaryKeyRegenerated").await == 1)
            .then_some(())
    })
    .await;

    // People: the viewer sees key sets and their Events but no key; the admin manages them; the
    // built-in view and edit roles got them by aggregation (kube-controller-manager fills those
    // in). Bound to the chart's roles alone, both read the audit trail (`describe`'s Events).
    for (user, role) in [
        ("viewer@example.com", "dmk-dataminer-keys-operator-viewer"),
        ("admin@example.com", "dmk-dataminer-keys-operator-admin"),
        ("view@example.com", "view"),
        ("edit@example.com", "edit"),
    ] {
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{role}-binding")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        });
        let api: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
            Api::namespaced(admin.clone(), &team);
        api.patch(
            &format!("{role}-binding"),
            &PatchParams::apply("test").force(),
            &Patch::Apply(&binding),
        )
        .await
        .unwrap();
    }
    for viewer in ["viewer@example.com", "view@example.com"] {
        let c = client_as(cp, viewer).await;
        let ks = common::eventually(20, "aggregated view access", || async {
            Api::<DataMinerKeySet>::namespaced(c.clone(), &team)
                .get("ks")
                .await
                .ok()
        })
        .await;
        assert!(ks.status.is_some(), "{viewer} sees the status");
        match Api::<Secret>::namespaced(c.clone(), &team)
            .get("ks-keys")
            .await
        {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{viewer}: {s:?}"),
            other => panic!("{viewer} must not read the keys: {other:?}"),
        }
        let mut m = org_keyset("by-viewer");
        m["metadata"]["namespace"] = json!(team);
        assert!(
            apply(&Api::namespaced(c.clone(), &team), &m).await.is_err(),
            "{viewer} cannot create"
        );
    }
    for user in [
        "viewer@example.com",
        "admin@example.com",
        "view@example.com",
        "edit@example.com",
    ] {
        let c = client_as(cp, user).await;
        common::eventually(20, &format!("{user} reading the Events"), || async {
            (common::event_count(&c, &team, "ks", "PrimaryKeyRegenerated").await == 1).then_some(())
        })
        .await;
    }
    for manager in ["admin@example.com", "edit@example.com"] {
        let c = client_as(cp, manager).await;
        let api: Api<DataMinerKeySet> = Api::namespaced(c, &team);
        let name = manager.split('@').next().unwrap();
        common::eventually(20, "aggregated edit access", || async {
            apply(&api, &org_keyset(&format!("by-{name}"))).await.ok()
        })
        .await;
        let mut rotate = org_keyset(&format!("by-{name}"));
        rotate["spec"]["regenerate"] = json!({"secondary": {"revision": 2, "confirmLabel": LABEL}});
        apply(&api, &rotate).await.unwrap();
    }

    // The admission policy: an active key set cannot be deleted; a revoked one can. The API
    // server loads a new policy asynchronously, so probe with dry-run deletes until it is in force.
    let dry_run = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    common::eventually(30, "the admission policy to be in force", || async {
        keysets.delete("ks", &dry_run).await.is_err().then_some(())
    })
    .await;
    let err = keysets
        .delete("ks", &DeleteParams::default())
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains("still holds active keys"),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .contains(&format!("set spec.revoke.confirmLabel to \"{LABEL}\"")),
        "{}",
        status.message
    );
    manifest["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    apply(&keysets, &manifest).await.unwrap();
    keyset_where(&keysets, "ks", "revoked", |k| {
        common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
    })
    .await;
    assert!(secrets.get_opt("ks-keys").await.unwrap().is_none());
    keysets
        .delete("ks", &DeleteParams::default())
        .await
        .expect("a revoked key set can be deleted");

    let logs = op.logs();
    assert!(
        !logs.contains("forbidden"),
        "the operator was refused something:\n{logs}"
    );
}

/// Waits at most 12 s for `fut`; Err names the step.
async fn step<T>(name: &str, fut: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(std::time::Duration::from_secs(12), fut)
        .await
        .map_err(|_| name.to_string())
}

/// Create, regenerate, revoke, with Events: Err names the first step that did not happen.
async fn scenario(admin: &Client, ns: &str) -> Result<(), String> {
    let keysets: Api<DataMinerKeySet> = Api::namespaced(admin.clone(), ns);
    apply(&keysets, &org_keyset("ks")).await.unwrap();
    step(
        "keys created (Ready)",
        keyset_where(&keysets, "ks", "Ready", is_ready),
    )
    .await?;
    // The chart's policy added the finalizer at creation; the operator puts it back when it is
    // gone (a hand edit here; on clusters without the policy, on every new key set).
    common::remove_finalizers(&keysets, "ks").await;
    step(
        "finalizer put back",
        keyset_where(&keysets, "ks", "finalizer", |k| {
            k.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        }),
    )
    .await?;
    let mut m = org_keyset("ks");
    m["spec"]["regenerate"] = json!({"primary": {"revision": 2, "confirmLabel": LABEL}});
    apply(&keysets, &m).await.unwrap();
    step(
        "primary regenerated",
        keyset_where(&keysets, "ks", "primary 2", |k| {
            is_ready(k) && revisions(k) == (2, 1)
        }),
    )
    .await?;
    m["spec"]["revoke"] = json!({"confirmLabel": LABEL});
    apply(&keysets, &m).await.unwrap();
    step(
        "revoked",
        keyset_where(&keysets, "ks", "revoked", |k| {
            common::condition(k, "Revoked").is_some_and(|c| c.status == "True")
        }),
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    if secrets.get_opt("ks-keys").await.unwrap().is_some() {
        return Err("Secret deleted on revoke".into());
    }
    for reason in ["KeysCreated", "PrimaryKeyRegenerated", "KeysRevoked"] {
        if common::event_count(admin, ns, "ks", reason).await == 0 {
            return Err(format!("{reason} Event"));
        }
    }
    Ok(())
}

/// Grants the chart's rules minus the one at `drop` (None: all of them), runs the operator as
/// the chart's ServiceAccount and plays the scenario.
async fn with_rules(
    cp: &'static ControlPlane,
    case: usize,
    drop: Option<usize>,
) -> Result<(), String> {
    let ns = cp.namespace(&format!("rbac-{case}")).await.unwrap();
    let release = format!("r{case}");
    common::chart::grant(cp, &release, &ns, drop).await;
    let _op = common::chart::operator(cp, &release, &ns);
    scenario(&cp.client().await.unwrap(), &ns).await
}

#[tokio::test]
async fn every_rule_of_the_chart_is_needed() {
    let cp = common::control_plane().await;
    // The chart's Roles, in order: key set rules (8), then leader election (2). The proof key
    // Role is not rendered here: the release namespace is watched, so the key set rules cover it.
    let rules: Vec<String> = {
        let ns = cp.namespace("rbac-count").await.unwrap();
        common::chart::rendered_roles("count", &ns)
            .iter()
            .filter(|d| d["kind"] == "Role")
            .flat_map(|d| d["rules"].as_array().unwrap().clone())
            .map(|r| format!("{} {} {}", r["apiGroups"], r["resources"], r["verbs"]))
            .collect()
    };
    assert_eq!(rules.len(), 10, "{rules:#?}");
    with_rules(cp, 99, None)
        .await
        .expect("all rules: the scenario passes");
    let outcomes =
        futures::future::join_all((0..rules.len()).map(|i| with_rules(cp, i, Some(i)))).await;
    let mut report = String::new();
    for (rule, outcome) in rules.iter().zip(&outcomes) {
        report += &format!("without {rule}: {outcome:?}\n");
    }
    println!("{report}");
    assert!(
        outcomes.iter().all(Result::is_err),
        "a rule that nothing needs:\n{report}"
    );
}

/// Runs helm against `cp` (a control plane of the test's own).
fn helm(cp: &ControlPlane, args: &[&str]) -> Output {
    run(cp, "helm", args, None)
}

// Tenancy, on a control plane of its own (the suites' shared one carries cluster-wide copies of
// the policies): two releases, each watching its own namespace, install side by side; a key set
// in a namespace neither watches gets no finalizer, is deleted at once, and so is its namespace.
#[tokio::test]
async fn namespace_scoped_releases_coexist_and_leave_other_namespaces_alone() {
    // No CRD yet: the first release installs it.
    let cp = ControlPlane::start(&Default::default()).await.unwrap();
    let client = cp.client().await.unwrap();
    let mut namespaces = Vec::new();
    for prefix in ["team-a", "team-b", "keys-a", "keys-b", "elsewhere"] {
        namespaces.push(cp.namespace(prefix).await.unwrap());
    }
    let [team_a, team_b, keys_a, keys_b, elsewhere] = namespaces.try_into().unwrap();
    let mut webhooks = Vec::new();
    let mut url_a = None;
    for (release, release_ns, team, owns_crd) in [
        ("a", &keys_a, &team_a, "true"),
        ("b", &keys_b, &team_b, "false"),
    ] {
        let watch = format!("watchNamespaces={{{team}}}");
        let crd = format!("crds.install={owns_crd}");
        let mut args = vec![
            "install", release, CHART, "-n", release_ns, "--set", &watch, "--set", &crd,
        ];
        // Without MutatingAdmissionPolicy, each release's webhook adds the finalizer: each runs
        // here, reached by URL, scoped to its release's namespaces like the policy.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url =
            format!("admissionPolicy.requesterWebhook.url=https://127.0.0.1:{port}/requester");
        if !dmk_control_plane::versions::serves_mutating_policies() {
            args.extend(["--set", &url]);
        }
        helm(&cp, &args);
        if release == "a" {
            url_a = Some(url.clone());
        }
        if !dmk_control_plane::versions::serves_mutating_policies() {
            let fullname = format!("{release}-dataminer-keys-operator");
            let flags = [
                "--webhook-only".to_string(),
                format!("--requester-webhook={fullname}-record-requester"),
                format!("--webhook-address=127.0.0.1:{port}"),
                "--webhook-host=127.0.0.1".to_string(),
                format!("--webhook-secret={fullname}-webhook-tls"),
                "--webhook-add-finalizer=true".to_string(),
                format!("--leader-election-namespace={release_ns}"),
                format!("--lease-name={fullname}"),
            ];
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            webhooks.push(common::operator::Operator::start_with(&cp, team, &flags));
        }
    }
    // The CRD belongs to release a, kept on uninstall, and an upgrade manages it.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd_name = "dataminerkeysets.keys.dataminer.services";
    let annotations = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        crd.metadata.annotations.clone().unwrap_or_default()
    };
    let crd = crds.get(crd_name).await.unwrap();
    assert_eq!(annotations(&crd)["meta.helm.sh/release-name"], "a");
    assert_eq!(annotations(&crd)["helm.sh/resource-policy"], "keep");
    let watch_a = format!("watchNamespaces={{{team_a}}}");
    let url_a = url_a.unwrap();
    let mut upgrade = vec![
        "upgrade",
        "a",
        CHART,
        "-n",
        &keys_a,
        "--set",
        &watch_a,
        "--set",
        "crds.keep=false",
    ];
    if !dmk_control_plane::versions::serves_mutating_policies() {
        upgrade.extend(["--set", &url_a]);
    }
    helm(&cp, &upgrade);
    let crd = crds.get(crd_name).await.unwrap();
    assert!(
        !annotations(&crd).contains_key("helm.sh/resource-policy"),
        "the upgrade rewrote the CRD: {:?}",
        annotations(&crd)
    );
    common::eventually(30, "the CRD established", || {
        let crds = crds.clone();
        async move {
            let crd = crds.get(crd_name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await;
    // Each release has its own user roles.
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    for role in [
        "a-dataminer-keys-operator-admin",
        "b-dataminer-keys-operator-admin",
        "a-dataminer-keys-operator-viewer",
    ] {
        roles
            .get(role)
            .await
            .unwrap_or_else(|e| panic!("{role}: {e}"));
    }

    // In a watched namespace the release's policy adds the finalizer as the key set is created
    // (policies take effect asynchronously: retried until it does).
    let finalizers = |ns: String, name: &'static str| {
        let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &ns);
        async move {
            let _ = keysets.delete(name, &Default::default()).await;
            common::gone(&keysets, name, "the probe key set").await;
            apply(&keysets, &org_keyset(name)).await.unwrap();
            keysets
                .get(name)
                .await
                .unwrap()
                .metadata
                .finalizers
                .unwrap_or_default()
        }
    };
    common::eventually(30, "the finalizer policy in force in team-a", || {
        let f = finalizers(team_a.clone(), "watched");
        async move { (!f.await.is_empty()).then_some(()) }
    })
    .await;

    // Elsewhere: no finalizer, the delete is immediate, and so is the namespace's.
    assert_eq!(
        finalizers(elsewhere.clone(), "unwatched").await,
        Vec::<String>::new()
    );
    let keysets: Api<DataMinerKeySet> = Api::namespaced(client.clone(), &elsewhere);
    keysets
        .delete("unwatched", &Default::default())
        .await
        .unwrap();
    assert!(
        keysets.get_opt("unwatched").await.unwrap().is_none(),
        "deleted at once"
    );
    apply(&keysets, &org_keyset("left-behind")).await.unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .delete(&elsewhere, &Default::default())
        .await
        .unwrap();
    common::gone(&namespaces, &elsewhere, "the unwatched namespace").await;
    cp.stop();
}
