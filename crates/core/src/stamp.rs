//! Who asked, decided at admission: the requester annotations one create or update of a key
//! set must carry (docs/audit.md). The chart's MutatingAdmissionPolicy says the same in CEL on
//! clusters that serve it; the operator's admission webhook applies this where they do not, so
//! both must stamp the same requests the same way (the tests of the two share their cases).
//!
//! Read from the raw request objects, not the typed key set: mutating admission runs before the
//! CRD schema is checked, so a request may not parse yet (it is refused later, with the schema's
//! message), and a missing field reads as "not asked for", as `has()` does in the policy.

use serde_json::Value;

use crate::api::{
    ADOPTED_BY_ANNOTATION, CREATED_BY_ANNOTATION, FINALIZER, PRIMARY_REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION, SECONDARY_REQUESTED_BY_ANNOTATION,
};

/// What one admission request says, as far as stamping goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    primary: i64,
    secondary: i64,
    revoke: bool,
    adopt: i64,
    annotations: Vec<(String, String)>,
    finalizers: Vec<String>,
}

impl Facts {
    /// Reads a key set object as the API server passes it in an AdmissionReview.
    pub fn read(object: &Value) -> Self {
        let spec = &object["spec"];
        let revision = |slot: &str| spec["regenerate"][slot]["revision"].as_i64().unwrap_or(0);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        Facts {
            primary: revision("primary"),
            secondary: revision("secondary"),
            revoke: spec.get("revoke").is_some_and(|r| !r.is_null()),
            adopt: spec["adopt"]["request"].as_i64().unwrap_or(0),
            annotations: object["metadata"]["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            finalizers: strings(&object["metadata"]["finalizers"]),
        }
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One request: its user, the object it would store, and (on UPDATE) the stored one.
pub struct Request<'a> {
    pub user: &'a str,
    pub object: &'a Facts,
    /// `None` on CREATE.
    pub old: Option<&'a Facts>,
    /// Add the operator's finalizer to a new key set (the chart's `addFinalizerOnCreate`).
    pub add_finalizer: bool,
}

/// What the request must carry before it is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Annotations to set (key, value), in [`crate::api::REQUESTER_ANNOTATIONS`] order.
    pub annotations: Vec<(&'static str, String)>,
    /// Whether to add the operator's finalizer.
    pub finalizer: bool,
}

impl Stamp {
    pub fn is_empty(&self) -> bool {
        self.annotations.is_empty() && !self.finalizer
    }
}

/// Decides the stamp: an action this request takes is recorded under its user; an annotation
/// the request drops (a `kubectl replace`, an Argo CD Replace sync) is put back from the stored
/// object; anything else is left as the request has it, for the validating policy to judge.
pub fn stamp(req: &Request) -> Stamp {
    let new = req.object;
    let none = Facts::default();
    let old = req.old.unwrap_or(&none);
    let create = req.old.is_none();
    let user = req.user;
    // The value this request must leave under `key`: its own when `acts`, else the stored one
    // when the request dropped it.
    let decide = |key: &'static str, acts: bool, value: String| -> Option<(&'static str, String)> {
        if acts {
            return Some((key, value));
        }
        match (old.annotation(key), new.annotation(key)) {
            (Some(kept), None) => Some((key, kept.to_string())),
            _ => None,
        }
    };
    let annotations = [
        decide(CREATED_BY_ANNOTATION, create, user.to_string()),
        decide(
            PRIMARY_REQUESTED_BY_ANNOTATION,
            new.primary > old.primary,
            format!("{user} (revision {})", new.primary),
        ),
        decide(
            SECONDARY_REQUESTED_BY_ANNOTATION,
            new.secondary > old.secondary,
            format!("{user} (revision {})", new.secondary),
        ),
        decide(
            REVOKED_BY_ANNOTATION,
            new.revoke && (create || !old.revoke),
            user.to_string(),
        ),
        decide(
            ADOPTED_BY_ANNOTATION,
            new.adopt > old.adopt,
            format!("{user} (request {})", new.adopt),
        ),
    ]
    .into_iter()
    .flatten()
    // Setting what the request already says is no change: leave it out of the patch.
    .filter(|(k, v)| new.annotation(k) != Some(v.as_str()))
    .collect();
    Stamp {
        annotations,
        finalizer: create && req.add_finalizer && !new.finalizers.iter().any(|f| f == FINALIZER),
    }
}

#[cfg(test)]
mod tests;
