//! `DataMinerKeySet` spec: what a user writes, with the admission rules (CEL) beside the fields
//! they guard. Every rule's message says what to type instead.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::DataMinerKeySetStatus;

/// Default name of the Secret: `<metadata.name>` + this suffix.
pub const DEFAULT_SECRET_SUFFIX: &str = "-keys";
pub const DEFAULT_PRIMARY_KEY_NAME: &str = "primaryKey";
pub const DEFAULT_SECONDARY_KEY_NAME: &str = "secondaryKey";

/// A DataMiner key set: a label, a primary and a secondary key, scoped to an organization or
/// to one DataMiner System. The operator keeps both keys in a Secret; `spec.regenerate` and
/// `spec.revoke`, confirmed by repeating the label, rotate or destroy them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "keys.dataminer.services",
    version = "v1alpha1",
    kind = "DataMinerKeySet",
    plural = "dataminerkeysets",
    namespaced,
    shortname = "dmks",
    shortname = "keyset",
    category = "dataminer",
    status = "DataMinerKeySetStatus",
    derive = "PartialEq",
    doc = "A DataMiner key set (label, primary and secondary key) reconciled into a Secret.",
    printcolumn(name = "Label", type_ = "string", json_path = ".spec.label"),
    printcolumn(name = "Scope", type_ = "string", json_path = ".status.scope"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.target"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    // Says what Ready means here: KeysReady, Revoked, KeysPending, or the problem to fix.
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Primary rev", type_ = "integer", json_path = ".status.primary.revision"),
    printcolumn(
        name = "Secondary rev",
        type_ = "integer",
        json_path = ".status.secondary.revision"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it becomes the value of the keys.dataminer.services/keyset label on the Secret, and label values are limited to 63; choose a shorter name"),
    validation = Rule::new(
        "(has(self.spec.secret) && has(self.spec.secret.name) ? self.spec.secret.name : self.metadata.name + '-keys') == (has(oldSelf.spec.secret) && has(oldSelf.spec.secret.name) ? oldSelf.spec.secret.name : oldSelf.metadata.name + '-keys')"
    )
    .message("spec.secret.name is immutable: the Secret name is fixed when the key set is created; keep the previous value (or leave it unset if it was unset)")
    .field_path(".spec.secret.name"),
    validation = Rule::new(
        "(has(self.spec.secret) && has(self.spec.secret.primaryKeyName) ? self.spec.secret.primaryKeyName : 'primaryKey') == (has(oldSelf.spec.secret) && has(oldSelf.spec.secret.primaryKeyName) ? oldSelf.spec.secret.primaryKeyName : 'primaryKey') && (has(self.spec.secret) && has(self.spec.secret.secondaryKeyName) ? self.spec.secret.secondaryKeyName : 'secondaryKey') == (has(oldSelf.spec.secret) && has(oldSelf.spec.secret.secondaryKeyName) ? oldSelf.spec.secret.secondaryKeyName : 'secondaryKey')"
    )
    .message("spec.secret.primaryKeyName and secondaryKeyName are immutable: consumers mount these names; keep the previous values (or leave them unset if they were unset)")
    .field_path(".spec.secret"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "!has(self.scope.organization) || (has(self.permissions) && size(self.permissions) > 0)"
    )
    .message("an organization key set needs at least one permission: set spec.permissions, for example [RegisterCatalogItems]")
    .field_path(".permissions"),
    validation = Rule::new(
        "!has(self.scope.system) || !has(self.permissions) || size(self.permissions) == 0"
    )
    .message("a system key set takes no permissions (they exist only for organization keys): remove spec.permissions")
    .field_path(".permissions"),
    validation = Rule::new(
        "!has(self.regenerate) || !has(self.regenerate.primary) || self.regenerate.primary.confirmLabel == self.label"
    )
    .message(Message::Expression(
        "'spec.regenerate.primary.confirmLabel must repeat the label exactly to confirm: set it to \"' + self.label + '\"'".into()
    ))
    .field_path(".regenerate.primary.confirmLabel"),
    validation = Rule::new(
        "!has(self.regenerate) || !has(self.regenerate.secondary) || self.regenerate.secondary.confirmLabel == self.label"
    )
    .message(Message::Expression(
        "'spec.regenerate.secondary.confirmLabel must repeat the label exactly to confirm: set it to \"' + self.label + '\"'".into()
    ))
    .field_path(".regenerate.secondary.confirmLabel"),
    validation = Rule::new("!has(self.revoke) || self.revoke.confirmLabel == self.label")
        .message(Message::Expression(
            "'spec.revoke.confirmLabel must repeat the label exactly to confirm: set it to \"' + self.label + '\"'".into()
        ))
        .field_path(".revoke.confirmLabel"),
    validation = Rule::new("!has(self.adopt) || self.adopt.confirmLabel == self.label")
        .message(Message::Expression(
            "'spec.adopt.confirmLabel must repeat the label exactly to confirm: set it to \"' + self.label + '\"'".into()
        ))
        .field_path(".adopt.confirmLabel"),
    validation = Rule::new("!has(oldSelf.revoke) || has(self.revoke)")
        .message("spec.revoke cannot be removed: revocation is final; create a new DataMinerKeySet to get new keys")
        .field_path(".revoke"),
    validation = Rule::new(
        "self.label == oldSelf.label || ((has(self.regenerate) && has(self.regenerate.primary) ? self.regenerate.primary.revision : 0) <= (has(oldSelf.regenerate) && has(oldSelf.regenerate.primary) ? oldSelf.regenerate.primary.revision : 0) && (has(self.regenerate) && has(self.regenerate.secondary) ? self.regenerate.secondary.revision : 0) <= (has(oldSelf.regenerate) && has(oldSelf.regenerate.secondary) ? oldSelf.regenerate.secondary.revision : 0) && (!has(self.revoke) || has(oldSelf.revoke)) && (has(self.adopt) ? self.adopt.request : 0) <= (has(oldSelf.adopt) ? oldSelf.adopt.request : 0))"
    )
    .message("spec.label cannot change in the same update that adds or raises a regenerate, revoke or adopt request: apply the new label first, then the request")
    .field_path(".label"),
)]
pub struct DataMinerKeySetSpec {
    /// Human-readable name of the key set; also the phrase to type in `confirmLabel` to
    /// regenerate or revoke. 1 to 100 characters, no leading or trailing whitespace.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(
        validation = Rule::new(concat!(
            "!self.matches(r'^", crate::whitespace_class!(), "') && !self.matches(r'",
            crate::whitespace_class!(), "$')"
        ))
            .message("spec.label must not start or end with whitespace (spaces, tabs, line breaks, no-break spaces or any other Unicode whitespace): remove it"),
        validation = Rule::new(concat!("!self.matches(r'", crate::control_class!(), "')"))
            .message("spec.label must not contain control characters (line breaks, tabs, escape sequences, C1 controls): type it as plain text")
    )]
    pub label: String,

    /// Where the keys are valid: exactly one of `organization` or `system`. Immutable.
    pub scope: Scope,

    /// What an organization key may do (at least one, no duplicates). Must be empty for system
    /// keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(
        validation = Rule::new("self.all(p, self.exists_one(q, q == p))")
            .message("spec.permissions lists a permission more than once: list each permission once")
    )]
    pub permissions: Vec<Permission>,

    /// How new keys are encoded. Applies to keys generated from then on.
    #[serde(default)]
    pub key_format: KeyFormat,

    /// Where and how the keys are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Box<SecretSpec>>,

    /// Rotation requests: raise a slot's `revision` (and repeat the label in `confirmLabel`) to
    /// get a new key in that slot, exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regenerate: Option<RegenerateSpec>,

    /// Revocation: when present (with the label repeated in `confirmLabel`) both keys are
    /// destroyed and never generated again for this object. Cannot be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Box<RevokeSpec>>,

    /// The way out when the operator's proof key is lost (docs/backup.md): raise `request` (and
    /// repeat the label in `confirmLabel`) to take the values now in the Secret as this set's
    /// keys, exactly once per request, without proof that the operator wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Box<AdoptSpec>>,
}

