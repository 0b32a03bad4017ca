//! Requests as kube-apiserver counts them (`apiserver_request_total`), by verb and resource.

use std::collections::BTreeMap;

use kube::Client;
use serde::Serialize;

use crate::Result;

/// Request counts keyed `VERB resource[/subresource]`. Non-resource requests (`/metrics`,
/// discovery) are left out: the operator makes none after start-up, the bench makes them to
/// measure.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Requests(pub BTreeMap<String, f64>);

impl Requests {
    pub async fn scrape(client: &Client) -> Result<Requests> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let text = client
            .request_text(request)
            .await
            .map_err(|e| format!("reading kube-apiserver /metrics: {e}"))?;
        Ok(Requests::parse(&text))
    }

    fn parse(text: &str) -> Requests {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |name: &str| -> String {
                let key = format!("{name}=\"");
                labels
                    .split(",")
                    .find_map(|kv| kv.strip_prefix(&key))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let resource = label("resource");
            if resource.is_empty() {
                continue;
            }
            let subresource = label("subresource");
            let key = match subresource.as_str() {
                "" => format!("{} {resource}", label("verb")),
                sub => format!("{} {resource}/{sub}", label("verb")),
            };
            *out.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
        }
        Requests(out)
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let d = v - earlier.0.get(k).copied().unwrap_or(0.0);
            if d > 0.0 {
                out.insert(k.clone(), d);
            }
        }
        Requests(out)
    }

    /// These counts without `other`'s (the bench's own requests).
    pub fn minus(&self, other: &Requests) -> Requests {
        let mut out = self.0.clone();
        for (k, v) in &other.0 {
            if let Some(mine) = out.get_mut(k) {
                *mine -= v;
            }
        }
        out.retain(|_, v| *v > 0.0);
        Requests(out)
    }

    pub fn add(&mut self, key: &str, n: f64) {
        *self.0.entry(key.to_string()).or_insert(0.0) += n;
    }

    // `0.0 +`: a float sum of nothing is -0.0.
    pub fn total(&self) -> f64 {
        0.0 + self.0.values().sum::<f64>()
    }

    /// Writes only: every verb but GET, LIST and WATCH.
    pub fn writes(&self) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| !["GET ", "LIST ", "WATCH "].iter().any(|r| k.starts_with(r)))
            .fold(0.0, |sum, (_, v)| sum + v)
    }

    /// Reads that reached the API server as single-object GETs or LISTs (watches excluded).
    pub fn reads(&self) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with("GET ") || k.starts_with("LIST "))
            .fold(0.0, |sum, (_, v)| sum + v)
    }

    /// Only the resources the operator uses (key sets, their status, Secrets, Events, Leases):
    /// the rest (kube-controller-manager re-opening its watches, the API server's own
    /// endpoints) cannot be the operator's. Returns (the operator's, the others).
    pub fn split_operator(&self) -> (Requests, Requests) {
        const OURS: [&str; 5] = [
            "dataminerkeysets",
            "dataminerkeysets/status",
            "secrets",
            "events",
            "leases",
        ];
        let (ours, others) = self
            .0
            .clone()
            .into_iter()
            .partition(|(k, _)| k.rsplit_once(' ').is_some_and(|(_, r)| OURS.contains(&r)));
        (Requests(ours), Requests(others))
    }

    /// Requests other than the Lease's.
    pub fn without_leases(&self) -> Requests {
        let mut out = self.0.clone();
        out.retain(|k, _| !k.ends_with(" leases"));
        Requests(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_verb_and_resource_and_skips_non_resource_requests() {
        let text = r#"
# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="keys.dataminer.services",resource="dataminerkeysets",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 2
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 9
"#;
        let r = Requests::parse(text);
        assert_eq!(r.0.get("POST secrets"), Some(&4.0));
        assert_eq!(r.0.get("APPLY dataminerkeysets/status"), Some(&2.0));
        assert_eq!(r.0.len(), 2);
        assert_eq!(r.writes(), 6.0);
        let (ours, others) =
            Requests::parse(&text.replace("\"secrets\"", "\"configmaps\"")).split_operator();
        assert_eq!(
            ours.0.keys().collect::<Vec<_>>(),
            ["APPLY dataminerkeysets/status"]
        );
        assert_eq!(others.0.keys().collect::<Vec<_>>(), ["POST configmaps"]);
        let later = Requests::parse(&text.replace("} 3", "} 5"));
        assert_eq!(
            later.since(&r).0,
            BTreeMap::from([("POST secrets".into(), 2.0)])
        );
    }
}
