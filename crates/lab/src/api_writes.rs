//! What the sandbox's API server spends its writes on: its own count of write requests by verb
//! and resource (`apiserver_request_total` on `/metrics`), read before and after a benchmark's
//! scale-out. Under a burst the API server is what saturates first on this machine; this says
//! whose writes fill it (the kubelets' pod statuses, the controller manager's pods and
//! EndpointSlices, the controller's gates, binding statuses and Events).

use std::collections::BTreeMap;

/// The verbs of `apiserver_request_total` that write.
const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];

/// Write requests the API server answered so far, by "VERB resource[/subresource]".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiWrites(pub BTreeMap<String, u64>);

impl ApiWrites {
    /// Reads the API server's counters (the sandbox's admin may read `/metrics`).
    pub async fn read(client: &kube::Client) -> Result<Self, kube::Error> {
        let request = hyper::Request::get("/metrics")
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        let text = client.request_text(request).await?;
        Ok(Self::parse(&text))
    }

    /// The counters in Prometheus' text format, write verbs only, summed over the other labels.
    pub fn parse(text: &str) -> Self {
        let mut writes = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |name: &str| {
                labels.split(',').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    (key == name).then(|| value.trim_matches('"').to_string())
                })
            };
            let verb = label("verb").unwrap_or_default();
            if !WRITE_VERBS.contains(&verb.as_str()) {
                continue;
            }
            let mut resource = label("resource").unwrap_or_default();
            if let Some(sub) = label("subresource").filter(|s| !s.is_empty()) {
                resource = format!("{resource}/{sub}");
            }
            let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            *writes.entry(format!("{verb} {resource}")).or_insert(0) += count;
        }
        ApiWrites(writes)
    }

    /// The writes since `before`, most first.
    pub fn since(&self, before: &ApiWrites) -> Vec<(String, u64)> {
        let mut writes: Vec<(String, u64)> = self
            .0
            .iter()
            .map(|(key, count)| {
                let earlier = before.0.get(key).copied().unwrap_or(0);
                (key.clone(), count.saturating_sub(earlier))
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        writes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        writes
    }
}

/// A Markdown row of `writes` made over `over`: the total, its rate, the eight most frequent.
pub fn row(writes: &[(String, u64)], over: std::time::Duration) -> String {
    let total: u64 = writes.iter().map(|(_, n)| n).sum();
    let most: Vec<String> = (writes.iter().take(8))
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    format!(
        "| sandbox: API server writes during the scale-out ({total}, {:.0}/s) | {} |",
        total as f64 / over.as_secs_f64().max(0.001),
        most.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 120
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 40
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="elbv2.k8s.aws",resource="targetgroupbindings",scope="resource",subresource="status",verb="APPLY",version="v1beta1"} 7
apiserver_request_total{code="0",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 4
"#;

    #[test]
    fn write_verbs_are_counted_by_resource_over_codes() {
        let writes = ApiWrites::parse(METRICS);
        assert_eq!(
            writes.0,
            BTreeMap::from([
                ("APPLY targetgroupbindings/status".to_string(), 7),
                ("PATCH pods/status".to_string(), 123),
                ("POST pods".to_string(), 40),
            ])
        );
    }

    #[test]
    fn the_writes_since_a_reading_come_most_first() {
        let before = ApiWrites::parse(METRICS);
        let mut after = before.clone();
        after.0.insert("PATCH pods/status".to_string(), 200);
        after.0.insert("POST events".to_string(), 5);
        assert_eq!(
            after.since(&before),
            vec![
                ("PATCH pods/status".to_string(), 77),
                ("POST events".to_string(), 5)
            ]
        );
    }
}
