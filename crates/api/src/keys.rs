//! Every name the controller shares with users, with the upstream controller and with Kubernetes:
//! labels, annotations, condition types and prefixes, finalizers, webhook paths, field managers.
//! Nothing else in the workspace spells these strings.

/// Namespace label that turns on readiness-gate injection for its pods (upstream's name).
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

/// Pod annotation overriding the controller's termination hold, in whole seconds (`0`: none).
pub const TERMINATION_HOLD_ANNOTATION: &str = "lb-controller.dev/termination-hold-seconds";

/// The field manager of every write the controller makes (server-side apply and patches).
pub const FIELD_MANAGER: &str = "lb-controller";
/// The reporting controller of Events.
pub const EVENT_REPORTER: &str = "lb-controller";

/// Webhook paths and names, as upstream serves them (so existing configurations keep working).
pub mod webhooks {
    /// Pod mutator: readiness gates and the termination hold.
    pub const MUTATE_POD_PATH: &str = "/mutate-v1-pod";
    pub const MUTATE_POD_NAME: &str = "mpod.elbv2.k8s.aws";
    /// TargetGroupBinding defaulting (ARN from name, target type, IP address type, VPC).
    pub const MUTATE_BINDING_PATH: &str = "/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding";
    pub const MUTATE_BINDING_NAME: &str = "mtargetgroupbinding.elbv2.k8s.aws";
    /// TargetGroupBinding validation (immutable fields, one binding per target group).
    pub const VALIDATE_BINDING_PATH: &str = "/validate-elbv2-k8s-aws-v1beta1-targetgroupbinding";
    pub const VALIDATE_BINDING_NAME: &str = "vtargetgroupbinding.elbv2.k8s.aws";
    /// Validates IngressClassParams: values the Ingress reconciler could not use are refused.
    pub const VALIDATE_CLASS_PARAMS_PATH: &str =
        "/validate-elbv2-k8s-aws-v1beta1-ingressclassparams";
    pub const VALIDATE_CLASS_PARAMS_NAME: &str = "vingressclassparams.elbv2.k8s.aws";
    /// Validates Ingresses of ours: annotations the Ingress reconciler could not use are refused.
    pub const VALIDATE_INGRESS_PATH: &str = "/validate-networking-v1-ingress";
    pub const VALIDATE_INGRESS_NAME: &str = "vingress.elbv2.k8s.aws";
    /// Service mutator: the default `spec.loadBalancerClass` on new `type: LoadBalancer` Services.
    pub const MUTATE_SERVICE_PATH: &str = "/mutate-v1-service";
    pub const MUTATE_SERVICE_NAME: &str = "mservice.elbv2.k8s.aws";
}

/// Keys Kubernetes itself defines that the controller reads.
pub mod kubernetes {
    /// EndpointSlice label naming the Service the slice belongs to.
    pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
    /// Pod condition set by the kubelet when every container is ready.
    pub const CONTAINERS_READY: &str = "ContainersReady";
    /// Node and pod `Ready` conditions.
    pub const READY: &str = "Ready";

    /// Node labels that keep a node out of load balancers (instance targets), as the upstream
    /// controller and the Kubernetes service controller read them: present with any value.
    pub const NODE_EXCLUDE_LABELS: [&str; 4] = [
        "node-role.kubernetes.io/master",
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "alpha.service-controller.kubernetes.io/exclude-balancer",
    ];
    /// Fargate nodes carry this label with value `fargate`: they cannot be instance targets.
    pub const COMPUTE_TYPE_LABEL: &str = "eks.amazonaws.com/compute-type";
    pub const COMPUTE_TYPE_FARGATE: &str = "fargate";
    /// Taints of nodes about to go away: not registered as new instance targets.
    pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";
    pub const KARPENTER_DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
}

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

/// Service -> NLB: upstream's Service annotations and the keys of ours around them.
pub mod service {
    /// Prefix of every Service annotation upstream reads (but `load-balancer-source-ranges`,
    /// which has the same prefix without `aws-`).
    pub const PREFIX: &str = "service.beta.kubernetes.io/";
    /// `spec.loadBalancerClass` that selects us (`--load-balancer-class`).
    pub const DEFAULT_LOAD_BALANCER_CLASS: &str = "service.k8s.aws/nlb";
    /// The annotations that decide selection.
    pub const TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
    pub const TYPE_EXTERNAL: &str = "external";
    pub const TYPE_NLB_IP: &str = "nlb-ip";
    pub const NLB_TARGET_TYPE: &str =
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
    /// Finalizer on a Service whose NLB we made.
    pub const FINALIZER: &str = "service.k8s.aws/resources";
    /// Labels on the TargetGroupBindings made for a Service (upstream's).
    pub const STACK_NAME_LABEL: &str = "service.k8s.aws/stack-name";
    pub const STACK_NAMESPACE_LABEL: &str = "service.k8s.aws/stack-namespace";
}

/// Ingress -> ALB: upstream's Ingress annotations, class and group keys.
pub mod ingress {
    /// Prefix of every Ingress (and, for the target group ones, Service) annotation upstream reads.
    pub const PREFIX: &str = "alb.ingress.kubernetes.io/";
    /// `spec.controller` of an IngressClass that is ours.
    pub const CONTROLLER: &str = "ingress.k8s.aws/alb";
    /// The legacy class annotation, compared with `--ingress-class`.
    pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
    /// `--ingress-class`'s default.
    pub const DEFAULT_CLASS: &str = "alb";
    /// The annotation on an IngressClass that makes it the cluster's default.
    pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
    /// Finalizer of an Ingress that is its own group.
    pub const FINALIZER: &str = "ingress.k8s.aws/resources";
    /// Finalizer of a member of group `<name>`: this prefix + the name.
    pub const GROUP_FINALIZER_PREFIX: &str = "group.ingress.k8s.aws/";
    /// Labels on the TargetGroupBindings made for an Ingress group (upstream's): an explicit
    /// group's by its name, an Ingress alone's by its name and namespace.
    pub const STACK_LABEL: &str = "ingress.k8s.aws/stack";
    pub const STACK_NAME_LABEL: &str = "ingress.k8s.aws/stack-name";
    pub const STACK_NAMESPACE_LABEL: &str = "ingress.k8s.aws/stack-namespace";
    /// Backend port name that sends a path to the `actions.<service name>` annotation.
    pub const USE_ANNOTATION: &str = "use-annotation";
}

/// Keys of ALB Gateways (upstream's).
pub mod gateway {
    /// Finalizer of a Gateway whose ALB this controller made.
    pub const FINALIZER: &str = "gateway.k8s.aws/alb";
    /// Finalizer of a GatewayClass of ours.
    pub const CLASS_FINALIZER: &str = "gateway.k8s.aws/gatewayclass";
    /// Labels on the TargetGroupBindings made for a Gateway's route backends.
    pub const STACK_NAME_LABEL: &str = "gateway.k8s.aws.alb/stack-name";
    pub const STACK_NAMESPACE_LABEL: &str = "gateway.k8s.aws.alb/stack-namespace";
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
