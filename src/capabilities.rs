//! What the cluster's Kubernetes release serves that changes how the operator works, probed
//! once at start-up: the one place the operator decides by version (the chart decides the same
//! at render time from `.Capabilities`; README, "Supported versions").
//!
//! Only who records the requester differs today. Everything else the operator uses (server-side
//! apply, the Events API, CEL rules and ValidatingAdmissionPolicy) is served alike from 1.34 on.

use kube::Client;

/// The MutatingAdmissionPolicy versions the operator looks for, newest first.
const POLICY_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `admissionregistration.k8s.io/<version>` of the newest MutatingAdmissionPolicy served.
    pub mutating_policy: Option<&'static str>,
}

/// Who writes the requester annotations on this cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorder {
    /// The chart's MutatingAdmissionPolicy (of this version).
    Policy(&'static str),
    /// This operator's webhook.
    Webhook,
    /// Nobody: the requester fields read "unknown".
    Nobody,
}

impl Capabilities {
    /// Asks discovery; a group the server cannot list counts as not served.
    pub async fn probe(client: &Client) -> Capabilities {
        for version in POLICY_VERSIONS {
            let group = format!("admissionregistration.k8s.io/{version}");
            if let Ok(list) = client.list_api_group_resources(&group).await
                && list
                    .resources
                    .iter()
                    .any(|r| r.name == "mutatingadmissionpolicies")
            {
                return Capabilities {
                    mutating_policy: Some(version),
                };
            }
        }
        Capabilities {
            mutating_policy: None,
        }
    }

    /// Who records the requester, given whether this operator serves the webhook. The chart
    /// renders the webhook only where no policy is served, so both at once means an install
    /// by hand; the policy then stamps first and the webhook finds nothing left to do.
    pub fn recorder(&self, serves_webhook: bool) -> Recorder {
        match (self.mutating_policy, serves_webhook) {
            (_, true) => Recorder::Webhook,
            (Some(version), false) => Recorder::Policy(version),
            (None, false) => Recorder::Nobody,
        }
    }
}

/// Says at start-up who records the requester, and warns when nobody can.
pub fn report(capabilities: &Capabilities, serves_webhook: bool) {
    match capabilities.recorder(serves_webhook) {
        Recorder::Webhook => tracing::info!(
            mutating_admission_policy = capabilities.mutating_policy.unwrap_or("not served"),
            "requesters recorded by this operator's webhook"
        ),
        Recorder::Policy(version) => tracing::info!(
            mutating_admission_policy = version,
            "requesters recorded by the chart's MutatingAdmissionPolicy (when installed)"
        ),
        Recorder::Nobody => tracing::warn!(
            "this cluster serves no MutatingAdmissionPolicy and this operator serves no requester webhook: who created, rotated or revoked a key set reads \"unknown\" (install the chart, whose webhook records it; docs/audit.md)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_wins_then_the_policy_then_nobody() {
        let v1 = Capabilities {
            mutating_policy: Some("v1"),
        };
        let none = Capabilities {
            mutating_policy: None,
        };
        assert_eq!(v1.recorder(false), Recorder::Policy("v1"));
        assert_eq!(v1.recorder(true), Recorder::Webhook);
        assert_eq!(none.recorder(true), Recorder::Webhook);
        assert_eq!(none.recorder(false), Recorder::Nobody);
    }
}