/// Exactly one of `organization` or `system`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.organization) != has(self.system)")
        .message("spec.scope needs exactly one of organization: {name: ...} or system: {name: ...}"),
    validation = Rule::new("self == oldSelf")
        .message("spec.scope is immutable: to use another organization or system, create a new DataMinerKeySet"),
)]
pub struct Scope {
    /// Organization keys (register Catalog items, add DataMiner nodes, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationScope>,
    /// System keys: deploy Automation scripts and packages to one DataMiner System.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Box<SystemScope>>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationScope {
    /// Organization name on dataminer.services.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SystemScope {
    /// DataMiner System name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Organization the system belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub organization: Option<String>,
}

/// Documented permissions of organization keys.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum Permission {
    RegisterCatalogItems,
    /// "Add DataMiner nodes", later renamed "Add DataMiner System".
    AddDataMinerNodes,
    UpdateCatalogPublishingState,
    DeployCatalogItemVersion,
    DownloadCatalogVersions,
    ReadCatalogItems,
    RetrieveUsageData,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::RegisterCatalogItems => "RegisterCatalogItems",
            Permission::AddDataMinerNodes => "AddDataMinerNodes",
            Permission::UpdateCatalogPublishingState => "UpdateCatalogPublishingState",
            Permission::DeployCatalogItemVersion => "DeployCatalogItemVersion",
            Permission::DownloadCatalogVersions => "DownloadCatalogVersions",
            Permission::ReadCatalogItems => "ReadCatalogItems",
            Permission::RetrieveUsageData => "RetrieveUsageData",
        }
    }
}

