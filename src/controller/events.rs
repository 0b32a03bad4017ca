//! Publishing an Event: one POST of an `events.k8s.io/v1` Event, nothing kept.
//!
//! kube's `Recorder` keeps every Event it sent for six minutes, to count repeats as a series,
//! and scans that whole cache under one lock on every publish: at thousands of key sets that is
//! memory held and work serialized for nothing, since every Event of ours is unique (a change
//! names its revision and fingerprint; a problem is announced once while it lasts).

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{Api, Client, api::PostParams};

use crate::status::Queued;

/// Who reports: the controller's name and this replica.
pub struct Reporter {
    pub controller: String,
    pub instance: String,
}

/// The Event for `queued` about `regarding`.
pub fn event(reporter: &Reporter, queued: &Queued, regarding: ObjectReference) -> Event {
    let now = Timestamp::now();
    let name = regarding.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            // As kubectl and client-go name them: the object's name and a unique suffix.
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(queued.event.type_.clone()),
        reason: Some(queued.event.reason.clone()),
        action: Some(queued.event.action.clone()),
        note: Some(fit_note(queued.note())),
        regarding: Some(regarding),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        ..Default::default()
    }
}

/// events.k8s.io refuses a note over 1 KiB: a long Secret name, user name and on-behalf-of
/// together could pass it, and a refused Event fails the reconcile.
fn fit_note(note: String) -> String {
    crate::status::cut(note, 1024)
}

pub async fn publish(client: &Client, event: &Event) -> kube::Result<()> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
    Api::<Event>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), event)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::fit_note;

    #[test]
    fn a_note_fits_what_the_api_server_accepts() {
        assert_eq!(fit_note("short".into()), "short");
        let exact = "a".repeat(1024);
        assert_eq!(fit_note(exact.clone()), exact);
        let cut = fit_note("é".repeat(600));
        assert!(cut.len() <= 1024 && cut.ends_with('…'), "{}", cut.len());
    }
}
