//! Names shared with users and with the upstream controller.

/// Namespace label that turns on readiness-gate injection for its pods.
pub const READINESS_GATE_INJECT_LABEL: &str = "elbv2.k8s.aws/pod-readiness-gate-inject";
pub const READINESS_GATE_INJECT_ENABLED: &str = "enabled";

/// Prefix of the readiness-gate condition type we inject: `<prefix><binding name>`.
pub const GATE_PREFIX: &str = "target-health.alb.ingress.k8s.aws/";
/// The upstream controller's newer prefix; pods carrying it are honoured as they are.
pub const UPSTREAM_GATE_PREFIX: &str = "target-health.elbv2.k8s.aws/";

/// Finalizer on TargetGroupBindings: their targets are deregistered before they go.
pub const FINALIZER: &str = "elbv2.k8s.aws/resources";

/// Condition type on TargetGroupBinding status.
pub const CONDITION_READY: &str = "Ready";

/// The condition types a pod may carry as a readiness gate for binding `binding`.
pub fn gate_condition_types(binding: &str) -> [String; 2] {
    [
        format!("{GATE_PREFIX}{binding}"),
        format!("{UPSTREAM_GATE_PREFIX}{binding}"),
    ]
}

/// The binding a readiness-gate condition type refers to, if it is one of ours.
pub fn binding_of_gate(condition_type: &str) -> Option<&str> {
    condition_type
        .strip_prefix(GATE_PREFIX)
        .or_else(|| condition_type.strip_prefix(UPSTREAM_GATE_PREFIX))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_name_the_binding() {
        assert_eq!(
            binding_of_gate("target-health.alb.ingress.k8s.aws/web"),
            Some("web")
        );
        assert_eq!(
            binding_of_gate("target-health.elbv2.k8s.aws/web"),
            Some("web")
        );
        assert_eq!(binding_of_gate("target-health.alb.ingress.k8s.aws/"), None);
        assert_eq!(binding_of_gate("Ready"), None);
        assert_eq!(
            gate_condition_types("web"),
            [
                "target-health.alb.ingress.k8s.aws/web",
                "target-health.elbv2.k8s.aws/web"
            ]
        );
    }
}
