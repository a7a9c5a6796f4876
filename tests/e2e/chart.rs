//! The Helm chart (charts/patchfleet) with the pinned helm (tests/env/helm): it lints,
//! renders every object with the restrictive defaults, is accepted by the real API server
//! (server-side dry run, then `helm install`), rejects wrong values through its schema,
//! ships the generated CRDs unchanged, and its RBAC grants the controller, the dashboard
//! and the enrollment server exactly what they use: `kubectl auth can-i` as the chart's
//! ServiceAccounts, and as users bound to the dashboard's viewer roles. The enrollment
//! server (off by default) renders only when enabled, and refuses to render without an
//! audience or without exactly one source of its TLS certificate.
//!
//! helm comes from `PATCHFLEET_HELM` (scripts/test sets it), else `tests/env/helm path`
//! (which builds it once). Every invocation gets its own HELM_CACHE_HOME, HELM_CONFIG_HOME
//! and HELM_DATA_HOME in a temp dir, so nothing touches the user's home.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use patchfleet_tests::control_plane::{self, ControlPlane, TestNamespace};
use patchfleet_tests::helm::{Scratch, chart_dir, run};
use patchfleet_tests::repo_root;
use serde_json::{Value, json};

/// patchfleet.io's kinds (their CRDs), each of which the controller watches and writes
/// status for (Enrollments are cluster-scoped, as SystemAccounts are).
const KINDS: [&str; 6] = [
    "systemaccounts",
    "patchpolicies",
    "patchgroups",
    "maintenancewindows",
    "patchrollouts",
    "enrollments",
];

/// The kinds the dashboard has pages for, which it and its users' roles read (least
/// privilege: a kind joins here and the chart's dashboard roles together with its page).
const DASHBOARD_KINDS: [&str; 5] = [
    "systemaccounts",
    "patchpolicies",
    "patchgroups",
    "maintenancewindows",
    "patchrollouts",
];

/// The one rendered object of `kind`.
fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

/// The one rendered object of `kind` named `name`.
fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name}, found {}",
        found.len()
    );
    found[0]
}

/// The names of the rendered objects of `kind`.
fn names(objects: &[Value], kind: &str) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Whether the label selector `match_labels` (a matchLabels map) selects `labels`.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    match_labels
        .as_object()
        .expect("matchLabels")
        .iter()
        .all(|(key, value)| labels[key] == *value)
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The container's env as name -> value (valueFrom entries as `fieldRef:PATH`).
/// A container's securityContext as the restricted Pod Security level wants it, and a
/// fixed non-root user.
fn assert_restricted(security: &Value) {
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(security["capabilities"].get("add").is_none());
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
}

/// The `http` port on 8080 and the probes on /healthz and /readyz through it.
fn assert_http_port_and_probes(container: &Value) {
    assert_eq!(
        container["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
}

fn env_of(deployment: &Value) -> BTreeMap<String, String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the container has env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap_or_default().to_owned();
            let value = match e["value"].as_str() {
                Some(value) => value.to_owned(),
                None => format!(
                    "fieldRef:{}",
                    e["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .unwrap_or_default()
                ),
            };
            (name, value)
        })
        .collect()
}

const MINIMAL: &str = "clusterId: chart-test\n";

/// Every option this chart has, set: what a real installation might use.
const EVERYTHING: &str = r#"
clusterId: "eks prod/eu-west-1"
replicaCount: 3
image:
  repository: registry.example.com/platform/patchfleet
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  pullPolicy: Always
imagePullSecrets: [{name: registry}]
logFormat: text
aws:
  region: eu-west-1
  ssmEndpoint: https://ssm.eu-west-1.amazonaws.com
  stsEndpoint: https://sts.eu-west-1.amazonaws.com
controller:
  concurrency: 16
  rateLimit: 2.5
  maxAttempts: 8
  resync: 10m
  deepInterval: 6h
  retry: "30"
  retryAttention: 5m
  runPollInterval: 30s
  complianceInterval: 30m
quotas:
  baselines: 1000000
  windows: 100
  targetsPerWindow: 200
  tasksPerWindow: 40
  patchGroupsPerBaseline: 50
leaderElection:
  enabled: true
  leaseDuration: 30s
  renewDeadline: 20s
  retryPeriod: 4s
httpPort: 9090
serviceAccount:
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/patchfleet-controller
serviceMonitor:
  enabled: true
  interval: 30s
  labels: {release: kube-prometheus-stack}
podDisruptionBudget:
  minAvailable: 2
priorityClassName: system-cluster-critical
podAnnotations: {example.com/team: platform}
extraEnv:
  - name: AWS_STS_REGIONAL_ENDPOINTS
    value: regional
dashboard:
  replicas: 3
  serviceAccount:
    name: patchfleet-web
    annotations:
      eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/patchfleet-dashboard
  service: {port: 8081, type: NodePort}
  rateLimit: 0.5
  refreshInterval: 10s
  cacheTtl: 2m
  authCacheTtl: "20"
  resources:
    requests: {cpu: 20m, memory: 32Mi}
    limits: {cpu: 250m, memory: 128Mi}
  podAnnotations: {example.com/team: web}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [{key: pool, operator: In, values: [web]}]
"#;

#[test]
fn helm_lint_strict_passes_with_minimal_and_full_values() {
    let scratch = Scratch::new("lint");
    for (name, values) in [("minimal", MINIMAL), ("everything", EVERYTHING)] {
        let values = scratch.values(name, values);
        let out = scratch.helm_ok([
            "lint".as_ref(),
            "--strict".as_ref(),
            chart_dir().as_os_str(),
            "--values".as_ref(),
            values.as_os_str(),
        ]);
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn helm_template_renders_every_object_with_the_restrictive_defaults() {
    let scratch = Scratch::new("template");
    let values = scratch.values("minimal", MINIMAL);
    let objects = scratch.template("pf", "patchfleet-system", &values);
    let expected: BTreeSet<String> = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(kinds(&objects), expected);
    for o in &objects {
        assert!(
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("pf-patchfleet")),
            "{o}"
        );
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/instance"], "pf");
        if !o["kind"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Cluster")
        {
            assert_eq!(o["metadata"]["namespace"], "patchfleet-system", "{o}");
        }
    }

    let deployment = named(&objects, "Deployment", "pf-patchfleet");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"],
        json!({"maxUnavailable": 0, "maxSurge": 1}),
        "with leader election the new pod stands by beside the old leader"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "pf-patchfleet");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"], true,
        "{}",
        pod["securityContext"]
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], "ghcr.io/patchfleet/patchfleet:0.1.0");
    assert_eq!(container["args"], json!(["run"]));
    assert_restricted(&container["securityContext"]);
    for key in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][key][resource].is_string(),
                "resources.{key}.{resource}: {}",
                container["resources"]
            );
        }
    }
    assert_http_port_and_probes(container);

    // Only what the chart must decide is set; every other flag keeps the binary's default.
    let env = env_of(deployment);
    let expected_env: BTreeMap<String, String> = [
        ("PATCHFLEET_CLUSTER_ID", "chart-test"),
        ("PATCHFLEET_LOG_FORMAT", "json"),
        ("PATCHFLEET_HTTP_ADDRESS", "0.0.0.0:8080"),
        ("AWS_REGION", "us-east-1"),
        ("PATCHFLEET_LEADER_ELECTION", "true"),
        ("PATCHFLEET_LEASE_NAME", "pf-patchfleet"),
        ("PATCHFLEET_LEASE_NAMESPACE", "fieldRef:metadata.namespace"),
        ("PATCHFLEET_IDENTITY", "fieldRef:metadata.name"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(env, expected_env);

    let account = named(&objects, "ServiceAccount", "pf-patchfleet");
    assert_eq!(account["automountServiceAccountToken"], true);
    let service = named(&objects, "Service", "pf-patchfleet");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let budget = object(&objects, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let binding = named(&objects, "ClusterRoleBinding", "pf-patchfleet");
    assert_eq!(binding["roleRef"]["name"], "pf-patchfleet");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "pf-patchfleet", "namespace": "patchfleet-system"}])
    );
    let binding = object(&objects, "RoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["name"], "pf-patchfleet");

    dashboard_renders_with_the_restrictive_defaults(&objects, deployment);
}

/// The dashboard's objects with the chart's defaults, beside `controller` (the controller's
/// Deployment): its own ServiceAccount, the controller's image and security contexts, no
/// leader election, and pods that no selector of the controller's selects.
fn dashboard_renders_with_the_restrictive_defaults(objects: &[Value], controller: &Value) {
    assert_eq!(
        names(objects, "Deployment"),
        ["pf-patchfleet", "pf-patchfleet-dashboard"]
            .map(str::to_owned)
            .into()
    );
    let deployment = named(objects, "Deployment", "pf-patchfleet-dashboard");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/component"],
        "dashboard"
    );
    let template = &deployment["spec"]["template"];
    let pod_labels = &template["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    // The controller's Deployment, Service and PodDisruptionBudget select its own pods
    // only, and the dashboard's selector only the dashboard's.
    let controller_selector = &controller["spec"]["selector"]["matchLabels"];
    assert!(!selects(controller_selector, pod_labels), "{pod_labels}");
    assert!(!selects(
        &named(objects, "Service", "pf-patchfleet")["spec"]["selector"],
        pod_labels
    ));
    assert!(!selects(
        &object(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    assert!(!selects(
        &deployment["spec"]["selector"]["matchLabels"],
        &controller["spec"]["template"]["metadata"]["labels"]
    ));

    let pod = &template["spec"];
    let controller_pod = &controller["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "pf-patchfleet-dashboard");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"], controller_pod["securityContext"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["name"], "dashboard");
    assert_eq!(container["image"], controller_pod["containers"][0]["image"]);
    assert_eq!(container["args"], json!(["dashboard"]));
    let security = &container["securityContext"];
    assert_eq!(
        security,
        &controller_pod["containers"][0]["securityContext"]
    );
    assert_restricted(security);
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    );
    assert_http_port_and_probes(container);
    let env = env_of(deployment);
    let expected_env: BTreeMap<String, String> = [
        ("POD_NAME", "fieldRef:metadata.name"),
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
        ("PATCHFLEET_LOG_FORMAT", "json"),
        ("PATCHFLEET_DASHBOARD_HTTP_ADDRESS", "0.0.0.0:8080"),
        ("AWS_REGION", "us-east-1"),
        ("PATCHFLEET_DASHBOARD_RATE_LIMIT", "2"),
        ("PATCHFLEET_DASHBOARD_REFRESH_INTERVAL", "5s"),
        ("PATCHFLEET_DASHBOARD_CACHE_TTL", "30s"),
        ("PATCHFLEET_DASHBOARD_AUTH_CACHE_TTL", "10s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(env, expected_env, "no leader election, no lease");

    let account = named(objects, "ServiceAccount", "pf-patchfleet-dashboard");
    assert_eq!(account["automountServiceAccountToken"], true);
    assert!(
        account["metadata"].get("annotations").is_none(),
        "{account}"
    );
    let service = named(objects, "Service", "pf-patchfleet-dashboard");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let binding = named(objects, "ClusterRoleBinding", "pf-patchfleet-dashboard");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pf-patchfleet-dashboard"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "pf-patchfleet-dashboard", "namespace": "patchfleet-system"}])
    );
    // The users' roles are bound by the cluster administrator, never by the chart.
    assert_eq!(
        names(objects, "ClusterRoleBinding"),
        ["pf-patchfleet", "pf-patchfleet-dashboard"]
            .map(str::to_owned)
            .into()
    );
}

#[test]
fn helm_template_passes_every_value_through() {
    let scratch = Scratch::new("everything");
    let values = scratch.values("everything", EVERYTHING);
    let objects = scratch.template("patchfleet", "ops", &values);
    assert!(kinds(&objects).contains("ServiceMonitor"));
    // The release name contains the chart name: objects are named just `patchfleet`.
    let monitor = object(&objects, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["name"], "patchfleet");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "http", "path": "/metrics", "scheme": "http", "interval": "30s"}])
    );
    let deployment = named(&objects, "Deployment", "patchfleet");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry"}]));
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/platform/patchfleet@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["ports"][0]["containerPort"], 9090);
    let env = env_of(deployment);
    for (name, value) in [
        ("PATCHFLEET_CLUSTER_ID", "eks prod/eu-west-1"),
        ("PATCHFLEET_LOG_FORMAT", "text"),
        ("PATCHFLEET_HTTP_ADDRESS", "0.0.0.0:9090"),
        ("AWS_REGION", "eu-west-1"),
        (
            "PATCHFLEET_SSM_ENDPOINT",
            "https://ssm.eu-west-1.amazonaws.com",
        ),
        (
            "PATCHFLEET_STS_ENDPOINT",
            "https://sts.eu-west-1.amazonaws.com",
        ),
        ("PATCHFLEET_CONCURRENCY", "16"),
        ("PATCHFLEET_RATE_LIMIT", "2.5"),
        ("PATCHFLEET_MAX_ATTEMPTS", "8"),
        ("PATCHFLEET_RESYNC", "10m"),
        ("PATCHFLEET_DEEP_INTERVAL", "6h"),
        ("PATCHFLEET_RETRY", "30"),
        ("PATCHFLEET_RETRY_ATTENTION", "5m"),
        ("PATCHFLEET_RUN_POLL_INTERVAL", "30s"),
        ("PATCHFLEET_COMPLIANCE_INTERVAL", "30m"),
        // Whole numbers are printed as integers (YAML numbers reach templates as floats).
        ("PATCHFLEET_QUOTA_BASELINES", "1000000"),
        ("PATCHFLEET_QUOTA_WINDOWS", "100"),
        ("PATCHFLEET_QUOTA_TARGETS_PER_WINDOW", "200"),
        ("PATCHFLEET_QUOTA_TASKS_PER_WINDOW", "40"),
        ("PATCHFLEET_QUOTA_PATCH_GROUPS_PER_BASELINE", "50"),
        ("PATCHFLEET_LEADER_ELECTION", "true"),
        ("PATCHFLEET_LEASE_NAME", "patchfleet"),
        ("PATCHFLEET_LEASE_DURATION", "30s"),
        ("PATCHFLEET_LEASE_RENEW_DEADLINE", "20s"),
        ("PATCHFLEET_LEASE_RETRY_PERIOD", "4s"),
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    let account = named(&objects, "ServiceAccount", "patchfleet");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/patchfleet-controller"
    );
    let budget = object(&objects, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"], 2);
    assert!(budget["spec"].get("maxUnavailable").is_none());

    // The dashboard: its own values, and the controller's image, AWS settings, attempts
    // and compliance interval, so that both agree.
    let dashboard = named(&objects, "Deployment", "patchfleet-dashboard");
    assert_eq!(dashboard["spec"]["replicas"], 3);
    let template = &dashboard["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"],
        json!({"example.com/team": "web"})
    );
    let pod = &template["spec"];
    assert_eq!(pod["serviceAccountName"], "patchfleet-web");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry"}]));
    assert!(pod.get("priorityClassName").is_none(), "{pod}");
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}])
    );
    assert_eq!(
        pod["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["web"]}]}]
        }}})
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}})
    );
    let dashboard_env = env_of(dashboard);
    for (name, value) in [
        ("PATCHFLEET_LOG_FORMAT", "text"),
        ("PATCHFLEET_DASHBOARD_HTTP_ADDRESS", "0.0.0.0:8080"),
        ("AWS_REGION", "eu-west-1"),
        (
            "PATCHFLEET_SSM_ENDPOINT",
            "https://ssm.eu-west-1.amazonaws.com",
        ),
        (
            "PATCHFLEET_STS_ENDPOINT",
            "https://sts.eu-west-1.amazonaws.com",
        ),
        ("PATCHFLEET_MAX_ATTEMPTS", "8"),
        ("PATCHFLEET_COMPLIANCE_INTERVAL", "30m"),
        ("PATCHFLEET_DASHBOARD_RATE_LIMIT", "0.5"),
        ("PATCHFLEET_DASHBOARD_REFRESH_INTERVAL", "10s"),
        ("PATCHFLEET_DASHBOARD_CACHE_TTL", "2m"),
        ("PATCHFLEET_DASHBOARD_AUTH_CACHE_TTL", "20"),
    ] {
        assert_eq!(
            dashboard_env.get(name).map(String::as_str),
            Some(value),
            "dashboard {name}"
        );
        if !name.starts_with("PATCHFLEET_DASHBOARD_") {
            assert_eq!(
                dashboard_env.get(name),
                env.get(name),
                "both agree on {name}"
            );
        }
    }
    // The controller's own settings stay the controller's.
    for name in [
        "PATCHFLEET_RATE_LIMIT",
        "PATCHFLEET_CONCURRENCY",
        "PATCHFLEET_LEADER_ELECTION",
        "AWS_STS_REGIONAL_ENDPOINTS",
    ] {
        assert!(!dashboard_env.contains_key(name), "dashboard {name}");
    }
    let account = named(&objects, "ServiceAccount", "patchfleet-web");
    assert_eq!(
        account["metadata"]["annotations"],
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/patchfleet-dashboard"})
    );
    let service = named(&objects, "Service", "patchfleet-dashboard");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["port"], 8081);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    // Prometheus scrapes the controller's Service only.
    assert!(!selects(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));
    let binding = named(&objects, "ClusterRoleBinding", "patchfleet-dashboard");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "patchfleet-web", "namespace": "ops"}])
    );
}

