//! The IAM policy the controller needs: exactly the AWS actions its code calls, generated from
//! [`Operation::ALL`] (every SDK call is recorded under one of them for the metrics), plus what
//! AWS checks implicitly: `iam:CreateServiceLinkedRole` (for ELB only) for the first load balancer of an account. The
//! ARNs are the `aws` partition's (as upstream's policy; other partitions change `arn:aws:`). Committed as
//! `config/iam/iam-policy.json` (`lb-controller iam-policy` prints it); a test fails when the
//! file, the operations or the SDK calls in this crate's sources disagree.

use serde_json::{Value, json};

use crate::calls::Operation;

/// The IAM service prefix of an operation.
pub fn service(operation: Operation) -> &'static str {
    use Operation::*;
    match operation {
        AssumeRole => "sts",
        ListCertificates | ListTagsForCertificate | ImportCertificate | DeleteCertificate => "acm",
        DescribeSubnets
        | DescribeSecurityGroups
        | DescribeNetworkInterfaces
        | DescribeVpcs
        | CreateSecurityGroup
        | AuthorizeSecurityGroupIngress
        | RevokeSecurityGroupIngress
        | DeleteSecurityGroup
        | CreateTags
        | DeleteTags => "ec2",
        _ => "elasticloadbalancing",
    }
}

fn action(operation: Operation) -> String {
    format!("{}:{}", service(operation), operation.as_str())
}

fn reads(operation: Operation) -> bool {
    let name = operation.as_str();
    name.starts_with("Describe") || name.starts_with("List")
}

/// The policy document (IAM JSON, version 2012-10-17).
pub fn policy() -> Value {
    let mut read: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut write: Vec<String> = Vec::new();
    let mut assume: Vec<String> = Vec::new();
    for operation in Operation::ALL {
        let list = match operation {
            Operation::AssumeRole => &mut assume,
            Operation::RegisterTargets | Operation::DeregisterTargets => &mut targets,
            _ if reads(operation) => &mut read,
            _ => &mut write,
        };
        list.push(action(operation));
    }
    for list in [&mut read, &mut targets, &mut write, &mut assume] {
        list.sort();
        list.dedup();
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": read, "Resource": "*"},
            {
                "Sid": "Targets",
                "Effect": "Allow",
                "Action": targets,
                "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"
            },
            {"Sid": "LoadBalancers", "Effect": "Allow", "Action": write, "Resource": "*"},
            {
                "Sid": "ElbServiceLinkedRole",
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}
            },
            {
                "Sid": "TargetGroupBindingRoles",
                "Effect": "Allow",
                "Action": assume,
                "Resource": "*"
            }
        ]
    })
}

/// The policy as committed: pretty JSON and a final newline.
pub fn policy_json() -> String {
    let mut text = serde_json::to_string_pretty(&policy()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn crate_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_committed_policy_is_the_generated_one() {
        let path = crate_dir().join("../../config/iam/iam-policy.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == policy_json(),
            "{} is stale: run `cargo run -- iam-policy > config/iam/iam-policy.json`",
            path.display()
        );
    }

    /// `describe_target_health` -> `DescribeTargetHealth`.
    fn camel(snake: &str) -> String {
        snake
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect()
                })
            })
            .collect()
    }

    fn sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }

    /// Every SDK operation this crate's code calls (a line `.register_targets()` of a fluent
    /// builder) is an [`Operation`], hence in the policy; the fake and tests are not the SDK.
    #[test]
    fn every_sdk_call_in_the_sources_is_in_the_policy() {
        let verbs = [
            "describe",
            "create",
            "delete",
            "modify",
            "register",
            "deregister",
            "set",
            "add",
            "remove",
            "authorize",
            "revoke",
            "list",
            "assume",
        ];
        let known: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        let mut files = Vec::new();
        sources(&crate_dir().join("src"), &mut files);
        let mut seen = 0;
        for file in files {
            let name = file.to_string_lossy();
            if name.contains("fake") || name.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for line in text.lines() {
                let chained = line.trim_start().strip_prefix('.');
                for rest in chained.into_iter().chain(line.split("client.").skip(1)) {
                    let Some((method, _)) = rest.split_once("()") else {
                        continue;
                    };
                    let sdk_like = verbs.iter().any(|v| method.starts_with(&format!("{v}_")))
                        && method.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                    if !sdk_like {
                        continue;
                    }
                    seen += 1;
                    assert!(
                        known.contains(&camel(method).as_str()),
                        "{}: `{method}` is called but is no Operation (and not in the IAM policy)",
                        file.display()
                    );
                }
            }
        }
        assert!(
            seen >= 40,
            "only {seen} SDK calls found: the scan is broken"
        );
    }

    #[test]
    fn services_and_statements() {
        let text = policy_json();
        for action in [
            "elasticloadbalancing:RegisterTargets",
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "iam:CreateServiceLinkedRole",
            "acm:ListCertificates",
            "sts:AssumeRole",
        ] {
            assert!(text.contains(&format!("\"{action}\"")), "{action}");
        }
    }
}
