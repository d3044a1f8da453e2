//! ALB Gateways on the sandbox (examples/gateway/): the GatewayClass is accepted with its
//! features, the Gateway becomes an ALB whose address is in its status (a Hostname, as upstream),
//! its route's rule reaches the pods (upstream's TargetGroupConfiguration shaping a backend's
//! target group), a route to a Service that does not exist answers 500 and
//! says why in its status, pods rolled behind the route (ip targets) carry the readiness gate of
//! its binding and it opens, and deleting the Gateway removes its ALB and nothing else; the seeds'
//! canary and SSL redirect as HTTPRoutes; upstream's LoadBalancerConfiguration giving a Gateway its
//! scheme, tags and certificate.

mod common;

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use lb_api::TargetGroupBinding;
use lb_api::gateway::{Gateway, GatewayClass, HTTPRoute};
use lb_lab::harness::{
    HarnessOptions, install_configuration_kinds, install_gateway_api_crds,
    install_gateway_api_kinds, start_controller, start_controller_with,
};
use lb_sandbox::aws::elb_setup;
use lb_sandbox::testing::*;
use lb_sandbox::{http_client, manifests};

fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_becomes_an_alb_its_route_reaches_the_pods_and_its_statuses_say_so() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    install_gateway_api_crds(&client)
        .await
        .expect("Gateway API CRDs");
    // ip targets: pods are registered (and gated) themselves.
    let harness = HarnessOptions {
        alb_target_type: lb_api::TargetType::Ip,
        ..HarnessOptions::default()
    };
    let controller = start_controller_with(&sandbox, harness)
        .await
        .expect("controller starts");
    let aws = sandbox.aws().unwrap();
    let elb = elb_setup::client(aws).await;

    let yaml = std::fs::read_to_string("examples/gateway/echo.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let missing = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  namespace: gateway-demo
  name: missing
spec:
  parentRefs:
    - name: web
  rules:
    - matches:
        - path: {type: Exact, value: /missing}
      backendRefs:
        - name: nonexistent
          port: 80
"#;
    manifests::apply_yaml(&client, missing, "default")
        .await
        .unwrap();

    let classes: Api<GatewayClass> = Api::all(client.clone());
    let class = eventually(
        "the GatewayClass accepted",
        Duration::from_secs(30),
        || async {
            let class = classes.get("alb").await.ok()?;
            let status = class.status.clone()?;
            (condition(&status.conditions, "Accepted")? == ("True".into(), "Accepted".into()))
                .then_some(status)
        },
    )
    .await;
    assert!(
        class
            .supported_features
            .iter()
            .any(|f| f.name == "HTTPRoute")
    );

    let gateways: Api<Gateway> = Api::namespaced(client.clone(), "gateway-demo");
    let status = eventually(
        "the Gateway programmed, with an address and both routes",
        Duration::from_secs(90),
        || async {
            let status = gateways.get("web").await.ok()?.status?;
            let programmed = condition(&status.conditions, "Programmed")?;
            let attached = status.listeners.first().map(|l| l.attached_routes);
            (programmed.0 == "True" && !status.addresses.is_empty() && attached == Some(2))
                .then_some(status)
        },
    )
    .await;
    let address = &status.addresses[0];
    assert_eq!(address.type_.as_deref(), Some("Hostname"));
    assert_eq!(
        condition(&status.listeners[0].conditions, "Programmed").map(|c| c.0),
        Some("True".into())
    );

    let routes: Api<HTTPRoute> = Api::namespaced(client.clone(), "gateway-demo");
    let parent = eventually(
        "the missing route's status",
        Duration::from_secs(30),
        || async {
            routes
                .get("missing")
                .await
                .ok()?
                .status?
                .parents
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(parent.controller_name, "gateway.k8s.aws/alb");
    assert_eq!(
        condition(&parent.conditions, "Accepted").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        condition(&parent.conditions, "ResolvedRefs"),
        Some(("False".into(), "BackendNotFound".into()))
    );

    // Through the data plane: /echo reaches a pod, /missing gets 500, anything else 404.
    let listener = eventually(
        "the ALB's listener on 80",
        Duration::from_secs(30),
        || async {
            let listeners = aws.control().listeners().await.ok()?;
            listeners
                .into_iter()
                .find(|l| l.dns_name.eq_ignore_ascii_case(&address.value) && l.port == 80)
        },
    )
    .await;
    let status_of = |path: &'static str| {
        let guard = sandbox.guard();
        async move {
            http_client::get(&guard, listener.local_address, path, Duration::from_secs(5))
                .await
                .ok()
                .map(|r| (r.status, String::from_utf8_lossy(&r.body).to_string()))
        }
    };
    let (code, body) = eventually(
        "/echo answered by a pod",
        Duration::from_secs(120),
        || async { status_of("/echo").await.filter(|(code, _)| *code == 200) },
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("pod=gateway-demo/echo-"), "{body}");
    assert_eq!(status_of("/missing").await.map(|r| r.0), Some(500));
    assert_eq!(status_of("/elsewhere").await.map(|r| r.0), Some(404));

    // Readiness gates for route backends, as for Ingress backends: pods rolled out behind the
    // route carry their binding's gate, and it opens once the ALB finds them healthy.
    let bindings: Api<TargetGroupBinding> = Api::namespaced(client.clone(), "gateway-demo");
    let binding = bindings
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|b| b.spec.service_ref.name == "echo")
        .expect("the echo backend's binding");
    let gate = format!(
        "target-health.alb.ingress.k8s.aws/{}",
        binding.metadata.name.unwrap()
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "gateway-demo");
    let restart = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"demo/restarted": "1"}}}}});
    deployments
        .patch("echo", &PatchParams::default(), &Patch::Merge(restart))
        .await
        .unwrap();
    eventually(
        "the rolled pods gated, their gates open",
        Duration::from_secs(180),
        || async {
            let pods = pods_of(&client, "gateway-demo", "echo").await;
            let rolled = |p: &k8s_openapi::api::core::v1::Pod| {
                p.metadata.deletion_timestamp.is_none()
                    && p.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key("demo/restarted"))
            };
            let gated = |p: &k8s_openapi::api::core::v1::Pod| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.readiness_gates.as_ref())
                    .is_some_and(|g| g.iter().any(|g| g.condition_type == gate))
            };
            let new: Vec<_> = pods.iter().filter(|p| rolled(p)).collect();
            (new.len() == 2
                && new.iter().all(|p| {
                    gated(p) && lb_sandbox::testing::condition(p, &gate).as_deref() == Some("True")
                }))
            .then_some(())
        },
    )
    .await;
    assert_eq!(status_of("/echo").await.map(|r| r.0), Some(200));

    // The Gateway deleted: its ALB goes, and its finalizer with it.
    gateways
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Gateway gone", Duration::from_secs(90), || async {
        gateways.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let left = elb.describe_load_balancers().send().await.unwrap();
    assert!(
        !left.load_balancers().iter().any(|lb| lb
            .dns_name()
            .is_some_and(|d| d.eq_ignore_ascii_case(&address.value))),
        "the Gateway's ALB is gone"
    );
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_canary_as_an_httproute_splits_between_both_deployments() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    // Upstream's configuration kinds come after the controller (a chart or a user adding them
    // later): it watches them from when they are served, with no restart.
    install_gateway_api_kinds(&client)
        .await
        .expect("Gateway API CRDs");
    let controller = start_controller(&sandbox).await.expect("controller starts");
    install_configuration_kinds(&client)
        .await
        .expect("upstream's configuration CRDs");
    let aws = sandbox.aws().unwrap();
    let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: alb}\nspec: {controllerName: gateway.k8s.aws/alb}\n";
    manifests::apply_yaml(&client, class, "default")
        .await
        .unwrap();
    let yaml = std::fs::read_to_string("examples/gateway/canary.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    // Upstream's TargetGroupConfiguration, as its users write it (v1beta1): the canary's
    // targets are its pods, checked every 6 s (AWS takes a timeout below the interval only).
    let configuration = r#"
apiVersion: gateway.k8s.aws/v1beta1
kind: TargetGroupConfiguration
metadata:
  namespace: gateway-canary
  name: ng-canary
spec:
  targetReference:
    name: ng-canary
  defaultConfiguration:
    targetType: ip
    healthCheckConfig:
      healthCheckPath: /
      healthCheckInterval: 6
      healthCheckTimeout: 2
      healthyThresholdCount: 2
    targetGroupAttributes:
      - key: deregistration_delay.timeout_seconds
        value: "10"
"#;
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), "gateway-canary");
    let address = eventually("the Gateway's address", Duration::from_secs(90), || async {
        let status = gateways.get("traffic-split").await.ok()?.status?;
        Some(status.addresses.first()?.value.clone())
    })
    .await;
    // The configuration comes after the Gateway has its ALB, so its target groups were built
    // without it (instance targets, checked every 15 s): the canary's is changed in place of
    // being taken at the first build, the path a user who adds one later takes.
    manifests::apply_yaml(&client, configuration, "default")
        .await
        .unwrap();
    let elb = elb_setup::client(aws).await;
    let shapes = || {
        let elb = elb.clone();
        async move {
            let groups = elb.describe_target_groups().send().await.ok()?;
            let shapes: Vec<(String, i32)> = groups
                .target_groups()
                .iter()
                .map(|g| {
                    (
                        g.target_type().map_or("", |t| t.as_str()).to_string(),
                        g.health_check_interval_seconds().unwrap_or_default(),
                    )
                })
                .collect();
            Some(shapes)
        }
    };
    // The configuration reaches the canary's target group only.
    eventually(
        "the canary's target group configured, the primary's not",
        Duration::from_secs(90),
        || async {
            let shapes = shapes().await?;
            let mut sorted = shapes.clone();
            sorted.sort();
            (sorted == [("instance".to_string(), 15), ("ip".to_string(), 6)]).then_some(())
        },
    )
    .await;
    let listener = eventually(
        "the ALB's listener on 80",
        Duration::from_secs(30),
        || async {
            let listeners = aws.control().listeners().await.ok()?;
            listeners
                .into_iter()
                .find(|l| l.dns_name.eq_ignore_ascii_case(&address) && l.port == 80)
        },
    )
    .await;
    let answer = || {
        let guard = sandbox.guard();
        async move {
            let response =
                http_client::get(&guard, listener.local_address, "/", Duration::from_secs(5))
                    .await
                    .ok()
                    .filter(|r| r.status == 200)?;
            let body = String::from_utf8_lossy(&response.body).to_string();
            Some(if body.contains("pod=gateway-canary/ng-canary-") {
                "canary"
            } else {
                "primary"
            })
        }
    };
    // Both target groups healthy: both answer, then the split is counted.
    eventually(
        "both Deployments answering",
        Duration::from_secs(150),
        || async {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..20 {
                seen.insert(answer().await?);
            }
            (seen.len() == 2).then_some(())
        },
    )
    .await;
    let mut canary = 0;
    for _ in 0..100 {
        if answer().await == Some("canary") {
            canary += 1;
        }
    }
    assert!(
        (25..=75).contains(&canary),
        "50/50 split: {canary} of 100 to the canary"
    );
    // The replaced target group is gone: two remain, as configured.
    let mut left = shapes().await.expect("target groups");
    left.sort();
    assert_eq!(
        left,
        [("instance".to_string(), 15), ("ip".to_string(), 6)],
        "the target groups after the split"
    );
    controller.stop().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_ssl_redirect_as_httproutes_redirects_http_and_serves_https_with_the_secrets_certificate()
 {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    install_gateway_api_crds(&client)
        .await
        .expect("Gateway API CRDs");
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let aws = sandbox.aws().unwrap();
    let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: alb}\nspec: {controllerName: gateway.k8s.aws/alb}\n";
    manifests::apply_yaml(&client, class, "default")
        .await
        .unwrap();
    let yaml = std::fs::read_to_string("examples/gateway/ssl-redirect.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    // The Secret the example asks for, from the sandbox's CA.
    let (certificate, key) = sandbox
        .pki()
        .serving_certificate("game.example.com", &["game.example.com"], &[])
        .unwrap();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "tls-2048", "namespace": "game-2048-gateway"},
        "stringData": {"tls.crt": certificate, "tls.key": key},
    });
    manifests::apply_yaml(&client, &serde_json::to_string(&secret).unwrap(), "default")
        .await
        .unwrap();

    let gateways: Api<Gateway> = Api::namespaced(client.clone(), "game-2048-gateway");
    let address = eventually(
        "both listeners programmed",
        Duration::from_secs(120),
        || async {
            let status = gateways.get("game-2048").await.ok()?.status?;
            let programmed = status
                .listeners
                .iter()
                .filter(|l| condition(&l.conditions, "Programmed").is_some_and(|c| c.0 == "True"))
                .count();
            (programmed == 2).then(|| status.addresses.first().map(|a| a.value.clone()))?
        },
    )
    .await;
    let listener = |port: u16| {
        let address = address.clone();
        async move {
            eventually("the ALB's listener", Duration::from_secs(30), || async {
                let listeners = aws.control().listeners().await.ok()?;
                listeners
                    .into_iter()
                    .find(|l| l.dns_name.eq_ignore_ascii_case(&address) && l.port == port)
            })
            .await
        }
    };
    let http = listener(80).await;
    let redirect = eventually("a redirect on HTTP", Duration::from_secs(60), || async {
        http_client::get_for_host(
            &sandbox.guard(),
            http.local_address,
            "game.example.com",
            "/tile?x=1",
            Duration::from_secs(5),
        )
        .await
        .ok()
        .filter(|r| r.status == 301)
    })
    .await;
    assert_eq!(
        redirect.location.as_deref(),
        Some("https://game.example.com:443/tile?x=1")
    );
    let https = listener(443).await;
    let ca = sandbox.pki().ca_pem();
    let answered = eventually(
        "HTTPS answered by a pod",
        Duration::from_secs(150),
        || async {
            let response =
                common::tls_get(&sandbox, https.local_address, &ca, "game.example.com", "/").await;
            response
                .contains("pod=game-2048-gateway/deployment-2048-")
                .then_some(response)
        },
    )
    .await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    controller.stop().await;
    sandbox.shutdown().await;
}