#[test]
fn one_replica_without_leader_election_renders_no_lease_role_and_no_budget() {
    let scratch = Scratch::new("single");
    let values = scratch.values(
        "single",
        "clusterId: single\nreplicaCount: 1\nleaderElection: {enabled: false}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    let kinds = kinds(&objects);
    for absent in ["Role", "RoleBinding", "PodDisruptionBudget"] {
        assert!(!kinds.contains(absent), "{absent} rendered: {kinds:?}");
    }
    let deployment = named(&objects, "Deployment", "pf-patchfleet");
    let env = env_of(deployment);
    assert_eq!(env["PATCHFLEET_LEADER_ELECTION"], "false");
    assert!(!env.contains_key("PATCHFLEET_LEASE_NAME"), "{env:?}");
    // No surge pod reconciling beside the old one during an upgrade.
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "Recreate"}),
        "without leader election an upgrade stops the old pod first"
    );

    // Two replicas without a leader would both write to SSM: refused.
    let values = scratch.values("two", "clusterId: two\nleaderElection: {enabled: false}\n");
    let output = run(&mut scratch.helm([
        "template".as_ref(),
        "pf".as_ref(),
        chart_dir().as_os_str(),
        "--values".as_ref(),
        values.as_os_str(),
    ]));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("leaderElection.enabled=false"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The dashboard's objects among `objects`: by component label or name.
fn dashboard_objects(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            o["metadata"]["labels"]["app.kubernetes.io/component"] == "dashboard"
                || name.contains("dashboard")
                || name.contains("fleet-viewer")
        })
        .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
        .collect()
}

#[test]
fn the_dashboard_follows_its_switch_and_the_service_account_and_rbac_ones() {
    let scratch = Scratch::new("dashboard-off");
    let values = scratch.values("off", "clusterId: x\ndashboard: {enabled: false}\n");
    let objects = scratch.template("pf", "ops", &values);
    assert!(
        dashboard_objects(&objects).is_empty(),
        "{:?}",
        dashboard_objects(&objects)
    );
    // The controller's objects are all still there.
    assert_eq!(
        names(&objects, "Deployment"),
        ["pf-patchfleet".to_owned()].into()
    );
    assert_eq!(
        names(&objects, "ClusterRole"),
        ["pf-patchfleet".to_owned()].into()
    );
    // Nor does it need a ServiceAccount name when the chart creates none.
    let values = scratch.values(
        "off-no-account",
        "clusterId: x\nserviceAccount: {create: false, name: ctl}\ndashboard: {enabled: false}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    assert!(dashboard_objects(&objects).is_empty());

    // serviceAccount.create=false creates neither ServiceAccount; the dashboard's name is
    // then required.
    let values = scratch.values(
        "no-account",
        "clusterId: x\nserviceAccount: {create: false, name: ctl}\n",
    );
    let output = run(&mut scratch.helm([
        "template".as_ref(),
        "pf".as_ref(),
        chart_dir().as_os_str(),
        "--values".as_ref(),
        values.as_os_str(),
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dashboard.serviceAccount.name"), "{stderr}");
    let values = scratch.values(
        "named-accounts",
        "clusterId: x\nserviceAccount: {create: false, name: ctl}\n\
         dashboard: {serviceAccount: {name: web}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    assert!(!kinds(&objects).contains("ServiceAccount"));
    let pod = &named(&objects, "Deployment", "pf-patchfleet-dashboard")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "web");
    assert_eq!(
        named(&objects, "ClusterRoleBinding", "pf-patchfleet-dashboard")["subjects"][0]["name"],
        "web"
    );

    // rbac.create=false: no ClusterRole at all, the dashboard still runs.
    let values = scratch.values("no-rbac", "clusterId: x\nrbac: {create: false}\n");
    let objects = scratch.template("pf", "ops", &values);
    let kinds = kinds(&objects);
    for absent in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(!kinds.contains(absent), "{absent} rendered: {kinds:?}");
    }
    named(&objects, "Deployment", "pf-patchfleet-dashboard");
    named(&objects, "ServiceAccount", "pf-patchfleet-dashboard");
}

/// Each rule of one of the chart's ClusterRoles or its Role as (apiGroup, resource[/name]) -> verbs.
fn rules(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut rules: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let keys: Vec<String> = if names.is_empty() {
                    vec![resource.clone()]
                } else {
                    names.iter().map(|n| format!("{resource}/{n}")).collect()
                };
                for key in keys {
                    rules
                        .entry((group.clone(), key))
                        .or_default()
                        .extend(strings(&rule["verbs"]));
                }
            }
        }
    }
    rules
}

#[test]
fn rbac_grants_only_what_the_controller_uses() {
    let scratch = Scratch::new("rbac");
    let values = scratch.values("minimal", MINIMAL);
    let objects = scratch.template("pf", "ops", &values);
    // The controller's ClusterRole, the dashboard's, and the two for the dashboard's users.
    assert_eq!(
        names(&objects, "ClusterRole"),
        [
            "pf-patchfleet",
            "pf-patchfleet-dashboard",
            "pf-patchfleet-dashboard-viewer",
            "pf-patchfleet-fleet-viewer",
        ]
        .map(str::to_owned)
        .into()
    );
    let roles = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role");
    for role in roles {
        let kind = format!("{} {}", role["kind"], role["metadata"]["name"]);
        for rule in role["rules"].as_array().expect("rules") {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strings(&rule[field]).iter().any(|s| s.contains('*')),
                    "{kind}: wildcard in {field}: {rule}"
                );
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{kind}: {rule}");
            assert!(
                !strings(&rule["resources"])
                    .iter()
                    .any(|r| r.starts_with("secrets") || r.starts_with("configmaps")),
                "{kind}: {rule}"
            );
        }
    }

    let set =
        |verbs: &[&str]| -> BTreeSet<String> { verbs.iter().map(|v| v.to_string()).collect() };
    let mut expected = BTreeMap::new();
    for kind in KINDS {
        let group = "patchfleet.io".to_owned();
        expected.insert(
            (group.clone(), kind.to_owned()),
            set(&["get", "list", "watch", "patch"]),
        );
        expected.insert((group, format!("{kind}/status")), set(&["patch"]));
    }
    expected.insert(
        (String::new(), "namespaces".to_owned()),
        set(&["list", "watch"]),
    );
    expected.insert(
        ("events.k8s.io".to_owned(), "events".to_owned()),
        set(&["create", "patch"]),
    );
    assert_eq!(
        rules(named(&objects, "ClusterRole", "pf-patchfleet")),
        expected
    );

    let mut expected = BTreeMap::new();
    expected.insert(
        ("coordination.k8s.io".to_owned(), "leases".to_owned()),
        set(&["create"]),
    );
    expected.insert(
        (
            "coordination.k8s.io".to_owned(),
            "leases/pf-patchfleet".to_owned(),
        ),
        set(&["get", "update"]),
    );
    assert_eq!(rules(object(&objects, "Role")), expected);
}

#[test]
fn rbac_grants_the_dashboard_and_its_users_only_what_they_read() {
    let scratch = Scratch::new("rbac-dashboard");
    let values = scratch.values("minimal", MINIMAL);
    let objects = scratch.template("pf", "ops", &values);
    let set =
        |verbs: &[&str]| -> BTreeSet<String> { verbs.iter().map(|v| v.to_string()).collect() };
    let mut viewer = BTreeMap::new();
    for kind in DASHBOARD_KINDS {
        viewer.insert(
            ("patchfleet.io".to_owned(), kind.to_owned()),
            set(&["get", "list", "watch"]),
        );
    }

    // The dashboard: who a token is, may they see it, and the objects and Events it shows.
    let mut expected = viewer.clone();
    expected.insert(
        (
            "authentication.k8s.io".to_owned(),
            "tokenreviews".to_owned(),
        ),
        set(&["create"]),
    );
    expected.insert(
        (
            "authorization.k8s.io".to_owned(),
            "subjectaccessreviews".to_owned(),
        ),
        set(&["create"]),
    );
    expected.insert(
        (String::new(), "events".to_owned()),
        set(&["get", "list", "watch"]),
    );
    assert_eq!(
        rules(named(&objects, "ClusterRole", "pf-patchfleet-dashboard")),
        expected
    );

    // Its users: the pages, and with fleet-viewer the detail the dashboard reads from SSM.
    assert_eq!(
        rules(named(
            &objects,
            "ClusterRole",
            "pf-patchfleet-dashboard-viewer"
        )),
        viewer
    );
    let mut fleet = viewer.clone();
    fleet.insert(
        (
            "patchfleet.io".to_owned(),
            "systemaccounts/fleet".to_owned(),
        ),
        set(&["get"]),
    );
    assert_eq!(
        rules(named(&objects, "ClusterRole", "pf-patchfleet-fleet-viewer")),
        fleet
    );
}

