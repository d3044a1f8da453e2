//! `--feature-gates`, as upstream parses it: `Name=bool,Name=bool`, upstream's gate names only
//! (an unknown name is refused, as upstream refuses it: most likely a typo), repeated flags add
//! up, a later value wins. The controller acts on the gates it implements; the others are
//! accepted and named in one startup warning.

use std::collections::BTreeMap;

/// Upstream's gates and their defaults (`pkg/config/feature_gates.go`, and the chart's list).
pub const GATES: [(&str, bool); 23] = [
    ("ListenerRulesTagging", true),
    ("WeightedTargetGroups", true),
    ("ServiceTypeLoadBalancerOnly", false),
    ("EndpointsFailOpen", true),
    ("EnableServiceController", true),
    ("EnableIPTargetType", true),
    ("EnableTCPUDPListener", false),
    ("EnableRGTAPI", false),
    ("SubnetsClusterTagCheck", true),
    ("NLBHealthCheckAdvancedConfig", true),
    ("NLBSecurityGroup", true),
    ("ALBSingleSubnet", false),
    ("LBCapacityReservation", true),
    ("SubnetDiscoveryByReachability", true),
    ("NLBGatewayAPI", true),
    ("ALBGatewayAPI", true),
    ("GatewayListenerSet", true),
    ("GlobalAcceleratorController", false),
    ("IngressPlanAnnotation", false),
    ("EnhancedDefaultBehavior", false),
    ("EnableDefaultTagsLowPriority", false),
    ("ALBTargetControlAgent", false),
    ("EnableCertificateManagement", false),
];

/// Gates whose either value this controller honours. The others are honoured only at their
/// default (what this controller always does); set otherwise, they are named at startup.
const IMPLEMENTED: [&str; 2] = ["EnableTCPUDPListener", "EnableServiceController"];

/// The gates a user set (only those: the rest keep upstream's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureGates {
    set: BTreeMap<String, bool>,
}

impl FeatureGates {
    /// Adds one `--feature-gates` value to those before it.
    pub fn add(&mut self, value: &str) -> Result<(), String> {
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, raw) = item
                .split_once('=')
                .ok_or_else(|| format!("invalid mapStringBool: {item} (expected Name=true)"))?;
            let (name, raw) = (name.trim(), raw.trim());
            let enabled = parse_bool(raw)
                .ok_or_else(|| format!("invalid mapStringBool: {item} (not a bool)"))?;
            if !GATES.iter().any(|(known, _)| *known == name) {
                return Err(format!(
                    "unknown feature: {name} (upstream's gates: {})",
                    GATES.map(|(g, _)| g).join(", ")
                ));
            }
            self.set.insert(name.to_string(), enabled);
        }
        Ok(())
    }

    /// These gates, with a later flag's over them.
    pub fn then(mut self, later: &FeatureGates) -> Self {
        self.set
            .extend(later.set.iter().map(|(name, value)| (name.clone(), *value)));
        self
    }

    pub fn enabled(&self, gate: &str) -> bool {
        self.set.get(gate).copied().unwrap_or_else(|| {
            GATES
                .iter()
                .find(|(name, _)| *name == gate)
                .is_some_and(|(_, default)| *default)
        })
    }

    /// The gates set away from what this controller does: `Name=value`, for the warning.
    pub fn not_implemented(&self) -> Vec<String> {
        self.set
            .iter()
            .filter(|(name, value)| {
                let default = GATES.iter().any(|(g, d)| g == name && d == *value);
                !IMPLEMENTED.contains(&name.as_str()) && !default
            })
            .map(|(name, value)| format!("{name}={value}"))
            .collect()
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// clap's parser for the flag: one value's gates ([`FeatureGates::add`]).
pub fn parse(value: &str) -> Result<FeatureGates, String> {
    let mut gates = FeatureGates::default();
    gates.add(value)?;
    Ok(gates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_syntax_and_names() {
        let mut gates = FeatureGates::default();
        gates
            .add("EnableTCPUDPListener=true, NLBSecurityGroup=false,,")
            .expect("parses");
        gates.add("ListenerRulesTagging=T").expect("parses");
        assert!(gates.enabled("EnableTCPUDPListener"));
        assert!(!gates.enabled("NLBSecurityGroup"));
        assert!(gates.enabled("WeightedTargetGroups"), "default");
        assert!(!gates.enabled("EnableRGTAPI"), "default");
        // A later flag wins; gates at their defaults or implemented are not named.
        gates.add("NLBSecurityGroup=true").expect("parses");
        gates.add("EnableRGTAPI=true").expect("parses");
        assert_eq!(gates.not_implemented(), ["EnableRGTAPI=true"]);
        for bad in ["NoSuchGate=true", "EnableRGTAPI", "EnableRGTAPI=yes"] {
            assert!(FeatureGates::default().add(bad).is_err(), "{bad}");
        }
        assert!(
            parse("Typo=true")
                .unwrap_err()
                .starts_with("unknown feature: Typo")
        );
    }
}
