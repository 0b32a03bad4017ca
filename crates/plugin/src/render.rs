//! What `kubectl dmkeys` prints: tables and descriptions, pure functions of the objects.

use k8s_openapi::{api::events::v1::Event, jiff::Timestamp};
use kube::ResourceExt;

use crate::api::{DataMinerKeySet, KeyStatus, READY, printable};

/// `2m`, `3h`, `5d`, the way kubectl shows ages.
pub fn age(since: Option<&Timestamp>, now: Timestamp) -> String {
    let Some(since) = since else {
        return "<unknown>".into();
    };
    let secs = now.as_second().saturating_sub(since.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The Ready condition's status and reason (the reason says what Ready means: KeysReady,
/// Revoked, or the problem to fix), as `kubectl get dmks` shows them.
fn ready(ks: &DataMinerKeySet) -> (String, String) {
    ks.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_else(|| ("Unknown".into(), "-".into()))
}

fn revision(k: Option<&KeyStatus>) -> String {
    k.map(|k| k.revision.to_string())
        .unwrap_or_else(|| "-".into())
}

/// The `list` table; `wide` adds the namespace-independent details.
pub fn table(
    items: &[DataMinerKeySet],
    all_namespaces: bool,
    wide: bool,
    now: Timestamp,
) -> String {
    let mut header = vec![];
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend([
        "NAME",
        "LABEL",
        "SCOPE",
        "TARGET",
        "PERMISSIONS",
        "READY",
        "REASON",
        "PRIMARY",
        "SECONDARY",
        "AGE",
    ]);
    if wide {
        header.extend(["SECRET", "PRIMARY-FP", "SECONDARY-FP", "CREATED-BY"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for ks in items {
        let (scope, target) = ks.spec.scope_and_target();
        let status = ks.status.clone().unwrap_or_default();
        let permissions: Vec<&str> = ks.spec.permissions.iter().map(|p| p.as_str()).collect();
        let (ready, reason) = ready(ks);
        let mut row = vec![];
        if all_namespaces {
            row.push(ks.namespace().unwrap_or_default());
        }
        row.extend([
            ks.name_any(),
            ks.spec.label.clone(),
            scope.to_string(),
            target,
            if permissions.is_empty() {
                "-".into()
            } else {
                permissions.join(",")
            },
            ready,
            reason,
            revision(status.primary.as_ref()),
            revision(status.secondary.as_ref()),
            age(ks.metadata.creation_timestamp.as_ref().map(|t| &t.0), now),
        ]);
        if wide {
            row.extend([
                status.secret_name.clone().unwrap_or_else(|| "-".into()),
                status
                    .primary
                    .map(|k| k.fingerprint)
                    .unwrap_or_else(|| "-".into()),
                status
                    .secondary
                    .map(|k| k.fingerprint)
                    .unwrap_or_else(|| "-".into()),
                status.created_by.unwrap_or_else(|| "<unknown>".into()),
            ]);
        }
        rows.push(row);
    }
    align(&rows)
}

/// Aligns the cells in columns. Every cell is made printable first: labels, names, messages
/// and notes are users' text, never terminal control (issue 21).
fn align(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|v| printable(v).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i + 1 == row.len() {
                    v.clone()
                } else {
                    format!("{v:<width$}", width = widths[i])
                }
            })
            .collect();
        out += line.join("   ").trim_end();
        out.push('\n');
    }
    out
}

/// `describe`: everything about a key set except its key values.
/// `events`: those about the key set, or why they could not be read.
pub fn describe(
    ks: &DataMinerKeySet,
    events: &Result<Vec<Event>, String>,
    now: Timestamp,
) -> String {
    let status = ks.status.clone().unwrap_or_default();
    let (scope, target) = ks.spec.scope_and_target();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out += &format!("{k:<14}{}\n", printable(&v));
    line("Name:", ks.name_any());
    line("Namespace:", ks.namespace().unwrap_or_default());
    line("Label:", ks.spec.label.clone());
    line("Scope:", format!("{scope} {target}"));
    let permissions: Vec<&str> = ks.spec.permissions.iter().map(|p| p.as_str()).collect();
    line(
        "Permissions:",
        if permissions.is_empty() {
            "-".into()
        } else {
            permissions.join(", ")
        },
    );
    line(
        "Created:",
        status
            .created_at
            .as_ref()
            .map(|t| format!("{} ({} ago)", t.0, age(Some(&t.0), now)))
            .unwrap_or_else(|| "-".into()),
    );
    line(
        "Created by:",
        status
            .created_by
            .clone()
            .unwrap_or_else(|| "<unknown>".into()),
    );
    line(
        "Secret:",
        status.secret_name.clone().unwrap_or_else(|| "-".into()),
    );
    for (name, key) in [
        ("Primary:", &status.primary),
        ("Secondary:", &status.secondary),
    ] {
        line(
            name,
            key.as_ref()
                .map(|k| {
                    format!(
                        "revision {}, generated {}, {}",
                        k.revision, k.generated_at.0, k.fingerprint
                    )
                })
                .unwrap_or_else(|| "-".into()),
        );
    }
    if let Some(at) = &status.revoked_at {
        line(
            "Revoked:",
            format!(
                "{} by {}",
                at.0,
                status
                    .revoked_by
                    .clone()
                    .unwrap_or_else(|| "<unknown>".into())
            ),
        );
    }
    out += "Conditions:\n";
    for c in &status.conditions {
        out += &format!(
            "  {:<8} {:<6} {:<22} {}\n",
            printable(&c.type_),
            printable(&c.status),
            printable(&c.reason),
            printable(&c.message)
        );
    }
    out += "History:\n";
    for h in &status.history {
        let mut parts = vec![h.at.0.to_string(), h.action.clone()];
        if let Some(r) = h.revision {
            parts.push(format!("revision {r}"));
        }
        if let Some(f) = &h.fingerprint {
            parts.push(f.clone());
        }
        if let Some(b) = &h.by {
            parts.push(format!("by {b}"));
        }
        if let Some(o) = &h.on_behalf_of {
            parts.push(format!("on behalf of {o} (unverified)"));
        }
        out += &format!("  {}\n", printable(&parts.join("  ")));
    }
    out += "Events:\n";
    match events {
        Err(why) => out += &format!("  <cannot list Events: {}>\n", printable(why)),
        Ok(events) if events.is_empty() => out += "  <none>\n",
        Ok(events) => {
            for e in events {
                out += &format!(
                    "  {:<8} {:<24} {}\n",
                    printable(e.type_.as_deref().unwrap_or_default()),
                    printable(e.reason.as_deref().unwrap_or_default()),
                    printable(e.note.as_deref().unwrap_or_default())
                );
            }
        }
    }
    out
}

/// The OSC 52 escape sequence that asks the terminal to put `value` on the clipboard.
pub fn osc52(value: &str) -> String {
    use base64::Engine;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(name: &str) -> DataMinerKeySet {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
            "metadata": { "name": name, "namespace": "ns", "creationTimestamp": "2026-11-26T10:00:00Z" },
            "spec": { "label": "CI pipeline", "scope": { "organization": { "name": "org" } },
                      "permissions": ["RegisterCatalogItems"] },
            "status": {
                "primary": { "revision": 2, "generatedAt": "2026-11-26T11:00:00Z", "fingerprint": "sha256:aaaaaaaa" },
                "secondary": { "revision": 1, "generatedAt": "2026-11-26T10:00:00Z", "fingerprint": "sha256:bbbbbbbb" },
                "secretName": "ks-keys",
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KeysReady", "message": "ok",
                                 "lastTransitionTime": "2026-11-26T10:00:00Z" }]
            }
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-26T13:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_table_has_kubectl_style_columns() {
        let t = table(&[ks("catalog-ci")], false, false, now());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{t}");
        assert!(lines[1].contains("catalog-ci"));
        assert!(lines[1].contains("CI pipeline"));
        assert!(lines[1].contains("Organization"));
        assert!(lines[1].ends_with("3h"), "{t}");
        let wide = table(&[ks("catalog-ci")], true, true, now());
        assert!(wide.starts_with("NAMESPACE"));
        assert!(wide.contains("sha256:aaaaaaaa"));
        assert!(
            wide.lines().next().unwrap().ends_with("CREATED-BY"),
            "{wide}"
        );
        assert!(
            wide.lines().nth(1).unwrap().ends_with("<unknown>"),
            "{wide}"
        );
    }

    #[test]
    fn describe_names_who_asked_and_marks_on_behalf_of_unverified() {
        let mut k = ks("catalog-ci");
        let status = k.status.as_mut().unwrap();
        status.created_by = Some("user-a@example.com".into());
        status.history = vec![crate::api::HistoryEntry {
            action: "RegenerateSecondary".into(),
            slot: Some("secondary".into()),
            revision: Some(2),
            at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()),
            by: Some("system:serviceaccount:argocd:argocd-application-controller".into()),
            on_behalf_of: Some("Alice <alice@example.com>".into()),
            fingerprint: Some("sha256:cccccccc".into()),
        }];
        let d = describe(
            &k,
            &Err(
                "events.events.k8s.io is forbidden: User \"alice\" cannot list resource \"events\""
                    .into(),
            ),
            now(),
        );
        assert!(
            d.contains("Events:\n  <cannot list Events: events.events.k8s.io is forbidden"),
            "{d}"
        );
        assert!(!d.contains("<none>"), "{d}");
        assert!(d.contains("Created by:   user-a@example.com"), "{d}");
        assert!(
            d.contains("by system:serviceaccount:argocd:argocd-application-controller  on behalf of Alice <alice@example.com> (unverified)"),
            "{d}"
        );
        let wide = table(&[k], false, true, now());
        assert!(
            wide.lines().nth(1).unwrap().ends_with("user-a@example.com"),
            "{wide}"
        );
    }

    #[test]
    fn describe_shows_revisions_and_fingerprints() {
        let d = describe(&ks("catalog-ci"), &Ok(vec![]), now());
        assert!(d.contains("revision 2"), "{d}");
        assert!(d.contains("sha256:aaaaaaaa"));
        assert!(d.contains("Created by:   <unknown>"));
    }

    #[test]
    fn osc52_wraps_the_value_in_base64() {
        assert_eq!(osc52("abc"), "\x1b]52;c;YWJj\x07");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let t0: Timestamp = "2026-11-26T12:59:00Z".parse().unwrap();
        assert_eq!(age(Some(&t0), now()), "60s");
        assert_eq!(age(None, now()), "<unknown>");
    }
}