/// Values the schema must reject, and the field its error must name.
const WRONG_VALUES: [(&str, &str, &str); 25] = [
    (
        "replicas-string",
        "clusterId: x\nreplicaCount: two\n",
        "/replicaCount",
    ),
    (
        "concurrency-negative",
        "clusterId: x\ncontroller: {concurrency: -1}\n",
        "/controller/concurrency",
    ),
    ("log-format", "clusterId: x\nlogFormat: xml\n", "/logFormat"),
    ("cluster-id-missing", "replicaCount: 1\n", "/clusterId"),
    ("cluster-id-empty", "clusterId: \"\"\n", "/clusterId"),
    ("cluster-id-charset", "clusterId: \"a#b\"\n", "/clusterId"),
    (
        "duration",
        "clusterId: x\ncontroller: {resync: 5 minutes}\n",
        "/controller/resync",
    ),
    (
        "lease-duration",
        "clusterId: x\nleaderElection: {leaseDuration: 1.5s}\n",
        "/leaderElection/leaseDuration",
    ),
    (
        "unknown-key",
        "clusterId: x\ncontroller: {concurency: 4}\n",
        "concurency",
    ),
    (
        "leader-election-type",
        "clusterId: x\nleaderElection: {enabled: \"yes\"}\n",
        "/leaderElection/enabled",
    ),
    (
        "dashboard-enabled-type",
        "clusterId: x\ndashboard: {enabled: \"yes\"}\n",
        "/dashboard/enabled",
    ),
    (
        "dashboard-replicas",
        "clusterId: x\ndashboard: {replicas: 0}\n",
        "/dashboard/replicas",
    ),
    (
        "dashboard-rate-limit",
        "clusterId: x\ndashboard: {rateLimit: 0}\n",
        "/dashboard/rateLimit",
    ),
    (
        "dashboard-cache-ttl",
        "clusterId: x\ndashboard: {cacheTtl: 30 seconds}\n",
        "/dashboard/cacheTtl",
    ),
    (
        "dashboard-service-port",
        "clusterId: x\ndashboard: {service: {port: 70000}}\n",
        "/dashboard/service/port",
    ),
    (
        "dashboard-service-type",
        "clusterId: x\ndashboard: {service: {type: Ingress}}\n",
        "/dashboard/service/type",
    ),
    (
        "dashboard-unknown-key",
        "clusterId: x\ndashboard: {serviceAccount: {anotations: {}}}\n",
        "anotations",
    ),
    (
        "enroll-enabled-type",
        "clusterId: x\nenroll: {enabled: \"yes\"}\n",
        "/enroll/enabled",
    ),
    (
        "enroll-audience-http",
        "clusterId: x\nenroll: {audience: \"http://enroll.example.com\"}\n",
        "/enroll/audience",
    ),
    (
        "enroll-replicas",
        "clusterId: x\nenroll: {replicas: 0}\n",
        "/enroll/replicas",
    ),
    (
        "enroll-service-type",
        "clusterId: x\nenroll: {service: {type: Ingress}}\n",
        "/enroll/service/type",
    ),
    (
        "enroll-rate-limit",
        "clusterId: x\nenroll: {rateLimit: 0}\n",
        "/enroll/rateLimit",
    ),
    (
        "enroll-vcenter-name",
        "clusterId: x\nenroll: {vmware: {vcenters: [\"vc=/etc/passwd\"]}}\n",
        "/enroll/vmware/vcenters/0",
    ),
    (
        "enroll-certificate-duration",
        "clusterId: x\nenroll: {tls: {certManager: {duration: 90 days}}}\n",
        "/enroll/tls/certManager/duration",
    ),
    (
        "enroll-unknown-key",
        "clusterId: x\nenroll: {tls: {certmanager: {enabled: true}}}\n",
        "certmanager",
    ),
];

