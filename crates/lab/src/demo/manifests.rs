//! The user's manifests on the sandbox: placeholders filled from the emulator (`${TARGET_GROUP_ARN}`,
//! `${VPC_ID}`, ...), every document applied in an order that works (namespaces first, CRDs before
//! the objects of their kinds, and established before those are applied), each one's outcome kept:
//! a refusal (an admission webhook's, the schema's) is an outcome to show, not a reason to stop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use lb_sandbox::manifests::apply_value;
use serde::Deserialize;

/// The placeholders a manifest may use, and their values on this sandbox.
pub type Placeholders = BTreeMap<&'static str, String>;

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: PathBuf,
    pub value: serde_json::Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// The namespace the document names, or `default_namespace` for namespaced kinds (the
    /// apiserver decides; the demo's guess only groups the report).
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }

    fn rank(&self) -> u8 {
        match self.kind() {
            "Namespace" => 0,
            "CustomResourceDefinition" => 1,
            _ => 2,
        }
    }
}

/// What became of one document.
#[derive(Debug, Clone)]
pub struct Applied {
    pub document: Document,
    /// The namespace it went to (None: cluster-scoped; for a refused object, where it would have).
    pub namespace: Option<String>,
    /// None when applied; else why not.
    pub refused: Option<String>,
}

/// The upstream guide's placeholders, and ours they stand for: its samples apply as written.
pub const UPSTREAM_PLACEHOLDERS: [(&str, &str); 3] = [
    ("<arn-to-targetGroup>", "TARGET_GROUP_ARN"),
    ("<name-of-the-targetGroup>", "TARGET_GROUP_NAME"),
    ("<vpcID>", "VPC_ID"),
];

/// Fills `${NAME}` placeholders (and the upstream guide's, see [`UPSTREAM_PLACEHOLDERS`]);
/// returns the text and the placeholders it used that are unknown.
pub fn fill(text: &str, placeholders: &Placeholders) -> (String, Vec<String>) {
    let mut filled = text.to_string();
    for (upstream, ours) in UPSTREAM_PLACEHOLDERS {
        filled = filled.replace(upstream, &format!("${{{ours}}}"));
    }
    for (name, value) in placeholders {
        filled = filled.replace(&format!("${{{name}}}"), value);
    }
    let unknown = filled
        .match_indices("${")
        .filter_map(|(at, _)| {
            let rest = &filled[at + 2..];
            let end = rest.find('}')?;
            let name = &rest[..end];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            valid.then(|| name.to_string())
        })
        .collect();
    (filled, unknown)
}

/// The documents of `text` (from `source`), placeholders filled.
pub fn documents(
    source: &Path,
    text: &str,
    placeholders: &Placeholders,
) -> Result<(Vec<Document>, Vec<String>), String> {
    let (filled, unknown) = fill(text, placeholders);
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&filled) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| format!("{}: not YAML: {e}", source.display()))?;
        if value.is_null() {
            continue;
        }
        if value["kind"].as_str().is_none() || value["apiVersion"].as_str().is_none() {
            return Err(format!(
                "{}: a document has no apiVersion or kind",
                source.display()
            ));
        }
        documents.push(Document {
            source: source.to_path_buf(),
            value,
        });
    }
    Ok((documents, unknown))
}

/// Namespaces first, then CRDs, then everything else, each group in the order given.
pub fn ordered(mut documents: Vec<Document>) -> Vec<Document> {
    documents.sort_by_key(Document::rank);
    documents
}

/// Applies `documents` in order; objects without a namespace go to `default_namespace`. Reports
/// each outcome through `report` as it happens.
pub async fn apply_all(
    client: &Client,
    documents: Vec<Document>,
    default_namespace: &str,
    report: &dyn Fn(&Applied),
) -> Vec<Applied> {
    let mut applied = Vec::new();
    let mut crds = Vec::new();
    for document in ordered(documents) {
        if document.rank() == 2 && !crds.is_empty() {
            wait_established(client, &std::mem::take(&mut crds)).await;
        }
        let result = apply_value(client, document.value.clone(), default_namespace).await;
        if document.kind() == "CustomResourceDefinition" && result.is_ok() {
            crds.push(document.name().to_string());
        }
        let (namespace, refused) = match result {
            Ok(object) => (object.namespace, None),
            Err(err) => {
                let guess = (document.rank() == 2).then(|| {
                    document
                        .namespace()
                        .unwrap_or(default_namespace)
                        .to_string()
                });
                (guess, Some(err.to_string()))
            }
        };
        let outcome = Applied {
            document,
            namespace,
            refused,
        };
        report(&outcome);
        applied.push(outcome);
    }
    applied
}

/// Waits (up to 30 s) until the CRDs named are established, so their objects can be applied.
async fn wait_established(client: &Client, names: &[String]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        while Instant::now() < deadline {
            let established = api.get(name).await.ok().is_some_and(|crd| {
                crd.status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_named() {
        let placeholders: Placeholders = [("TARGET_GROUP_ARN", "arn:tg".to_string())].into();
        let (text, unknown) = fill(
            "arn: ${TARGET_GROUP_ARN}\nvpc: ${VPC_ID}\nshell: ${not a placeholder}\n",
            &placeholders,
        );
        assert_eq!(
            text,
            "arn: arn:tg\nvpc: ${VPC_ID}\nshell: ${not a placeholder}\n"
        );
        assert_eq!(unknown, ["VPC_ID"]);
        let (text, _) = fill("targetGroupARN: <arn-to-targetGroup>", &placeholders);
        assert_eq!(text, "targetGroupARN: arn:tg");
    }

    #[test]
    fn namespaces_then_crds_then_the_rest_in_file_order() {
        let yaml = "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: a}\n---\n\
                    kind: CustomResourceDefinition\napiVersion: apiextensions.k8s.io/v1\nmetadata: {name: b}\n---\n\
                    kind: Service\napiVersion: v1\nmetadata: {name: c}\n---\n\
                    kind: Namespace\napiVersion: v1\nmetadata: {name: d}\n---\n";
        let (documents, _) = documents(Path::new("x.yaml"), yaml, &Placeholders::new()).unwrap();
        let sorted = ordered(documents);
        let names: Vec<&str> = sorted.iter().map(Document::name).collect();
        assert_eq!(names, ["d", "b", "a", "c"]);
        let err = super::documents(Path::new("x.yaml"), "just: text\n", &Placeholders::new())
            .unwrap_err();
        assert!(err.contains("no apiVersion or kind"), "{err}");
    }
}
