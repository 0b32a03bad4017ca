//! Facts derived from a key set alone: which slot is which, its Secret's name, the data key
//! names, scope and target, and per-slot accessors. They belong to the API object, so every
//! layer above (plan, Secret, status, controller, plugin) uses them from here.

use kube::ResourceExt;

use super::{
    AdoptSpec, DEFAULT_PRIMARY_KEY_NAME, DEFAULT_SECONDARY_KEY_NAME, DEFAULT_SECRET_SUFFIX,
    DataMinerKeySet, DataMinerKeySetSpec, DataMinerKeySetStatus, KeyStatus, RegenerateRequest,
};

/// One of the two keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Primary,
    Secondary,
}

impl Slot {
    pub const BOTH: [Slot; 2] = [Slot::Primary, Slot::Secondary];

    pub fn name(self) -> &'static str {
        match self {
            Slot::Primary => "primary",
            Slot::Secondary => "secondary",
        }
    }

    /// Position in `[primary, secondary]` arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl DataMinerKeySet {
    /// The Secret name: `spec.secret.name`, or `<metadata.name>-keys`.
    pub fn secret_name(&self) -> String {
        self.spec
            .secret
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| format!("{}{DEFAULT_SECRET_SUFFIX}", self.name_any()))
    }

    /// What status records for `slot`, if there is a status.
    pub fn recorded(&self, slot: Slot) -> Option<&KeyStatus> {
        self.status.as_ref()?.slot(slot)
    }
}

impl DataMinerKeySetSpec {
    /// Data key names of the primary and secondary key.
    pub fn data_key_names(&self) -> [String; 2] {
        let s = self.secret.as_ref();
        [
            s.and_then(|s| s.primary_key_name.clone())
                .unwrap_or_else(|| DEFAULT_PRIMARY_KEY_NAME.into()),
            s.and_then(|s| s.secondary_key_name.clone())
                .unwrap_or_else(|| DEFAULT_SECONDARY_KEY_NAME.into()),
        ]
    }

    /// `Organization` or `System`, and the organization or system name.
    pub fn scope_and_target(&self) -> (&'static str, String) {
        match (&self.scope.organization, &self.scope.system) {
            (Some(org), _) => ("Organization", org.name.clone()),
            (None, Some(sys)) => ("System", sys.name.clone()),
            (None, None) => ("Unknown", String::new()),
        }
    }

    /// The adoption request not yet honoured (above the one status records), if any.
    pub fn pending_adoption(&self, status: &DataMinerKeySetStatus) -> Option<&AdoptSpec> {
        let done = status.adopted_request.unwrap_or(0);
        self.adopt.as_deref().filter(|a| a.request > done)
    }

    /// The regenerate request for `slot`, if any.
    pub fn request(&self, slot: Slot) -> Option<&RegenerateRequest> {
        let r = self.regenerate.as_ref()?;
        match slot {
            Slot::Primary => r.primary.as_ref(),
            Slot::Secondary => r.secondary.as_ref(),
        }
    }
}

impl DataMinerKeySetStatus {
    /// What status records for `slot`.
    pub fn slot(&self, slot: Slot) -> Option<&KeyStatus> {
        match slot {
            Slot::Primary => self.primary.as_ref(),
            Slot::Secondary => self.secondary.as_ref(),
        }
    }
}