#[test]
fn the_schema_rejects_wrong_values_naming_the_field() {
    let scratch = Scratch::new("schema");
    let mut failures = Vec::new();
    for (name, values, field) in WRONG_VALUES {
        let values = scratch.values(name, values);
        for command in ["template", "lint"] {
            let mut args: Vec<&std::ffi::OsStr> = vec![command.as_ref()];
            if command == "template" {
                args.push("pf".as_ref());
            }
            let chart = chart_dir();
            args.extend([chart.as_os_str(), "--values".as_ref(), values.as_os_str()]);
            let output = run(&mut scratch.helm(&args));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if output.status.success() {
                failures.push(format!("{name}: helm {command} accepted it"));
            } else if !text.contains(field) {
                failures.push(format!(
                    "{name}: helm {command}'s error does not name {field}:\n{text}"
                ));
            } else if command == "template" && !text.contains("schema") {
                failures.push(format!("{name}: not a schema error:\n{text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_chart_ships_the_generated_crds_byte_for_byte() {
    let list = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("a readable entry").path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                (name, bytes)
            })
            .collect()
    };
    let crds = list(&repo_root().join("crds"));
    let chart = list(&chart_dir().join("crds"));
    assert_eq!(
        crds.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>(),
        "charts/patchfleet/crds/ must hold exactly crds/: run `cargo run -p patchfleet -- crdgen`"
    );
    assert_eq!(
        crds.keys().cloned().collect::<BTreeSet<String>>(),
        KINDS
            .iter()
            .map(|k| format!("{k}.patchfleet.io.yaml"))
            .collect::<BTreeSet<String>>()
    );
    for (name, bytes) in &crds {
        assert!(
            chart.get(name) == Some(bytes),
            "charts/patchfleet/crds/{name} differs from crds/{name}: run `cargo run -p patchfleet -- crdgen`"
        );
    }
}

/// The chart rendered for `release` in `namespace` with `values` (YAML), written to a file
/// for kubectl.
fn render_to_file(scratch: &Scratch, release: &str, namespace: &str, values: &str) -> PathBuf {
    let values = scratch.values("render", values);
    let rendered = scratch.render(release, namespace, &values, &[]);
    let path = scratch.path("rendered.yaml");
    std::fs::write(&path, rendered).expect("writing the rendered chart");
    path
}

/// `kubectl apply --server-side --dry-run=server -f FILE`: (stdout, stderr); fails the
/// test unless the API server accepts every object.
fn server_dry_run(plane: &ControlPlane, file: &Path) -> (String, String) {
    let mut command = plane.kubectl_command([
        "apply".as_ref(),
        "--server-side".as_ref(),
        "--dry-run=server".as_ref(),
        "--field-manager=patchfleet-tests".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
    ]);
    let output = run(&mut command);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the API server refused the rendered chart:\n{stdout}{stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn the_rendered_chart_passes_a_server_side_dry_run_and_the_restricted_pod_security() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-dry-run")
        .await
        .expect("namespace");
    // PodSecurity admission warns about a Deployment's pod template that the namespace's
    // `warn` level would refuse (enforcement applies to pods, and no pods exist here).
    plane
        .kubectl([
            "label",
            "namespace",
            &namespace.name,
            "pod-security.kubernetes.io/warn=restricted",
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .expect("labels the namespace");
    let scratch = Scratch::new("dry-run");
    let rendered = render_to_file(&scratch, "dry", &namespace.name, MINIMAL);
    let (out, warnings) = server_dry_run(plane, &rendered);
    for kind in [
        "serviceaccount/dry-patchfleet",
        "clusterrole.rbac.authorization.k8s.io/dry-patchfleet",
        "clusterrolebinding.rbac.authorization.k8s.io/dry-patchfleet",
        "role.rbac.authorization.k8s.io/dry-patchfleet-leader-election",
        "rolebinding.rbac.authorization.k8s.io/dry-patchfleet-leader-election",
        "service/dry-patchfleet",
        "deployment.apps/dry-patchfleet",
        "poddisruptionbudget.policy/dry-patchfleet",
        "serviceaccount/dry-patchfleet-dashboard",
        "clusterrole.rbac.authorization.k8s.io/dry-patchfleet-dashboard",
        "clusterrolebinding.rbac.authorization.k8s.io/dry-patchfleet-dashboard",
        "clusterrole.rbac.authorization.k8s.io/dry-patchfleet-dashboard-viewer",
        "clusterrole.rbac.authorization.k8s.io/dry-patchfleet-fleet-viewer",
        "service/dry-patchfleet-dashboard",
        "deployment.apps/dry-patchfleet-dashboard",
    ] {
        assert!(
            out.contains(&format!("{kind} serverside-applied (server dry run)")),
            "{kind}: {out}"
        );
    }
    // Both pod templates, the controller's and the dashboard's, are checked.
    assert!(
        !warnings.contains("PodSecurity"),
        "a pod template violates the restricted Pod Security Standard:\n{warnings}"
    );
    // The check above is not vacuous: a weakened security context is reported.
    let weakened = render_to_file(
        &scratch,
        "dry",
        &namespace.name,
        "clusterId: x\nsecurityContext: {allowPrivilegeEscalation: true}\n",
    );
    let (_, warnings) = server_dry_run(plane, &weakened);
    assert!(
        warnings.contains("would violate PodSecurity \"restricted:latest\"")
            && warnings.contains("allowPrivilegeEscalation"),
        "{warnings}"
    );
    // The dashboard's pod template is checked too (its container shares the values).
    for container in ["controller", "dashboard"] {
        assert!(
            warnings.contains(&format!("container \"{container}\"")),
            "{warnings}"
        );
    }
    // A dry run creates nothing.
    let left = plane
        .kubectl([
            "get",
            "deployments,serviceaccounts",
            "-n",
            &namespace.name,
            "-o",
            "name",
        ])
        .expect("kubectl get");
    assert!(!left.contains("dry-patchfleet"), "{left}");
    namespace.delete().await;
}

#[tokio::test]
async fn helm_install_creates_every_object() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-install")
        .await
        .expect("namespace");
    let scratch = Scratch::new("install");
    let values = scratch.values("minimal", MINIMAL);
    let release = "inst";
    let out = scratch.helm_ok([
        "install".as_ref(),
        release.as_ref(),
        chart_dir().as_os_str(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        namespace.name.as_ref(),
        "--values".as_ref(),
        values.as_os_str(),
        "--timeout".as_ref(),
        "60s".as_ref(),
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    // NOTES.txt is shown.
    assert!(
        out.contains("kubectl apply --server-side -f charts/patchfleet/crds/"),
        "{out}"
    );
    let name = format!("{release}-patchfleet");
    let ns = namespace.name.as_str();
    // How to open the dashboard.
    assert!(
        out.contains(&format!(
            "kubectl -n {ns} port-forward svc/{name}-dashboard 8080:80"
        )) && out.contains("http://localhost:8080")
            && out.contains(&format!("--clusterrole={name}-dashboard-viewer")),
        "{out}"
    );
    let dashboard = format!("{name}-dashboard");
    for (resource, object, namespaced) in [
        ("serviceaccount", name.clone(), true),
        ("service", name.clone(), true),
        ("deployment.apps", name.clone(), true),
        ("poddisruptionbudget.policy", name.clone(), true),
        (
            "role.rbac.authorization.k8s.io",
            format!("{name}-leader-election"),
            true,
        ),
        (
            "rolebinding.rbac.authorization.k8s.io",
            format!("{name}-leader-election"),
            true,
        ),
        ("clusterrole.rbac.authorization.k8s.io", name.clone(), false),
        (
            "clusterrolebinding.rbac.authorization.k8s.io",
            name.clone(),
            false,
        ),
        ("serviceaccount", dashboard.clone(), true),
        ("service", dashboard.clone(), true),
        ("deployment.apps", dashboard.clone(), true),
        (
            "clusterrole.rbac.authorization.k8s.io",
            dashboard.clone(),
            false,
        ),
        (
            "clusterrolebinding.rbac.authorization.k8s.io",
            dashboard.clone(),
            false,
        ),
        (
            "clusterrole.rbac.authorization.k8s.io",
            format!("{name}-dashboard-viewer"),
            false,
        ),
        (
            "clusterrole.rbac.authorization.k8s.io",
            format!("{name}-fleet-viewer"),
            false,
        ),
    ] {
        let mut args = vec!["get", resource, &object, "-o", "json"];
        if namespaced {
            args.extend(["-n", ns]);
        }
        let json = plane
            .kubectl(&args)
            .unwrap_or_else(|e| panic!("{resource}/{object} after helm install: {e:#}"));
        let live: Value = serde_json::from_str(&json).expect("kubectl prints JSON");
        assert_eq!(
            live["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        assert_eq!(
            live["metadata"]["annotations"]["meta.helm.sh/release-name"],
            release
        );
    }
    for deployment in [&name, &dashboard] {
        let deployment: Value = serde_json::from_str(
            &plane
                .kubectl(["get", "deployment", deployment, "-n", ns, "-o", "json"])
                .expect("deployment"),
        )
        .expect("JSON");
        // The API server kept the security context as rendered (no defaulting changed it).
        let security = &deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{deployment}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{deployment}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    }
    // The CRDs were already installed by the fixture: helm skipped them, they are intact.
    for kind in KINDS {
        plane
            .kubectl(["get", "crd", &format!("{kind}.patchfleet.io"), "-o", "name"])
            .expect("CRD still there");
    }
    let status = scratch.helm_ok([
        "status".as_ref(),
        release.as_ref(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        ns.as_ref(),
    ]);
    assert!(status.contains("STATUS: deployed"), "{status}");

    // Uninstall removes the cluster-scoped objects too (no garbage collector runs here, so
    // this is helm deleting them itself).
    scratch.helm_ok([
        "uninstall".as_ref(),
        release.as_ref(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        ns.as_ref(),
    ]);
    let left = plane
        .kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"])
        .expect("kubectl get");
    assert!(!left.contains(&format!("/{name}")), "{left}");
    namespace.delete().await;
}

/// The chart with the minimal values, rendered and applied server-side in `namespace`;
/// the rendered file.
fn apply_rendered(
    plane: &ControlPlane,
    scratch: &Scratch,
    release: &str,
    namespace: &str,
) -> PathBuf {
    let rendered = render_to_file(scratch, release, namespace, MINIMAL);
    plane
        .kubectl([
            "apply".as_ref(),
            "--server-side".as_ref(),
            "--field-manager=patchfleet-tests".as_ref(),
            "-f".as_ref(),
            rendered.as_os_str(),
        ])
        .expect("the rendered chart applies");
    rendered
}

/// `kubectl auth can-i` as `user`: true for yes, false for no.
fn can_i(plane: &ControlPlane, user: &str, args: &[&str]) -> bool {
    let mut command = plane.kubectl_command(["auth", "can-i"]);
    command.args(args).arg(format!("--as={user}"));
    let output = run(&mut command);
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: {answer} {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test]
async fn the_service_account_can_do_its_job_and_nothing_else() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-rbac")
        .await
        .expect("namespace");
    let other = TestNamespace::create(&client, "chart-rbac-other")
        .await
        .expect("namespace");
    let scratch = Scratch::new("can-i");
    let release = "rbac";
    let rendered = apply_rendered(plane, &scratch, release, &namespace.name);
    let ns = namespace.name.as_str();
    let elsewhere = other.name.as_str();
    let lease = format!("{release}-patchfleet");
    let user = format!("system:serviceaccount:{ns}:{release}-patchfleet");

    let mut allowed: Vec<Vec<String>> = Vec::new();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    for kind in KINDS {
        let resource = format!("{kind}.patchfleet.io");
        for verb in ["get", "list", "watch", "patch"] {
            allowed.push(own(&[verb, &resource, "-A"]));
            allowed.push(own(&[verb, &resource, "-n", elsewhere]));
        }
        allowed.push(own(&[
            "patch",
            &resource,
            "--subresource=status",
            "-n",
            elsewhere,
        ]));
    }
    for verb in ["list", "watch"] {
        allowed.push(own(&[verb, "namespaces"]));
    }
    for verb in ["create", "patch"] {
        allowed.push(own(&[verb, "events.events.k8s.io", "-n", elsewhere]));
    }
    allowed.push(own(&["create", "leases.coordination.k8s.io", "-n", ns]));
    for verb in ["get", "update"] {
        allowed.push(own(&[
            verb,
            &format!("leases.coordination.k8s.io/{lease}"),
            "-n",
            ns,
        ]));
    }

    let mut denied: Vec<Vec<String>> = vec![
        own(&["get", "secrets", "-n", ns]),
        own(&["list", "secrets", "-A"]),
        own(&["watch", "secrets", "-n", elsewhere]),
        own(&["get", "configmaps", "-n", ns]),
        own(&["create", "deployments.apps", "-n", ns]),
        own(&["update", "deployments.apps", "-n", ns]),
        own(&["list", "pods", "-A"]),
        own(&["create", "serviceaccounts", "--subresource=token", "-n", ns]),
        own(&["impersonate", "serviceaccounts", "-A"]),
        own(&["escalate", "clusterroles.rbac.authorization.k8s.io"]),
        own(&["bind", "clusterroles.rbac.authorization.k8s.io"]),
        own(&["create", "customresourcedefinitions.apiextensions.k8s.io"]),
        own(&["update", "namespaces"]),
        own(&["create", "events", "-n", ns]),
        own(&["delete", "events.events.k8s.io", "-n", ns]),
        own(&["list", "leases.coordination.k8s.io", "-n", ns]),
        own(&[
            "delete",
            &format!("leases.coordination.k8s.io/{lease}"),
            "-n",
            ns,
        ]),
        own(&["get", "leases.coordination.k8s.io/someone-else", "-n", ns]),
        own(&[
            "update",
            "leases.coordination.k8s.io/someone-else",
            "-n",
            ns,
        ]),
        own(&["create", "leases.coordination.k8s.io", "-n", elsewhere]),
        own(&[
            "get",
            &format!("leases.coordination.k8s.io/{lease}"),
            "-n",
            elsewhere,
        ]),
        own(&["*", "*"]),
    ];
    for kind in KINDS {
        let resource = format!("{kind}.patchfleet.io");
        for verb in ["create", "update", "delete", "deletecollection"] {
            denied.push(own(&[verb, &resource, "-n", elsewhere]));
        }
        for (verb, subresource) in [
            ("update", "--subresource=status"),
            ("get", "--subresource=status"),
            ("update", "--subresource=finalizers"),
        ] {
            denied.push(own(&[verb, &resource, subresource, "-n", elsewhere]));
        }
    }
    denied.push(own(&["get", "namespaces"]));

    let mut failures = Vec::new();
    for args in &allowed {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if !can_i(plane, &user, &args) {
            failures.push(format!("denied, but the controller needs it: {args:?}"));
        }
    }
    for args in &denied {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if can_i(plane, &user, &args) {
            failures.push(format!(
                "allowed, but the controller never does it: {args:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Without the bindings nothing is allowed: the grants above come from the chart.
    let stranger = format!("system:serviceaccount:{ns}:not-patchfleet");
    assert!(!can_i(
        plane,
        &stranger,
        &["list", "systemaccounts.patchfleet.io"]
    ));

    let _ = plane.kubectl([
        "delete".as_ref(),
        "--wait=false".as_ref(),
        "-f".as_ref(),
        rendered.as_os_str(),
    ]);
    namespace.delete().await;
    other.delete().await;
}

/// Asks `kubectl auth can-i` as `user` for each of `allowed` (must be yes) and `denied`
/// (must be no); the failures, each saying who and what.
fn check_can_i(
    plane: &ControlPlane,
    user: &str,
    allowed: &[Vec<String>],
    denied: &[Vec<String>],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (args, expected) in allowed
        .iter()
        .map(|a| (a, true))
        .chain(denied.iter().map(|a| (a, false)))
    {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if can_i(plane, user, &args) != expected {
            let answer = if expected { "denied" } else { "allowed" };
            failures.push(format!("{user}: {answer}: {args:?}"));
        }
    }
    failures
}

#[tokio::test]
async fn the_dashboard_and_its_users_can_read_and_nothing_else() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-dashboard-rbac")
        .await
        .expect("namespace");
    let other = TestNamespace::create(&client, "chart-dashboard-rbac-other")
        .await
        .expect("namespace");
    let scratch = Scratch::new("dashboard-can-i");
    let release = "dash";
    let rendered = apply_rendered(plane, &scratch, release, &namespace.name);
    let ns = namespace.name.as_str();
    let elsewhere = other.name.as_str();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();

    // The dashboard's ServiceAccount: reviews tokens and access, reads the kinds it has
    // pages for and Events, and changes nothing.
    let dashboard = format!("system:serviceaccount:{ns}:{release}-patchfleet-dashboard");
    let mut allowed = vec![
        own(&["create", "tokenreviews.authentication.k8s.io"]),
        own(&["create", "subjectaccessreviews.authorization.k8s.io"]),
    ];
    for verb in ["get", "list", "watch"] {
        for kind in DASHBOARD_KINDS {
            let resource = format!("{kind}.patchfleet.io");
            allowed.push(own(&[verb, &resource, "-A"]));
            allowed.push(own(&[verb, &resource, "-n", elsewhere]));
        }
        allowed.push(own(&[verb, "events", "-A"]));
        allowed.push(own(&[verb, "events", "-n", elsewhere]));
    }
    let mut denied = vec![
        own(&["get", "secrets", "-n", ns]),
        own(&["list", "secrets", "-A"]),
        own(&["get", "configmaps", "-n", ns]),
        own(&["list", "pods", "-A"]),
        own(&["create", "events", "-n", elsewhere]),
        own(&["patch", "events", "-n", elsewhere]),
        own(&["create", "events.events.k8s.io", "-n", elsewhere]),
        own(&["list", "namespaces"]),
        own(&["get", "namespaces"]),
        own(&["create", "leases.coordination.k8s.io", "-n", ns]),
        own(&["create", "serviceaccounts", "--subresource=token", "-n", ns]),
        own(&["impersonate", "serviceaccounts", "-A"]),
        own(&["bind", "clusterroles.rbac.authorization.k8s.io"]),
        own(&["*", "*"]),
    ];
    for kind in KINDS {
        let resource = format!("{kind}.patchfleet.io");
        for verb in ["create", "patch", "update", "delete", "deletecollection"] {
            denied.push(own(&[verb, &resource, "-n", elsewhere]));
        }
        for verb in ["patch", "update"] {
            denied.push(own(&[
                verb,
                &resource,
                "--subresource=status",
                "-n",
                elsewhere,
            ]));
        }
    }
    // Per-instance detail is the users' permission, not the dashboard's own.
    denied.push(own(&[
        "get",
        "systemaccounts.patchfleet.io",
        "--subresource=fleet",
    ]));
    let mut failures = check_can_i(plane, &dashboard, &allowed, &denied);

    // The users' roles, bound as docs/install.md shows: cluster-wide to a user each, and
    // dashboard-viewer in one namespace to a third.
    let fleet_user = format!("{release}-fleet-user");
    let page_user = format!("{release}-page-user");
    let team_user = format!("{release}-team-user");
    let fleet_viewer = format!("{release}-patchfleet-fleet-viewer");
    let dashboard_viewer = format!("{release}-patchfleet-dashboard-viewer");
    let binding = |kind: &str, name: &str, role: &str, user: &str, namespace: Option<&str>| {
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        });
        if let Some(namespace) = namespace {
            binding["metadata"]["namespace"] = json!(namespace);
        }
        binding
    };
    let bindings = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            binding("ClusterRoleBinding", &fleet_user, &fleet_viewer, &fleet_user, None),
            binding("ClusterRoleBinding", &page_user, &dashboard_viewer, &page_user, None),
            binding("RoleBinding", &team_user, &dashboard_viewer, &team_user, Some(elsewhere)),
        ],
    });
    let bindings_file = scratch.path("bindings.json");
    std::fs::write(&bindings_file, bindings.to_string()).expect("writing the bindings");
    plane
        .kubectl(["apply".as_ref(), "-f".as_ref(), bindings_file.as_os_str()])
        .expect("the bindings apply");

    let fleet = own(&["get", "systemaccounts.patchfleet.io", "--subresource=fleet"]);
    let mut pages = Vec::new();
    for verb in ["get", "list", "watch"] {
        for kind in DASHBOARD_KINDS {
            pages.push(own(&[verb, &format!("{kind}.patchfleet.io"), "-A"]));
        }
    }
    let mut changes = Vec::new();
    for kind in KINDS {
        let resource = format!("{kind}.patchfleet.io");
        changes.push(own(&["patch", &resource, "-n", elsewhere]));
        changes.push(own(&["delete", &resource, "-n", elsewhere]));
    }
    changes.push(own(&["create", "tokenreviews.authentication.k8s.io"]));
    changes.push(own(&["list", "events", "-A"]));

    let mut allowed = pages.clone();
    allowed.push(fleet.clone());
    failures.extend(check_can_i(plane, &fleet_user, &allowed, &changes));

    let mut denied = changes.clone();
    denied.push(fleet.clone());
    failures.extend(check_can_i(plane, &page_user, &pages, &denied));

    // A RoleBinding: that namespace's groups and windows only, no account pages.
    let mut allowed = Vec::new();
    for kind in ["patchgroups", "maintenancewindows", "patchpolicies"] {
        let resource = format!("{kind}.patchfleet.io");
        allowed.push(own(&["get", &resource, "-n", elsewhere]));
        allowed.push(own(&["list", &resource, "-n", elsewhere]));
    }
    let mut denied = changes;
    denied.extend([
        own(&["get", "patchgroups.patchfleet.io", "-n", ns]),
        own(&["list", "maintenancewindows.patchfleet.io", "-A"]),
        own(&["get", "systemaccounts.patchfleet.io"]),
        fleet,
    ]);
    failures.extend(check_can_i(plane, &team_user, &allowed, &denied));
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    for file in [&bindings_file, &rendered] {
        let _ = plane.kubectl([
            "delete".as_ref(),
            "--wait=false".as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]);
    }
    namespace.delete().await;
    other.delete().await;
}

// The enrollment server (`enroll`): off by default; when enabled, its own objects, the
// controller's image, cluster id, AWS settings and security contexts, its TLS certificate
// from a Secret or cert-manager, and exactly the RBAC it uses.

/// The enrollment server with its certificate in an existing Secret.
const ENROLL_SECRET: &str = "clusterId: chart-test
enroll:
  enabled: true
  audience: https://enroll.example.com
  tls: {secretName: enroll-tls}
";

/// The enrollment server with its certificate from cert-manager.
const ENROLL_CERT_MANAGER: &str = "clusterId: chart-test
enroll:
  enabled: true
  audience: https://enroll.example.com:8443/patchfleet
  tls:
    certManager:
      enabled: true
      issuerRef: {name: letsencrypt}
";

/// Every enrollment value set, appended to EVERYTHING.
const ENROLL_EVERYTHING: &str = r#"
enroll:
  enabled: true
  replicas: 3
  audience: https://enroll.example.com
  serviceAccount:
    name: patchfleet-enroller
    annotations:
      eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/patchfleet-enroll
  service:
    type: LoadBalancer
    port: 8443
    annotations: {service.beta.kubernetes.io/aws-load-balancer-type: external}
    loadBalancerSourceRanges: [203.0.113.0/24, 198.51.100.0/24]
  tls:
    certManager:
      enabled: true
      issuerRef: {name: internal-ca, kind: Issuer, group: awspca.cert-manager.io}
      dnsNames: [enroll.example.com, enroll.internal.example.com]
      duration: 2160h
  aws:
    extraCertificatesConfigMap: aws-identity-certificates
    extraCertificatesKeys: [new-region.pem, govcloud.pem]
    noBuiltinCertificates: true
  gcp: {jwksUrl: "file:///etc/google/jwks.json", jwksRefresh: 30m}
  azure:
    rootsConfigMap: azure-trust
    intermediatesConfigMap: azure-trust
    signerNames: [metadata.azure.com, metadata.azure.us]
  vmware:
    keysConfigMap: vcenter-keys
    vcenters: [vc-a.example.com, vc-b]
  nonceKeySecret: enroll-nonce
  rateLimit: 2.5
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {cpu: 100m, memory: 64Mi}
  podAnnotations: {example.com/team: enroll}
  nodeSelector: {pool: edge}
  tolerations: [{key: dedicated, operator: Equal, value: edge, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [{key: pool, operator: In, values: [edge]}]
"#;

/// The enrollment server's objects among `objects`, as `Kind name`: by component label or
/// name.
fn enroll_objects(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            o["metadata"]["labels"]["app.kubernetes.io/component"] == "enroll"
                || name.contains("enroll")
        })
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// `helm template` of the chart with `values`, which must fail: the error. (`helm lint`
/// only reports a template's `fail` as [INFO]: lint mode renders on.)
fn helm_refuses(scratch: &Scratch, name: &str, values: &str) -> String {
    let values = scratch.values(name, values);
    let output = run(&mut scratch.helm([
        "template".as_ref(),
        "pf".as_ref(),
        chart_dir().as_os_str(),
        "--values".as_ref(),
        values.as_os_str(),
    ]));
    assert!(
        !output.status.success(),
        "{name}: helm template accepted it"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_enrollment_server_is_not_rendered_unless_enabled() {
    let scratch = Scratch::new("enroll-off");
    let values = scratch.values("minimal", MINIMAL);
    let objects = scratch.template("pf", "ops", &values);
    assert!(
        enroll_objects(&objects).is_empty(),
        "{:?}",
        enroll_objects(&objects)
    );
    let kinds = kinds(&objects);
    for absent in ["Certificate", "Secret"] {
        assert!(!kinds.contains(absent), "{absent} rendered: {kinds:?}");
    }
    // Off, none of its values is checked: no audience, both TLS choices, no ServiceAccount
    // name beside serviceAccount.create=false.
    let values = scratch.values(
        "off",
        "clusterId: x\nserviceAccount: {create: false, name: ctl}\n\
         dashboard: {serviceAccount: {name: web}}\n\
         enroll: {enabled: false, tls: {secretName: a, certManager: {enabled: true}}, \
         vmware: {keysConfigMap: keys}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    assert!(
        enroll_objects(&objects).is_empty(),
        "{:?}",
        enroll_objects(&objects)
    );
    // The controller's ClusterRole lets it reconcile Enrollments all the same (a release
    // may run the server elsewhere, or create none).
    let role = rules(named(
        &scratch.template("pf", "ops", &scratch.values("minimal", MINIMAL)),
        "ClusterRole",
        "pf-patchfleet",
    ));
    assert!(role.contains_key(&("patchfleet.io".to_owned(), "enrollments".to_owned())));
}

#[test]
fn helm_lint_strict_passes_with_the_enrollment_server() {
    let scratch = Scratch::new("enroll-lint");
    let everything = format!("{EVERYTHING}{ENROLL_EVERYTHING}");
    for (name, values) in [
        ("secret", ENROLL_SECRET),
        ("cert-manager", ENROLL_CERT_MANAGER),
        ("everything", everything.as_str()),
    ] {
        let values = scratch.values(name, values);
        let out = scratch.helm_ok([
            "lint".as_ref(),
            "--strict".as_ref(),
            chart_dir().as_os_str(),
            "--values".as_ref(),
            values.as_os_str(),
        ]);
        assert!(out.contains("0 chart(s) failed"), "{name}: {out}");
    }
}

#[test]
fn the_enrollment_server_renders_with_the_restrictive_defaults() {
    let scratch = Scratch::new("enroll-template");
    let values = scratch.values("enroll", ENROLL_SECRET);
    let objects = scratch.template("pf", "patchfleet-system", &values);
    let expected: BTreeSet<String> = [
        "Deployment pf-patchfleet-enroll",
        "Service pf-patchfleet-enroll",
        "ServiceAccount pf-patchfleet-enroll",
        "ClusterRole pf-patchfleet-enroll",
        "ClusterRoleBinding pf-patchfleet-enroll",
        "Role pf-patchfleet-enroll-events",
        "RoleBinding pf-patchfleet-enroll-events",
        "Secret pf-patchfleet-enroll-nonce",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(enroll_objects(&objects), expected);
    for o in &objects {
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/instance"], "pf");
        if !o["kind"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Cluster")
        {
            assert_eq!(o["metadata"]["namespace"], "patchfleet-system", "{o}");
        }
    }
    assert_eq!(
        names(&objects, "Deployment"),
        [
            "pf-patchfleet",
            "pf-patchfleet-dashboard",
            "pf-patchfleet-enroll"
        ]
        .map(str::to_owned)
        .into()
    );

    let controller = named(&objects, "Deployment", "pf-patchfleet");
    let dashboard = named(&objects, "Deployment", "pf-patchfleet-dashboard");
    let deployment = named(&objects, "Deployment", "pf-patchfleet-enroll");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/component"],
        "enroll"
    );
    let template = &deployment["spec"]["template"];
    let pod_labels = &template["metadata"]["labels"];
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert!(selects(selector, pod_labels));
    // No selector of the controller's or the dashboard's selects its pods, and its selector
    // selects neither's.
    for (what, other) in [
        (
            "controller Deployment",
            &controller["spec"]["selector"]["matchLabels"],
        ),
        (
            "dashboard Deployment",
            &dashboard["spec"]["selector"]["matchLabels"],
        ),
        (
            "controller Service",
            &named(&objects, "Service", "pf-patchfleet")["spec"]["selector"],
        ),
        (
            "dashboard Service",
            &named(&objects, "Service", "pf-patchfleet-dashboard")["spec"]["selector"],
        ),
        (
            "controller PodDisruptionBudget",
            &object(&objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        ),
    ] {
        assert!(!selects(other, pod_labels), "{what} selects {pod_labels}");
    }
    for other in [controller, dashboard] {
        assert!(!selects(
            selector,
            &other["spec"]["template"]["metadata"]["labels"]
        ));
    }

    let pod = &template["spec"];
    let controller_pod = &controller["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "pf-patchfleet-enroll");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"], controller_pod["securityContext"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["labelSelector"]["matchLabels"],
        *selector,
        "replicas spread over nodes"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["name"], "enroll");
    assert_eq!(container["image"], controller_pod["containers"][0]["image"]);
    assert_eq!(container["args"], json!(["enroll"]));
    let security = &container["securityContext"];
    assert_eq!(
        security,
        &controller_pod["containers"][0]["securityContext"]
    );
    assert_restricted(security);
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    );
    assert_eq!(
        container["ports"],
        json!([
            {"name": "https", "containerPort": 8443, "protocol": "TCP"},
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        ])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    // Only what the chart must decide is set, and the controller's cluster id.
    let expected_env = string_map(&[
        ("POD_NAME", "fieldRef:metadata.name"),
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
        ("PATCHFLEET_CLUSTER_ID", "chart-test"),
        ("PATCHFLEET_LOG_FORMAT", "json"),
        ("PATCHFLEET_ENROLL_HTTPS_ADDRESS", "0.0.0.0:8443"),
        ("PATCHFLEET_ENROLL_HTTP_ADDRESS", "0.0.0.0:8080"),
        ("PATCHFLEET_ENROLL_AUDIENCE", "https://enroll.example.com"),
        ("PATCHFLEET_ENROLL_TLS_CERT", "/etc/patchfleet/tls/tls.crt"),
        ("PATCHFLEET_ENROLL_TLS_KEY", "/etc/patchfleet/tls/tls.key"),
        (
            "PATCHFLEET_ENROLL_NONCE_KEY_FILE",
            "/etc/patchfleet/nonce/nonce-key",
        ),
        ("AWS_REGION", "us-east-1"),
        ("PATCHFLEET_ENROLL_RATE_LIMIT", "5"),
        (
            "PATCHFLEET_ENROLL_GCP_JWKS_URL",
            "https://www.googleapis.com/oauth2/v3/certs",
        ),
        ("PATCHFLEET_ENROLL_GCP_JWKS_REFRESH", "1h"),
        (
            "PATCHFLEET_ENROLL_AZURE_SIGNER_NAMES",
            "metadata.azure.com,*.metadata.azure.com",
        ),
    ]);
    let env = env_of(deployment);
    assert_eq!(env, expected_env);
    assert_eq!(
        env["PATCHFLEET_CLUSTER_ID"],
        env_of(controller)["PATCHFLEET_CLUSTER_ID"]
    );
    // The certificate and the nonce key, as whole volumes (never subPath: a renewed
    // Secret must reach the files the server reads again).
    assert_eq!(
        container["volumeMounts"],
        json!([
            {"name": "tls", "mountPath": "/etc/patchfleet/tls", "readOnly": true},
            {"name": "nonce-key", "mountPath": "/etc/patchfleet/nonce", "readOnly": true},
        ])
    );
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "tls", "secret": {"secretName": "enroll-tls"}},
            {"name": "nonce-key", "secret": {"secretName": "pf-patchfleet-enroll-nonce"}},
        ])
    );

    // The nonce key: 48 random letters and digits, and its digest on the pods, so that a
    // new key restarts every replica.
    let secret = named(&objects, "Secret", "pf-patchfleet-enroll-nonce");
    assert_eq!(secret["type"], "Opaque");
    let encoded = secret["data"]["nonce-key"]
        .as_str()
        .expect("data.nonce-key");
    let key = openssl::base64::decode_block(encoded).expect("base64");
    assert_eq!(key.len(), 48, "{encoded}");
    assert!(key.iter().all(u8::is_ascii_alphanumeric), "{encoded}");
    assert_eq!(
        secret["data"].as_object().map(|d| d.len()),
        Some(1),
        "{secret}"
    );
    let digest: String = openssl::sha::sha256(encoded.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        template["metadata"]["annotations"],
        json!({"checksum/nonce-key": digest})
    );
    // helm template cannot read a kept key back: each render makes a new one.
    let again = scratch.template("pf", "patchfleet-system", &values);
    assert_ne!(
        named(&again, "Secret", "pf-patchfleet-enroll-nonce")["data"]["nonce-key"],
        secret["data"]["nonce-key"]
    );

    let account = named(&objects, "ServiceAccount", "pf-patchfleet-enroll");
    assert_eq!(account["automountServiceAccountToken"], true);
    assert!(
        account["metadata"].get("annotations").is_none(),
        "{account}"
    );
    let service = named(&objects, "Service", "pf-patchfleet-enroll");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]),
        "the enrollment port only: /metrics is never exposed with it"
    );
    assert_eq!(service["spec"]["selector"], *selector);
    assert!(service["spec"].get("loadBalancerSourceRanges").is_none());
    assert!(!kinds(&objects).contains("Certificate"));
}

#[test]
fn the_enrollment_server_gets_its_certificate_from_cert_manager() {
    let scratch = Scratch::new("enroll-cert-manager");
    let values = scratch.values("enroll", ENROLL_CERT_MANAGER);
    let objects = scratch.template("pf", "patchfleet-system", &values);
    let certificate = object(&objects, "Certificate");
    assert_eq!(certificate["apiVersion"], "cert-manager.io/v1");
    assert_eq!(certificate["metadata"]["name"], "pf-patchfleet-enroll");
    assert_eq!(certificate["metadata"]["namespace"], "patchfleet-system");
    assert_eq!(
        certificate["metadata"]["labels"]["app.kubernetes.io/component"],
        "enroll"
    );
    // The audience's host name (no port, no path), and a new key at each renewal.
    assert_eq!(
        certificate["spec"],
        json!({
            "secretName": "pf-patchfleet-enroll-tls",
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "dnsNames": ["enroll.example.com"],
            "privateKey": {"rotationPolicy": "Always"},
        })
    );
    let deployment = named(&objects, "Deployment", "pf-patchfleet-enroll");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0],
        json!({"name": "tls", "secret": {"secretName": "pf-patchfleet-enroll-tls"}})
    );
    assert_eq!(
        env_of(deployment)["PATCHFLEET_ENROLL_AUDIENCE"],
        "https://enroll.example.com:8443/patchfleet"
    );
    assert_restricted(&pod["containers"][0]["securityContext"]);

    // An audience that is an IP address becomes the certificate's IP address.
    let values = scratch.values(
        "ip",
        "clusterId: x\nenroll: {enabled: true, audience: \"https://192.0.2.10\", \
         tls: {certManager: {enabled: true, issuerRef: {name: ca}}}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    let spec = &object(&objects, "Certificate")["spec"];
    assert_eq!(spec["ipAddresses"], json!(["192.0.2.10"]));
    assert!(spec.get("dnsNames").is_none(), "{spec}");
}

#[test]
fn helm_template_passes_every_enrollment_value_through() {
    let scratch = Scratch::new("enroll-everything");
    let values = scratch.values("everything", &format!("{EVERYTHING}{ENROLL_EVERYTHING}"));
    let objects = scratch.template("patchfleet", "ops", &values);
    let controller = named(&objects, "Deployment", "patchfleet");
    let deployment = named(&objects, "Deployment", "patchfleet-enroll");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let template = &deployment["spec"]["template"];
    // An existing nonce Secret: the chart creates none, and no digest of it is known.
    assert!(!kinds(&objects).contains("Secret"));
    assert_eq!(
        template["metadata"]["annotations"],
        json!({"example.com/team": "enroll"})
    );
    let pod = &template["spec"];
    assert_eq!(pod["serviceAccountName"], "patchfleet-enroller");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry"}]));
    assert!(pod.get("priorityClassName").is_none(), "{pod}");
    assert_eq!(pod["nodeSelector"], json!({"pool": "edge"}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}])
    );
    assert_eq!(
        pod["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["edge"]}]}]
        }}})
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        controller["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}})
    );
    let env = env_of(deployment);
    let controller_env = env_of(controller);
    for (name, value) in [
        ("PATCHFLEET_CLUSTER_ID", "eks prod/eu-west-1"),
        ("PATCHFLEET_LOG_FORMAT", "text"),
        ("AWS_REGION", "eu-west-1"),
        (
            "PATCHFLEET_SSM_ENDPOINT",
            "https://ssm.eu-west-1.amazonaws.com",
        ),
        (
            "PATCHFLEET_STS_ENDPOINT",
            "https://sts.eu-west-1.amazonaws.com",
        ),
        ("PATCHFLEET_MAX_ATTEMPTS", "8"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
        assert_eq!(
            env.get(name),
            controller_env.get(name),
            "both agree on {name}"
        );
    }
    for (name, value) in [
        ("PATCHFLEET_ENROLL_AUDIENCE", "https://enroll.example.com"),
        ("PATCHFLEET_ENROLL_RATE_LIMIT", "2.5"),
        (
            "PATCHFLEET_ENROLL_GCP_JWKS_URL",
            "file:///etc/google/jwks.json",
        ),
        ("PATCHFLEET_ENROLL_GCP_JWKS_REFRESH", "30m"),
        (
            "PATCHFLEET_ENROLL_AWS_CERTIFICATES",
            "/etc/patchfleet/aws/new-region.pem,/etc/patchfleet/aws/govcloud.pem",
        ),
        ("PATCHFLEET_ENROLL_NO_BUILTIN_AWS_CERTIFICATES", "true"),
        (
            "PATCHFLEET_ENROLL_AZURE_ROOTS",
            "/etc/patchfleet/azure-roots/roots.pem",
        ),
        (
            "PATCHFLEET_ENROLL_AZURE_INTERMEDIATES",
            "/etc/patchfleet/azure-intermediates/intermediates.pem",
        ),
        (
            "PATCHFLEET_ENROLL_AZURE_SIGNER_NAMES",
            "metadata.azure.com,metadata.azure.us",
        ),
        (
            "PATCHFLEET_ENROLL_VMWARE_KEYS",
            "vc-a.example.com=/etc/patchfleet/vmware/vc-a.example.com.pem,vc-b=/etc/patchfleet/vmware/vc-b.pem",
        ),
        (
            "PATCHFLEET_ENROLL_NONCE_KEY_FILE",
            "/etc/patchfleet/nonce/nonce-key",
        ),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    // The controller's own settings stay the controller's.
    for name in [
        "PATCHFLEET_RATE_LIMIT",
        "PATCHFLEET_CONCURRENCY",
        "PATCHFLEET_LEADER_ELECTION",
        "PATCHFLEET_HTTP_ADDRESS",
        "AWS_STS_REGIONAL_ENDPOINTS",
    ] {
        assert!(!env.contains_key(name), "enroll {name}");
    }
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "tls", "secret": {"secretName": "patchfleet-enroll-tls"}},
            {"name": "nonce-key", "secret": {"secretName": "enroll-nonce"}},
            {"name": "aws-certificates", "configMap": {"name": "aws-identity-certificates"}},
            {"name": "azure-roots", "configMap": {"name": "azure-trust"}},
            {"name": "azure-intermediates", "configMap": {"name": "azure-trust"}},
            {"name": "vmware-keys", "configMap": {"name": "vcenter-keys"}},
        ])
    );
    let mounts: BTreeMap<String, String> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            assert_eq!(m["readOnly"], true, "{m}");
            assert!(m.get("subPath").is_none(), "{m}");
            (
                m["name"].as_str().unwrap_or_default().to_owned(),
                m["mountPath"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        string_map(&[
            ("tls", "/etc/patchfleet/tls"),
            ("nonce-key", "/etc/patchfleet/nonce"),
            ("aws-certificates", "/etc/patchfleet/aws"),
            ("azure-roots", "/etc/patchfleet/azure-roots"),
            ("azure-intermediates", "/etc/patchfleet/azure-intermediates"),
            ("vmware-keys", "/etc/patchfleet/vmware"),
        ])
    );
    let certificate = object(&objects, "Certificate");
    assert_eq!(
        certificate["spec"],
        json!({
            "secretName": "patchfleet-enroll-tls",
            "issuerRef": {"name": "internal-ca", "kind": "Issuer", "group": "awspca.cert-manager.io"},
            "dnsNames": ["enroll.example.com", "enroll.internal.example.com"],
            "duration": "2160h",
            "privateKey": {"rotationPolicy": "Always"},
        })
    );
    let account = named(&objects, "ServiceAccount", "patchfleet-enroller");
    assert_eq!(
        account["metadata"]["annotations"],
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/patchfleet-enroll"})
    );
    let service = named(&objects, "Service", "patchfleet-enroll");
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "https", "port": 8443, "targetPort": "https", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["loadBalancerSourceRanges"],
        json!(["203.0.113.0/24", "198.51.100.0/24"])
    );
    assert_eq!(
        service["metadata"]["annotations"],
        json!({"service.beta.kubernetes.io/aws-load-balancer-type": "external"})
    );
    // Prometheus scrapes the controller's Service only.
    let monitor = object(&objects, "ServiceMonitor");
    assert!(!selects(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let name = if kind == "RoleBinding" {
            "patchfleet-enroll-events"
        } else {
            "patchfleet-enroll"
        };
        assert_eq!(
            named(&objects, kind, name)["subjects"],
            json!([{"kind": "ServiceAccount", "name": "patchfleet-enroller", "namespace": "ops"}])
        );
    }
}

