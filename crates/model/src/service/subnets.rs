//! Which subnets a load balancer goes into: the ones named by the annotation (by ID or by their
//! `Name` tag), or discovered as upstream does: tagged `kubernetes.io/role/elb` (internet-facing)
//! or `kubernetes.io/role/internal-elb` (internal), not tagged for another cluster, one per zone
//! (a subnet tagged for this cluster first, then the lowest ID), in order of their IDs.

use std::collections::BTreeMap;

/// A subnet as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
    pub tags: BTreeMap<String, String>,
    /// Its IPv4 CIDR, when described (an NLB without security groups admits its own addresses
    /// by it).
    pub cidr: Option<ipnet::IpNet>,
}

const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";

/// `annotation` is the full key that names subnets (a Service's or an Ingress's), for the errors.
pub fn choose_subnets<'a>(
    named: Option<&[String]>,
    subnets: &'a [Subnet],
    scheme: &str,
    cluster: &str,
    annotation: &str,
) -> Result<Vec<&'a Subnet>, String> {
    if let Some(named) = named {
        return named
            .iter()
            .map(|wanted| {
                subnets
                    .iter()
                    .find(|s| &s.id == wanted || s.tags.get("Name") == Some(wanted))
                    .ok_or_else(|| {
                        format!(
                            "annotation {annotation}: {} is no subnet of the VPC (by ID or Name tag)",
                            crate::annotations::shown(wanted)
                        )
                    })
            })
            .collect();
    }
    let role = if scheme == "internal" {
        "kubernetes.io/role/internal-elb"
    } else {
        "kubernetes.io/role/elb"
    };
    let ours = format!("{CLUSTER_TAG_PREFIX}{cluster}");
    let mut by_zone: BTreeMap<&str, &Subnet> = BTreeMap::new();
    for subnet in subnets {
        let role_tagged = matches!(subnet.tags.get(role).map(String::as_str), Some("" | "1"));
        let other_cluster = subnet
            .tags
            .keys()
            .any(|k| k.starts_with(CLUSTER_TAG_PREFIX) && *k != ours);
        let tagged_ours = subnet.tags.contains_key(&ours);
        if !role_tagged || (other_cluster && !tagged_ours) {
            continue;
        }
        let better = |current: &Subnet| {
            let current_ours = current.tags.contains_key(&ours);
            (tagged_ours, std::cmp::Reverse(&subnet.id))
                > (current_ours, std::cmp::Reverse(&current.id))
        };
        match by_zone.get(subnet.zone.as_str()) {
            Some(current) if !better(current) => {}
            _ => {
                by_zone.insert(&subnet.zone, subnet);
            }
        }
    }
    if by_zone.is_empty() {
        return Err(format!(
            "no subnet is tagged {role} (and not for another cluster) for a {scheme} load balancer: tag one per zone, or name them with {annotation}"
        ));
    }
    let mut chosen: Vec<&Subnet> = by_zone.into_values().collect();
    chosen.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_subnet_name_is_named_cut() {
        // Before: the whole 100 KB name was the message.
        let huge = "a".repeat(100 * 1024);
        let problem = choose_subnets(Some(&[huge]), &[], "internal", "lab", "example.io/subnets")
            .expect_err("no such subnet");
        assert!(
            problem.starts_with("annotation example.io/subnets: \"aaaa")
                && problem.ends_with(
                    "\"... (102400 characters) is no subnet of the VPC (by ID or Name tag)"
                ),
            "{problem:.300}"
        );
    }
}
