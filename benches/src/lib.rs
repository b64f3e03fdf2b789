//! Shared inputs of the criterion benchmarks under `benches/`: generated
//! environments of plain manifests.

/// The Namespaces the generated manifests live in.
pub const NAMESPACES: usize = 20;

/// One generated manifest file for app `i` (`rev` changes its content, for
/// one-file commits): a Deployment with its Service, a ConfigMap, or a
/// Service, cycling. Objects per file: 2, 1, 1.
pub fn manifest(i: usize, rev: usize) -> (String, String) {
    let app = format!("app-{i:05}");
    let ns = format!("team-{}", i % NAMESPACES);
    let text = match i % 3 {
        0 => format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}, app.kubernetes.io/part-of: shop, tier: backend}}
  annotations: {{deployment.kubernetes.io/revision: "3"}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app.kubernetes.io/name: {app}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: {app}}}
    spec:
      serviceAccountName: {app}
      securityContext: {{runAsNonRoot: true, fsGroup: 1000}}
      containers:
      - name: server
        image: registry.example.com/{app}:v1.{i}.{rev}
        ports:
        - {{containerPort: 8080, name: http}}
        env:
        - {{name: PORT, value: "8080"}}
        - {{name: LOG_LEVEL, value: info}}
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
          limits: {{cpu: 200m, memory: 128Mi}}
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
spec:
  type: ClusterIP
  selector: {{app.kubernetes.io/name: {app}}}
  ports:
  - {{name: http, port: 80, targetPort: 8080}}
"#
        ),
        1 => format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}}}
data:
  application.properties: |
    server.port=8080
    cache.ttl=300
  revision: "{rev}"
"#
        ),
        _ => format!(
            r#"apiVersion: v1
kind: Service
metadata:
  name: {app}-metrics
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}}}
spec:
  selector: {{app.kubernetes.io/name: {app}}}
  ports:
  - {{name: metrics, port: 9090, targetPort: {rev}}}
"#
        ),
    };
    (format!("apps/{ns}/{app}.yaml"), text)
}

/// Files declaring about `objects` objects: the Namespaces, then
/// generated manifests (4 objects per 3 files).
pub fn environment(objects: usize) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = (0..NAMESPACES)
        .map(|n| {
            (
                format!("namespaces/team-{n}.yaml"),
                format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-{n}\n"),
            )
        })
        .collect();
    let manifests = objects.saturating_sub(NAMESPACES) * 3 / 4;
    files.extend((0..manifests).map(|i| manifest(i, 0)));
    files
}