#[test]
fn the_enrollment_server_refuses_to_render_without_what_it_needs() {
    let scratch = Scratch::new("enroll-refused");
    let mut failures = Vec::new();
    for (name, values, expected) in [
        (
            "no-audience",
            "clusterId: x\nenroll: {enabled: true, tls: {secretName: t}}\n",
            "enroll.audience is required when enroll.enabled is true",
        ),
        (
            "both-tls",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {secretName: t, certManager: {enabled: true, issuerRef: {name: ca}}}}\n",
            "enroll.tls: set either tls.secretName (an existing kubernetes.io/tls Secret) or tls.certManager.enabled=true (a cert-manager Certificate), not both",
        ),
        (
            "no-tls",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\"}\n",
            "enroll.tls: the enrollment server serves HTTPS only: set tls.secretName",
        ),
        (
            "no-issuer",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {certManager: {enabled: true}}}\n",
            "enroll.tls.certManager.issuerRef.name is required",
        ),
        (
            "vmware-no-vcenters",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {secretName: t}, vmware: {keysConfigMap: keys}}\n",
            "enroll.vmware.keysConfigMap needs enroll.vmware.vcenters",
        ),
        (
            "vmware-no-configmap",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {secretName: t}, vmware: {vcenters: [vc]}}\n",
            "enroll.vmware.vcenters needs enroll.vmware.keysConfigMap",
        ),
        (
            "azure-no-roots",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {secretName: t}, azure: {intermediatesConfigMap: i}}\n",
            "enroll.azure.intermediatesConfigMap needs enroll.azure.rootsConfigMap",
        ),
        (
            "aws-trusts-nothing",
            "clusterId: x\nenroll: {enabled: true, audience: \"https://e.example.com\", \
             tls: {secretName: t}, aws: {noBuiltinCertificates: true}}\n",
            "enroll.aws.noBuiltinCertificates needs enroll.aws.extraCertificatesConfigMap",
        ),
        (
            "no-account-name",
            "clusterId: x\nserviceAccount: {create: false, name: ctl}\n\
             dashboard: {enabled: false}\n\
             enroll: {enabled: true, audience: \"https://e.example.com\", tls: {secretName: t}}\n",
            "enroll.serviceAccount.name is required when serviceAccount.create is false",
        ),
    ] {
        let errors = helm_refuses(&scratch, name, values);
        if !errors.contains(expected) {
            failures.push(format!(
                "{name}: the error does not say {expected:?}:\n{errors}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // serviceAccount.create=false with the server's name: no ServiceAccount, the name used.
    let values = scratch.values(
        "named",
        "clusterId: x\nserviceAccount: {create: false, name: ctl}\ndashboard: {enabled: false}\n\
         enroll: {enabled: true, audience: \"https://e.example.com\", tls: {secretName: t}, \
         serviceAccount: {name: enroller}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    assert!(!kinds(&objects).contains("ServiceAccount"));
    assert_eq!(
        named(&objects, "Deployment", "pf-patchfleet-enroll")["spec"]["template"]["spec"]["serviceAccountName"],
        "enroller"
    );
    // rbac.create=false: no roles at all, the server still runs.
    let values = scratch.values(
        "no-rbac",
        "clusterId: x\nrbac: {create: false}\n\
         enroll: {enabled: true, audience: \"https://e.example.com\", tls: {secretName: t}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    let kinds = kinds(&objects);
    for absent in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(!kinds.contains(absent), "{absent} rendered: {kinds:?}");
    }
    named(&objects, "Deployment", "pf-patchfleet-enroll");
}

#[test]
fn rbac_grants_the_enrollment_server_only_what_it_uses() {
    let scratch = Scratch::new("enroll-rbac");
    let values = scratch.values("enroll", ENROLL_SECRET);
    let objects = scratch.template("pf", "ops", &values);
    let set =
        |verbs: &[&str]| -> BTreeSet<String> { verbs.iter().map(|v| v.to_string()).collect() };
    let group = "patchfleet.io".to_owned();
    // Cluster-wide: the SystemAccounts it maps machines to, and the Enrollments it creates
    // (cluster-scoped).
    let mut expected = BTreeMap::new();
    expected.insert(
        (group.clone(), "systemaccounts".to_owned()),
        set(&["get", "list", "watch"]),
    );
    expected.insert(
        (group.clone(), "enrollments".to_owned()),
        set(&["create", "get", "patch", "delete"]),
    );
    expected.insert((group, "enrollments/status".to_owned()), set(&["patch"]));
    let role = named(&objects, "ClusterRole", "pf-patchfleet-enroll");
    assert_eq!(rules(role), expected);
    // Its Events are about its own Pod: the release namespace only.
    let mut expected = BTreeMap::new();
    expected.insert(
        ("events.k8s.io".to_owned(), "events".to_owned()),
        set(&["create", "patch"]),
    );
    let events = named(&objects, "Role", "pf-patchfleet-enroll-events");
    assert_eq!(events["metadata"]["namespace"], "ops");
    assert_eq!(rules(events), expected);
    for role in [role, events] {
        for rule in role["rules"].as_array().expect("rules") {
            assert!(rule.get("resourceNames").is_none(), "{rule}");
            assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
        }
    }
    let subjects =
        json!([{"kind": "ServiceAccount", "name": "pf-patchfleet-enroll", "namespace": "ops"}]);
    let binding = named(&objects, "ClusterRoleBinding", "pf-patchfleet-enroll");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pf-patchfleet-enroll"})
    );
    assert_eq!(binding["subjects"], subjects);
    let binding = named(&objects, "RoleBinding", "pf-patchfleet-enroll-events");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pf-patchfleet-enroll-events"})
    );
    assert_eq!(binding["subjects"], subjects);
    // Nothing else changed: the controller's, the dashboard's and the viewers' roles are
    // those of the release without the server.
    let without = scratch.template("pf", "ops", &scratch.values("minimal", MINIMAL));
    for name in [
        "pf-patchfleet",
        "pf-patchfleet-dashboard",
        "pf-patchfleet-dashboard-viewer",
        "pf-patchfleet-fleet-viewer",
    ] {
        assert_eq!(
            rules(named(&objects, "ClusterRole", name)),
            rules(named(&without, "ClusterRole", name)),
            "{name}"
        );
    }
    assert_eq!(
        names(&objects, "ClusterRoleBinding"),
        [
            "pf-patchfleet",
            "pf-patchfleet-dashboard",
            "pf-patchfleet-enroll"
        ]
        .map(str::to_owned)
        .into()
    );
}

#[tokio::test]
async fn the_enrollment_server_passes_a_server_side_dry_run_and_the_restricted_pod_security() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-enroll-dry-run")
        .await
        .expect("namespace");
    plane
        .kubectl([
            "label",
            "namespace",
            &namespace.name,
            "pod-security.kubernetes.io/warn=restricted",
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .expect("labels the namespace");
    let scratch = Scratch::new("enroll-dry-run");
    let rendered = render_to_file(&scratch, "dry", &namespace.name, ENROLL_SECRET);
    let (out, warnings) = server_dry_run(plane, &rendered);
    for kind in [
        "secret/dry-patchfleet-enroll-nonce",
        "serviceaccount/dry-patchfleet-enroll",
        "clusterrole.rbac.authorization.k8s.io/dry-patchfleet-enroll",
        "clusterrolebinding.rbac.authorization.k8s.io/dry-patchfleet-enroll",
        "role.rbac.authorization.k8s.io/dry-patchfleet-enroll-events",
        "rolebinding.rbac.authorization.k8s.io/dry-patchfleet-enroll-events",
        "service/dry-patchfleet-enroll",
        "deployment.apps/dry-patchfleet-enroll",
    ] {
        assert!(
            out.contains(&format!("{kind} serverside-applied (server dry run)")),
            "{kind}: {out}"
        );
    }
    assert!(
        !warnings.contains("PodSecurity"),
        "a pod template violates the restricted Pod Security Standard:\n{warnings}"
    );
    // The enrollment server's pod template is among those checked.
    let weakened = render_to_file(
        &scratch,
        "dry",
        &namespace.name,
        &format!("{ENROLL_SECRET}securityContext: {{allowPrivilegeEscalation: true}}\n"),
    );
    let (_, warnings) = server_dry_run(plane, &weakened);
    assert!(
        warnings.contains("would violate PodSecurity \"restricted:latest\"")
            && warnings.contains("container \"enroll\""),
        "{warnings}"
    );
    let left = plane
        .kubectl([
            "get",
            "deployments,secrets",
            "-n",
            &namespace.name,
            "-o",
            "name",
        ])
        .expect("kubectl get");
    assert!(!left.contains("dry-patchfleet"), "{left}");
    namespace.delete().await;
}

#[tokio::test]
async fn the_enrollment_server_can_enroll_and_nothing_else() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-enroll-rbac")
        .await
        .expect("namespace");
    let other = TestNamespace::create(&client, "chart-enroll-rbac-other")
        .await
        .expect("namespace");
    let scratch = Scratch::new("enroll-can-i");
    let release = "enr";
    let ns = namespace.name.as_str();
    let elsewhere = other.name.as_str();
    let rendered = render_to_file(&scratch, release, ns, ENROLL_SECRET);
    plane
        .kubectl([
            "apply".as_ref(),
            "--server-side".as_ref(),
            "--field-manager=patchfleet-tests".as_ref(),
            "-f".as_ref(),
            rendered.as_os_str(),
        ])
        .expect("the rendered chart applies");
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let enrollments = "enrollments.patchfleet.io";
    let accounts = "systemaccounts.patchfleet.io";

    // The server: read SystemAccounts, create and settle Enrollments, report refusals as
    // Events about its own Pod.
    let server = format!("system:serviceaccount:{ns}:{release}-patchfleet-enroll");
    let mut allowed = Vec::new();
    for verb in ["get", "list", "watch"] {
        allowed.push(own(&[verb, accounts]));
    }
    for verb in ["create", "get", "patch", "delete"] {
        allowed.push(own(&[verb, enrollments]));
    }
    allowed.push(own(&["patch", enrollments, "--subresource=status"]));
    for verb in ["create", "patch"] {
        allowed.push(own(&[verb, "events.events.k8s.io", "-n", ns]));
    }
    let mut denied = vec![
        own(&["list", enrollments]),
        own(&["watch", enrollments]),
        own(&["update", enrollments]),
        own(&["deletecollection", enrollments]),
        own(&["get", enrollments, "--subresource=status"]),
        own(&["update", enrollments, "--subresource=status"]),
        own(&["update", enrollments, "--subresource=finalizers"]),
        own(&["create", accounts]),
        own(&["patch", accounts]),
        own(&["update", accounts]),
        own(&["delete", accounts]),
        own(&["patch", accounts, "--subresource=status"]),
        own(&["get", "secrets", "-n", ns]),
        own(&[
            "get",
            &format!("secrets/{release}-patchfleet-enroll-nonce"),
            "-n",
            ns,
        ]),
        own(&["list", "secrets", "-A"]),
        own(&["get", "configmaps", "-n", ns]),
        own(&["list", "pods", "-A"]),
        own(&["get", "pods", "-n", ns]),
        own(&["create", "events.events.k8s.io", "-n", elsewhere]),
        own(&["create", "events.events.k8s.io", "-n", "default"]),
        own(&["create", "events", "-n", ns]),
        own(&["list", "events.events.k8s.io", "-n", ns]),
        own(&["list", "namespaces"]),
        own(&["create", "leases.coordination.k8s.io", "-n", ns]),
        own(&["create", "serviceaccounts", "--subresource=token", "-n", ns]),
        own(&["impersonate", "serviceaccounts", "-A"]),
        own(&["escalate", "clusterroles.rbac.authorization.k8s.io"]),
        own(&["bind", "clusterroles.rbac.authorization.k8s.io"]),
        own(&["create", "tokenreviews.authentication.k8s.io"]),
        own(&["*", "*"]),
    ];
    for kind in KINDS {
        if kind == "systemaccounts" || kind == "enrollments" {
            continue;
        }
        let resource = format!("{kind}.patchfleet.io");
        denied.push(own(&["get", &resource, "-n", elsewhere]));
        denied.push(own(&["list", &resource, "-A"]));
        denied.push(own(&["patch", &resource, "-n", elsewhere]));
    }
    let mut failures = check_can_i(plane, &server, &allowed, &denied);

    // The controller: reconciles Enrollments (its finalizer, their status) and records
    // Events about them, which go to `default` (they are cluster-scoped); it never creates
    // or deletes one.
    let controller = format!("system:serviceaccount:{ns}:{release}-patchfleet");
    let mut allowed = Vec::new();
    for verb in ["get", "list", "watch", "patch"] {
        allowed.push(own(&[verb, enrollments]));
    }
    allowed.push(own(&["patch", enrollments, "--subresource=status"]));
    for verb in ["create", "patch"] {
        allowed.push(own(&[verb, "events.events.k8s.io", "-n", "default"]));
    }
    let denied = vec![
        own(&["create", enrollments]),
        own(&["delete", enrollments]),
        own(&["update", enrollments]),
    ];
    failures.extend(check_can_i(plane, &controller, &allowed, &denied));

    // The dashboard and its users' roles gain nothing.
    let dashboard = format!("system:serviceaccount:{ns}:{release}-patchfleet-dashboard");
    let denied = vec![
        own(&["get", enrollments]),
        own(&["list", enrollments]),
        own(&["create", enrollments]),
    ];
    failures.extend(check_can_i(plane, &dashboard, &[], &denied));
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let _ = plane.kubectl([
        "delete".as_ref(),
        "--wait=false".as_ref(),
        "-f".as_ref(),
        rendered.as_os_str(),
    ]);
    namespace.delete().await;
    other.delete().await;
}

#[tokio::test]
async fn helm_install_with_the_enrollment_server_keeps_its_nonce_key_across_upgrades() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-enroll-install")
        .await
        .expect("namespace");
    let scratch = Scratch::new("enroll-install");
    let values = scratch.values("enroll", ENROLL_SECRET);
    let release = "enrinst";
    let ns = namespace.name.as_str();
    let helm = |command: &str| {
        scratch.helm_ok([
            command.as_ref(),
            release.as_ref(),
            chart_dir().as_os_str(),
            "--kubeconfig".as_ref(),
            plane.kubeconfig.as_os_str(),
            "--namespace".as_ref(),
            ns.as_ref(),
            "--values".as_ref(),
            values.as_os_str(),
            "--timeout".as_ref(),
            "60s".as_ref(),
        ])
    };
    let out = helm("install");
    assert!(out.contains("STATUS: deployed"), "{out}");
    let name = format!("{release}-patchfleet-enroll");
    // NOTES.txt says where machines call and how they get there.
    assert!(
        out.contains("The enrollment server")
            && out.contains("https://enroll.example.com")
            && out.contains(&format!("Service\n   {name} (ClusterIP, port 443"))
            && out.contains("passes TLS through")
            && out.contains("docs/enrollment.md")
            && out.contains(&format!("{ns}/{name} an AWS identity")),
        "{out}"
    );
    let key = || {
        plane
            .kubectl([
                "get",
                "secret",
                &format!("{name}-nonce"),
                "-n",
                ns,
                "-o",
                "jsonpath={.data.nonce-key}",
            ])
            .expect("the nonce Secret")
    };
    let checksum = || {
        plane
            .kubectl([
                "get",
                "deployment",
                &name,
                "-n",
                ns,
                "-o",
                "jsonpath={.spec.template.metadata.annotations.checksum/nonce-key}",
            ])
            .expect("the Deployment")
    };
    let (first, first_checksum) = (key(), checksum());
    assert_eq!(
        openssl::base64::decode_block(&first).expect("base64").len(),
        48,
        "{first}"
    );
    assert_eq!(first_checksum.len(), 64, "{first_checksum}");
    for (resource, namespaced) in [
        ("deployment.apps", true),
        ("service", true),
        ("serviceaccount", true),
        ("role.rbac.authorization.k8s.io", true),
        ("clusterrole.rbac.authorization.k8s.io", false),
        ("clusterrolebinding.rbac.authorization.k8s.io", false),
    ] {
        let object = if resource.starts_with("role.") {
            format!("{name}-events")
        } else {
            name.clone()
        };
        let mut args = vec!["get", resource, &object, "-o", "json"];
        if namespaced {
            args.extend(["-n", ns]);
        }
        let json = plane
            .kubectl(&args)
            .unwrap_or_else(|e| panic!("{resource}/{object} after helm install: {e:#}"));
        let live: Value = serde_json::from_str(&json).expect("kubectl prints JSON");
        assert_eq!(
            live["metadata"]["annotations"]["meta.helm.sh/release-name"],
            release
        );
    }

    // An upgrade reads the key back: every replica keeps checking the nonces it issued,
    // and the pods are not restarted for it.
    let out = helm("upgrade");
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert_eq!(key(), first, "helm upgrade replaced the nonce key");
    assert_eq!(checksum(), first_checksum);

    scratch.helm_ok([
        "uninstall".as_ref(),
        release.as_ref(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        ns.as_ref(),
    ]);
    let left = plane
        .kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"])
        .expect("kubectl get");
    assert!(!left.contains(&format!("/{name}")), "{left}");
    namespace.delete().await;
}

// The `defaults` value: files/defaults/*.yaml rendered as written, and examples/defaults/.

/// The eight operating systems of the defaults, as the CRD's enum spells them.
const DEFAULT_SYSTEMS: [&str; 8] = [
    "WINDOWS",
    "AMAZON_LINUX",
    "AMAZON_LINUX_2",
    "REDHAT_ENTERPRISE_LINUX",
    "ORACLE_LINUX",
    "CENTOS",
    "UBUNTU",
    "DEBIAN",
];
const AGES: [&str; 3] = ["early", "on-time", "late"];
const DEFAULTS_ON: &str = "clusterId: chart-test\ndefaults: {enabled: true}\n";

/// The `*.yaml` files directly in `dir`: name -> bytes.
fn yaml_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, bytes)
        })
        .collect()
}