/// Upstream's way to a TLS Gateway: a LoadBalancerConfiguration (v1beta1, as upstream's users
/// write it) named by the Gateway gives its HTTPS listener an ACM certificate by ARN (no
/// `certificateRefs`), its scheme and its tags; requests through it are answered by the pods. A
/// Gateway with no certificate named anywhere finds the ACM one covering its listener's hostname.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancer_configuration_gives_the_gateway_its_scheme_tags_and_certificate() {
    common::init_tracing();
    let sandbox = start_sandbox().await;
    let client = sandbox.client();
    install_gateway_api_crds(&client)
        .await
        .expect("Gateway API CRDs");
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let aws = sandbox.aws().unwrap();
    let certificate = aws.seeded().certificate_arn.clone();
    let yaml = std::fs::read_to_string("examples/gateway/echo.yaml").unwrap();
    manifests::apply_yaml(&client, &yaml, "default")
        .await
        .unwrap();
    let configured = format!(
        r#"
apiVersion: gateway.k8s.aws/v1beta1
kind: LoadBalancerConfiguration
metadata:
  namespace: gateway-demo
  name: tls
spec:
  scheme: internal
  tags:
    team: web
  listenerConfigurations:
    - protocolPort: HTTPS:443
      defaultCertificate: {certificate}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  namespace: gateway-demo
  name: tls
spec:
  gatewayClassName: alb
  infrastructure:
    parametersRef:
      group: gateway.k8s.aws
      kind: LoadBalancerConfiguration
      name: tls
  listeners:
    - name: https
      port: 443
      protocol: HTTPS
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  namespace: gateway-demo
  name: discovered
spec:
  gatewayClassName: alb
  listeners:
    - name: https
      port: 443
      protocol: HTTPS
      hostname: app.example.com
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  namespace: gateway-demo
  name: tls
spec:
  parentRefs:
    - name: tls
    - name: discovered
  rules:
    - backendRefs:
        - name: echo
          port: 80
"#
    );
    manifests::apply_yaml(&client, &configured, "default")
        .await
        .unwrap();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), "gateway-demo");
    // An ALB listener comes with the first route attached to its port (upstream's way): a pass
    // that ran before the route was seen built the ALB alone, and is Programmed with no route.
    let address = eventually(
        "the configured Gateway programmed, its route attached",
        Duration::from_secs(90),
        || async {
            let status = gateways.get("tls").await.ok()?.status?;
            let programmed = condition(&status.conditions, "Programmed")?;
            let attached = status.listeners.first().map(|l| l.attached_routes);
            (programmed.0 == "True" && attached == Some(1))
                .then_some(status.addresses.first()?.value.clone())
        },
    )
    .await;
    let elb = elb_setup::client(aws).await;
    let described = elb.describe_load_balancers().send().await.unwrap();
    let alb = described
        .load_balancers()
        .iter()
        .find(|lb| {
            lb.dns_name()
                .is_some_and(|d| d.eq_ignore_ascii_case(&address))
        })
        .expect("the Gateway's ALB");
    assert_eq!(alb.scheme().map(|s| s.as_str()), Some("internal"));
    let arn = alb.load_balancer_arn().unwrap().to_string();
    let tags = elb
        .describe_tags()
        .resource_arns(&arn)
        .send()
        .await
        .unwrap();
    let team = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("team"))
        .and_then(|t| t.value().map(str::to_string));
    assert_eq!(team.as_deref(), Some("web"));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&arn)
        .send()
        .await
        .unwrap();
    let https = &listeners.listeners()[0];
    assert_eq!(https.port(), Some(443));
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(certificate.as_str())
    );
    // A listener with no certificate named anywhere finds the ACM certificate covering its
    // hostname (upstream's discovery): the seeded one, for *.example.com.
    let discovered = eventually(
        "the discovering Gateway programmed, its route attached",
        Duration::from_secs(90),
        || async {
            let status = gateways.get("discovered").await.ok()?.status?;
            let programmed = condition(&status.conditions, "Programmed")?;
            let attached = status.listeners.first().map(|l| l.attached_routes);
            (programmed.0 == "True" && attached == Some(1))
                .then_some(status.addresses.first()?.value.clone())
        },
    )
    .await;
    let all = elb.describe_load_balancers().send().await.unwrap();
    let other = all
        .load_balancers()
        .iter()
        .find(|lb| {
            lb.dns_name()
                .is_some_and(|d| d.eq_ignore_ascii_case(&discovered))
        })
        .expect("the discovering Gateway's ALB");
    let its_listeners = elb
        .describe_listeners()
        .load_balancer_arn(other.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        its_listeners.listeners()[0].certificates()[0].certificate_arn(),
        Some(certificate.as_str())
    );
    let local = eventually(
        "the ALB's listener on 443",
        Duration::from_secs(30),
        || async {
            let listeners = aws.control().listeners().await.ok()?;
            listeners
                .into_iter()
                .find(|l| l.dns_name.eq_ignore_ascii_case(&address) && l.port == 443)
        },
    )
    .await;
    let ca = aws.seeded().certificate_ca_pem.clone();
    eventually(
        "HTTPS answered by a pod",
        Duration::from_secs(120),
        || async {
            let text =
                common::tls_get(&sandbox, local.local_address, &ca, "web.example.com", "/").await;
            text.contains("pod=gateway-demo/echo-").then_some(())
        },
    )
    .await;
    controller.stop().await;
    sandbox.shutdown().await;
}