/// Encoding of generated keys.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum KeyFormat {
    /// 16 random bytes as 32 lowercase hex characters (128 bits), as dataminer.services issues.
    #[default]
    Hex32,
    /// 32 random bytes as 43 unpadded base64url characters (256 bits).
    Base64Url256,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "(has(self.primaryKeyName) ? self.primaryKeyName : 'primaryKey') != (has(self.secondaryKeyName) ? self.secondaryKeyName : 'secondaryKey')"
    )
    .message("spec.secret.primaryKeyName and spec.secret.secondaryKeyName must differ: pick two names")
)]
pub struct SecretSpec {
    /// Secret name; defaults to `<metadata.name>-keys`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')")
            .message("spec.secret.name must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")
    )]
    pub name: Option<String>,
    /// Data key of the primary key in the Secret (default `primaryKey`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')")
            .message("spec.secret.primaryKeyName must be a valid Secret data key: letters, digits, '-', '_' and '.'")
    )]
    pub primary_key_name: Option<String>,
    /// Data key of the secondary key in the Secret (default `secondaryKey`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(
        validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')")
            .message("spec.secret.secondaryKeyName must be a valid Secret data key: letters, digits, '-', '_' and '.'")
    )]
    pub secondary_key_name: Option<String>,
    /// Extra labels for the Secret; the operator's own labels win on conflict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 64,
        "additionalProperties" = { "type": "string", "maxLength": 63 }
    ))]
    #[x_kube(
        validation = Rule::new(concat!(
            "self.all(k, k.matches(r'", crate::qualified_name_pattern!(),
            "') && k.matches(r'^([^/]{1,253}/)?[^/]+$'))"
        ))
        .message("spec.secret.labels: every key must be a valid label key: an optional DNS prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (for example example.com/team)"),
        validation = Rule::new(concat!(
            "self.all(k, self[k].matches(r'", crate::label_value_pattern!(), "'))"
        ))
        .message("spec.secret.labels: every value must be empty or 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"),
        validation = Rule::new(crate::denied_prefixes_rule())
            .message(DENIED_MESSAGE_LABELS),
    )]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations for the Secret; the operator's own annotations win on conflict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(
        validation = Rule::new(concat!(
            "self.all(k, k.matches(r'", crate::qualified_name_pattern!(),
            "') && k.matches(r'^([^/]{1,253}/)?[^/]+$'))"
        ))
        .message("spec.secret.annotations: every key must be a valid annotation key: an optional DNS prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (for example reloader.stakater.com/match)"),
        validation = Rule::new(crate::denied_prefixes_rule())
            .message(DENIED_MESSAGE_ANNOTATIONS),
    )]
    pub annotations: BTreeMap<String, String>,
}

const DENIED_MESSAGE_LABELS: &str = "spec.secret.labels: keys under replicator.v1.mittwald.de/, reflector.v1.k8s.emberstack.com/ or kubed.appscode.com/ make other controllers copy the Secret elsewhere and are refused (docs/security.md); remove them";
const DENIED_MESSAGE_ANNOTATIONS: &str = "spec.secret.annotations: keys under replicator.v1.mittwald.de/, reflector.v1.k8s.emberstack.com/ or kubed.appscode.com/ make other controllers copy the Secret elsewhere and are refused (docs/security.md); remove them";

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegenerateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<RegenerateRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<RegenerateRequest>,
}

/// The highest revision a key can have: admission refuses a request above it, and the operator
/// never writes one (a slot there cannot be replaced; create a new key set).
pub const MAX_REVISION: i64 = 1_000_000_000;

/// Ask for a key slot to be at `revision`. Raising it by any amount regenerates the key once.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.revision >= oldSelf.revision")
        .message("a regenerate revision cannot decrease: keep the current value, or raise it to request a new key")
        .field_path(".revision")
)]
pub struct RegenerateRequest {
    /// The revision this key should be at (the key set starts at 1).
    #[schemars(range(min = 1, max = MAX_REVISION))]
    pub revision: i64,
    /// Must equal `spec.label` exactly: the typed confirmation.
    #[schemars(length(max = 100))]
    pub confirm_label: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RevokeSpec {
    /// Must equal `spec.label` exactly: the typed confirmation.
    #[schemars(length(max = 100))]
    pub confirm_label: String,
}

/// Take the values now in the Secret as the key set's keys. Raising `request` by any amount
/// adopts once; the operator records the request it honoured in `status.adoptedRequest`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.request >= oldSelf.request")
        .message("spec.adopt.request cannot decrease: keep the current value, or raise it to adopt the Secret's values again")
        .field_path(".request")
)]
pub struct AdoptSpec {
    /// A number that only goes up: each new value asks for one adoption (start with 1).
    #[schemars(range(min = 1, max = MAX_REVISION))]
    pub request: i64,
    /// Must equal `spec.label` exactly: the typed confirmation.
    #[schemars(length(max = 100))]
    pub confirm_label: String,
}