/// The objects of examples/defaults/ by (kind, name).
fn example_defaults() -> BTreeMap<(String, String), Value> {
    patchfleet_tests::examples::load_dir(&repo_root().join("examples/defaults"))
        .expect("examples/defaults loads")
        .into_iter()
        .map(|m| ((m.kind().to_owned(), m.name().to_owned()), m.value))
        .collect()
}

/// The default objects among `objects` by (kind, name), after checking that each carries
/// the chart's labels for `release` and removing them.
fn rendered_defaults(objects: &[Value], release: &str) -> BTreeMap<(String, String), Value> {
    let mut found = BTreeMap::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !["Namespace", "PatchPolicy", "PatchGroup"].contains(&kind) {
            continue;
        }
        let mut object = object.clone();
        let labels = &object["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/component"], "defaults",
            "{object}"
        );
        assert_eq!(labels["app.kubernetes.io/instance"], release, "{object}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm", "{object}");
        if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
            labels
                .retain(|k, _| !k.starts_with("app.kubernetes.io/") && !k.starts_with("helm.sh/"));
            if labels.is_empty()
                && let Some(metadata) = object["metadata"].as_object_mut()
            {
                metadata.remove("labels");
            }
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            found.insert((kind.to_owned(), name), object).is_none(),
            "rendered twice: {kind}"
        );
    }
    found
}

#[test]
fn defaults_are_not_rendered_unless_enabled() {
    let scratch = Scratch::new("defaults-off");
    let values = scratch.values("minimal", MINIMAL);
    let objects = scratch.template("pf", "ops", &values);
    assert!(rendered_defaults(&objects, "pf").is_empty());
    let values = scratch.values("off", "clusterId: x\ndefaults: {enabled: false}\n");
    let objects = scratch.template("pf", "ops", &values);
    let kinds = kinds(&objects);
    for absent in ["Namespace", "PatchPolicy", "PatchGroup"] {
        assert!(!kinds.contains(absent), "{absent} rendered: {kinds:?}");
    }
}

#[test]
fn the_chart_ships_examples_defaults_byte_for_byte() {
    let chart = yaml_files(&chart_dir().join("files/defaults"));
    let examples = yaml_files(&repo_root().join("examples/defaults"));
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        examples.keys().collect::<Vec<_>>(),
        "examples/defaults/ must hold exactly charts/patchfleet/files/defaults/*.yaml: \
         cp charts/patchfleet/files/defaults/*.yaml examples/defaults/"
    );
    assert_eq!(chart.len(), 4, "{:?}", chart.keys());
    for (name, bytes) in &chart {
        assert!(
            examples.get(name) == Some(bytes),
            "examples/defaults/{name} differs from charts/patchfleet/files/defaults/{name}: \
             edit the chart's file, then cp charts/patchfleet/files/defaults/*.yaml examples/defaults/"
        );
    }
}

#[test]
fn enabled_defaults_render_exactly_the_objects_of_examples_defaults() {
    let scratch = Scratch::new("defaults-on");
    let values = scratch.values("defaults", DEFAULTS_ON);
    let out = scratch.helm_ok([
        "lint".as_ref(),
        "--strict".as_ref(),
        chart_dir().as_os_str(),
        "--values".as_ref(),
        values.as_os_str(),
    ]);
    assert!(out.contains("0 chart(s) failed"), "{out}");

    let objects = scratch.template("pf", "patchfleet-system", &values);
    let rendered = rendered_defaults(&objects, "pf");
    let examples = example_defaults();
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        examples.keys().collect::<Vec<_>>()
    );
    for (key, example) in &examples {
        assert_eq!(
            &rendered[key], example,
            "{key:?} differs from examples/defaults"
        );
    }

    // 3 policies x 8 operating systems, and 3 groups, one per policy.
    let namespace = &rendered[&("Namespace".to_owned(), "patchfleet-defaults".to_owned())];
    assert_eq!(
        namespace["metadata"]["labels"]["patchfleet.io/defaults"],
        "true"
    );
    let expected: BTreeSet<String> = DEFAULT_SYSTEMS.map(str::to_owned).into();
    for age in AGES {
        let policy = &rendered[&("PatchPolicy".to_owned(), age.to_owned())];
        assert_eq!(policy["metadata"]["namespace"], "patchfleet-defaults");
        let baselines = policy["spec"]["baselines"].as_array().expect("baselines");
        assert_eq!(baselines.len(), 8, "{age}");
        let systems: BTreeSet<String> = baselines
            .iter()
            .filter_map(|b| b["operatingSystem"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(systems, expected, "{age}");
        let group = &rendered[&("PatchGroup".to_owned(), age.to_owned())];
        assert_eq!(group["spec"]["policyRef"]["name"], age);
        assert_eq!(group["spec"]["accountSelector"], json!({}));
    }
    assert_eq!(rendered.len(), 7);
}

#[test]
fn defaults_values_move_the_namespace_and_replace_the_account_selector() {
    let scratch = Scratch::new("defaults-values");
    let values = scratch.values(
        "moved",
        "clusterId: x\ndefaults:\n  enabled: true\n  namespace: team-a\n  createNamespace: false\n  \
         accountSelector: {matchLabels: {tier: prod}}\n",
    );
    let objects = scratch.template("pf", "ops", &values);
    let rendered = rendered_defaults(&objects, "pf");
    assert_eq!(rendered.len(), 6, "no Namespace: {:?}", rendered.keys());
    for ((kind, name), object) in &rendered {
        assert_eq!(object["metadata"]["namespace"], "team-a", "{kind} {name}");
        if kind == "PatchGroup" {
            assert_eq!(
                object["spec"]["accountSelector"],
                json!({"matchLabels": {"tier": "prod"}})
            );
        }
    }
    // The rules are the examples' whatever the namespace.
    let examples = example_defaults();
    let key = ("PatchPolicy".to_owned(), "late".to_owned());
    assert_eq!(rendered[&key]["spec"], examples[&key]["spec"]);

    // Creating the release namespace would clash with the namespace helm installs into.
    let values = scratch.values(
        "release-namespace",
        "clusterId: x\ndefaults: {enabled: true, namespace: ops}\n",
    );
    let output = run(&mut scratch.helm([
        "template".as_ref(),
        "pf".as_ref(),
        chart_dir().as_os_str(),
        "--namespace".as_ref(),
        "ops".as_ref(),
        "--values".as_ref(),
        values.as_os_str(),
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("defaults.createNamespace=false"),
        "{stderr}"
    );
}

#[test]
fn the_schema_rejects_wrong_defaults_values() {
    let scratch = Scratch::new("defaults-schema");
    let mut failures = Vec::new();
    for (name, values, field) in [
        (
            "enabled-string",
            "clusterId: x\ndefaults: {enabled: \"yes\"}\n",
            "/defaults/enabled",
        ),
        (
            "namespace-upper",
            "clusterId: x\ndefaults: {namespace: Defaults}\n",
            "/defaults/namespace",
        ),
        (
            "selector-key",
            "clusterId: x\ndefaults: {accountSelector: {matchLabel: {a: b}}}\n",
            "/defaults/accountSelector",
        ),
        (
            "selector-operator",
            "clusterId: x\ndefaults: {accountSelector: {matchExpressions: [{key: a, operator: Is}]}}\n",
            "/defaults/accountSelector",
        ),
        (
            "unknown-key",
            "clusterId: x\ndefaults: {enable: true}\n",
            "enable",
        ),
    ] {
        let values = scratch.values(name, values);
        let output = run(&mut scratch.helm([
            "template".as_ref(),
            "pf".as_ref(),
            chart_dir().as_os_str(),
            "--values".as_ref(),
            values.as_os_str(),
        ]));
        let text = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            failures.push(format!("{name}: accepted"));
        } else if !text.contains(field) || !text.contains("schema") {
            failures.push(format!("{name}: the error does not name {field}:\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_rendered_defaults_pass_a_server_side_dry_run() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    // The defaults' namespace, existing (a dry run creates nothing for the objects in it
    // to land in): the Namespace object is then a dry-run update of it.
    let namespace = TestNamespace::create(&client, "chart-defaults")
        .await
        .expect("namespace");
    let release = TestNamespace::create(&client, "chart-defaults-release")
        .await
        .expect("namespace");
    let scratch = Scratch::new("defaults-dry-run");
    let values = format!(
        "clusterId: x\ndefaults: {{enabled: true, namespace: {}}}\n",
        namespace.name
    );
    let rendered = render_to_file(&scratch, "dry", &release.name, &values);
    let (out, _) = server_dry_run(plane, &rendered);
    let mut expected = vec![format!("namespace/{}", namespace.name)];
    for age in AGES {
        expected.push(format!("patchpolicy.patchfleet.io/{age}"));
        expected.push(format!("patchgroup.patchfleet.io/{age}"));
    }
    for object in expected {
        assert!(
            out.contains(&format!("{object} serverside-applied (server dry run)")),
            "{object}: {out}"
        );
    }
    let left = plane
        .kubectl(["get", "ppol,pgrp", "-n", &namespace.name, "-o", "name"])
        .expect("kubectl get");
    assert!(left.trim().is_empty(), "a dry run created {left}");
    namespace.delete().await;
    release.delete().await;
}

#[tokio::test]
async fn helm_install_with_defaults_creates_them_and_says_how_accounts_get_them() {
    let plane = control_plane::shared().expect("control plane");
    let client = plane.client().await.expect("client");
    let namespace = TestNamespace::create(&client, "chart-defaults-install")
        .await
        .expect("namespace");
    // The defaults' namespace is created by the chart: a name no other test uses.
    let defaults = format!("{}-defaults", namespace.name);
    let scratch = Scratch::new("defaults-install");
    let values = scratch.values(
        "defaults",
        &format!("clusterId: x\ndefaults: {{enabled: true, namespace: {defaults}}}\n"),
    );
    let out = scratch.helm_ok([
        "install".as_ref(),
        "withdefaults".as_ref(),
        chart_dir().as_os_str(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        namespace.name.as_ref(),
        "--values".as_ref(),
        values.as_os_str(),
        "--timeout".as_ref(),
        "60s".as_ref(),
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains(&format!("in namespace\n{defaults}."))
            && out.contains("namespaceSelector: {matchLabels: {patchfleet.io/defaults: \"true\"}}")
            && out.contains(&format!("kubectl get ppol,pgrp -n {defaults}")),
        "{out}"
    );
    let names = plane
        .kubectl(["get", "ppol,pgrp", "-n", &defaults, "-o", "name"])
        .expect("kubectl get");
    let names: BTreeSet<&str> = names.lines().collect();
    let expected: BTreeSet<String> = AGES
        .iter()
        .flat_map(|age| {
            [
                format!("patchpolicy.patchfleet.io/{age}"),
                format!("patchgroup.patchfleet.io/{age}"),
            ]
        })
        .collect();
    assert_eq!(names, expected.iter().map(String::as_str).collect());
    let label = plane
        .kubectl([
            "get",
            "namespace",
            &defaults,
            "-o",
            "jsonpath={.metadata.labels.patchfleet\\.io/defaults}",
        ])
        .expect("kubectl get");
    assert_eq!(label, "true");
    // The API server kept the rules as rendered (defaulting adds only what was absent).
    let late: Value = serde_json::from_str(
        &plane
            .kubectl(["get", "ppol", "late", "-n", &defaults, "-o", "json"])
            .expect("kubectl get"),
    )
    .expect("JSON");
    let windows = &late["spec"]["baselines"][0];
    assert_eq!(windows["operatingSystem"], "WINDOWS");
    assert_eq!(windows["approvalRules"][0]["approveAfterDays"], 14);

    scratch.helm_ok([
        "uninstall".as_ref(),
        "withdefaults".as_ref(),
        "--kubeconfig".as_ref(),
        plane.kubeconfig.as_os_str(),
        "--namespace".as_ref(),
        namespace.name.as_ref(),
    ]);
    namespace.delete().await;
}
