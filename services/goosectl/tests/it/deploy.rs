//! Deploying it: k8s/ is what `goosectl k8s render` writes from org-config; both overlays
//! render with `kubectl kustomize` and validate against the published schemas — core kinds
//! with `kubernetes-validate` (PyPI, strict), Istio kinds with `@kubernetes-models/istio`
//! (npm) — and hold what the docs promise (non-root, read-only root, probes, the modes'
//! limits, keys from Secrets, a 3-node JetStream cluster that fsyncs). The Dockerfiles build
//! the service binaries as a non-root user.

use crate::support::repo_root;
use goose_domain::org_config::OrgConfig;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// 2.x: its CommonJS modules load with NODE_PATH (3.x is ESM only).
const ISTIO_MODELS: &str = "@kubernetes-models/istio@2.3.0";
/// Kinds whose schemas no reachable package ships (CloudNativePG's CRD is published on
/// GitHub only); everything else must validate.
const UNVALIDATED: &[&str] = &["postgresql.cnpg.io/v1 Cluster"];

fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (Debian: kubernetes-client) is needed");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn documents(stream: &str) -> Vec<Value> {
    stream
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

fn kind(d: &Value) -> String {
    format!(
        "{} {}",
        d["apiVersion"].as_str().unwrap(),
        d["kind"].as_str().unwrap()
    )
}

fn validate_istio(docs: &[Value], dir: &Path) {
    let npm = goose_testkit::npm_env(&[ISTIO_MODELS]).unwrap();
    let file = dir.join("istio.json");
    std::fs::write(&file, serde_json::to_vec(docs).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/istio_validate.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(&file)
        .env("NODE_PATH", npm.join("node_modules"))
        .output()
        .expect("node (Debian: nodejs) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("OK ")).count(),
        docs.len(),
        "{text}"
    );
}

#[test]
fn k8s_overlays_render_validate_and_keep_their_promises() {
    let root = repo_root();
    // The committed tree is what the generator writes from the shipped org-config.
    for (path, text) in goosectl::k8s::render(&OrgConfig::default()).unwrap() {
        let committed = std::fs::read_to_string(root.join("k8s").join(&path)).unwrap_or_default();
        assert!(
            committed == text,
            "k8s/{} is stale: run `goosectl k8s render`",
            path.display()
        );
    }
    let python = goose_testkit::python_env(&[KUBERNETES_VALIDATE]).unwrap();
    let validate = python.parent().unwrap().join("kubernetes-validate");
    let tmp = tempfile::tempdir().unwrap();
    let org = OrgConfig::default();
    for (overlay, namespace, limits, replicas, pg) in [
        ("dev", "golden-goose-dev", &org.modes.sandbox, 1, 1),
        ("prod", "golden-goose", &org.modes.compliant, 2, 3),
    ] {
        let stream = kustomize(&root.join("k8s/overlays").join(overlay));
        let file = tmp.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &stream).unwrap();
        let out = Command::new(&validate)
            .args(["--strict", "--quiet", "-k", "1.32.0"])
            .arg(&file)
            .output()
            .unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !report.contains("ERROR"),
            "{overlay}: {report}"
        );
        let docs = documents(&stream);
        // Istio kinds are checked with Istio's schemas; the rest had theirs above.
        let (istio, core): (Vec<Value>, Vec<Value>) = docs.iter().cloned().partition(|d| {
            d["apiVersion"]
                .as_str()
                .unwrap()
                .starts_with("security.istio.io/")
        });
        for line in report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
        {
            assert!(
                UNVALIDATED.iter().any(|k| {
                    let (api, kind) = k.split_once(' ').unwrap();
                    line.contains(&format!("kind {kind} with api version {api}"))
                }) || line.contains("security.istio.io"),
                "{overlay}: a kind left unvalidated: {line}"
            );
        }
        validate_istio(&istio, tmp.path());
        assert_eq!(
            istio.len(),
            5,
            "PeerAuthentication, default deny, three platform allows"
        );

        let of = |k: &str| -> Vec<&Value> { core.iter().filter(|d| kind(d) == k).collect() };
        for d in &docs {
            assert_eq!(d["metadata"]["namespace"], namespace, "{}", kind(d));
        }
        let deployments = of("apps/v1 Deployment");
        assert_eq!(deployments.len(), 6);
        for d in deployments {
            let name = d["metadata"]["name"].as_str().unwrap();
            let pod = &d["spec"]["template"]["spec"];
            let c = &pod["containers"][0];
            assert_eq!(d["spec"]["replicas"], replicas, "{name}");
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"], true,
                "{name}"
            );
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"], false,
                "{name}"
            );
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
            assert_eq!(
                c["resources"]["limits"]["cpu"],
                format!("{}m", limits.cpu_millicores),
                "{name}: the mode's limits"
            );
            assert_eq!(
                c["resources"]["limits"]["memory"],
                format!("{}Mi", limits.memory_mib),
                "{name}"
            );
            // Keys and the database URL come from Secrets, never from the manifests.
            let volumes = pod["volumes"].as_array().unwrap();
            assert!(
                volumes
                    .iter()
                    .any(|v| v["secret"]["secretName"] == format!("{name}-keys")),
                "{name}"
            );
            assert_eq!(
                c["env"][0]["valueFrom"]["secretKeyRef"]["name"], "goose-db-app",
                "{name}"
            );
            let sa = pod["serviceAccountName"].as_str().unwrap();
            assert!(
                of("v1 ServiceAccount")
                    .iter()
                    .any(|s| s["metadata"]["name"] == sa),
                "{name}: its own ServiceAccount (mesh identity)"
            );
            for k in [
                "v1 Service",
                "policy/v1 PodDisruptionBudget",
                "v1 ConfigMap",
            ] {
                assert!(
                    of(k).iter().any(|s| s["metadata"]["name"] == name),
                    "{name}: {k}"
                );
            }
        }
        let nats = of("apps/v1 StatefulSet");
        assert_eq!(nats.len(), 1);
        assert_eq!(nats[0]["spec"]["replicas"], 3);
        let conf = of("v1 ConfigMap")
            .into_iter()
            .find(|c| c["metadata"]["name"] == "goose-nats")
            .unwrap()["data"]["nats.conf"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(conf.contains("sync_interval: always"), "{conf}");
        assert!(
            conf.contains("user: \"orchestrator\""),
            "per-service users: {conf}"
        );
        let cluster = of("postgresql.cnpg.io/v1 Cluster");
        assert_eq!(cluster[0]["spec"]["instances"], pg);
        assert!(of("networking.k8s.io/v1 NetworkPolicy")
            .iter()
            .any(|p| p["metadata"]["name"] == "default-deny-ingress"));
    }
    // What `goosectl mesh render` writes validates too.
    let out = Command::new(env!("CARGO_BIN_EXE_goosectl"))
        .args(["mesh", "render", "-f"])
        .arg(root.join("deploy/examples/services"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let rendered = documents(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(rendered.len(), 3);
    validate_istio(&rendered, tmp.path());
}

#[test]
fn a_multi_stage_non_root_dockerfile_per_service_binary() {
    let root = repo_root();
    for name in [
        "rbac",
        "registry",
        "evidence",
        "orchestrator",
        "sla",
        "analytics",
    ] {
        let bin = format!("goose-{name}");
        let file = root.join(format!("deploy/docker/{bin}.Dockerfile"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text.matches("\nFROM ").count(),
            2,
            "{}: two stages",
            file.display()
        );
        assert!(text.contains(&format!("cargo build --release --locked --bin {bin}\n")));
        assert!(text.contains("USER 65532:65532"), "{}", file.display());
        // The binary it builds exists in this workspace (built by `make test`).
        assert!(
            Path::new(env!("CARGO_BIN_EXE_goosectl"))
                .with_file_name(&bin)
                .is_file(),
            "{bin} is not a binary of the workspace"
        );
        // And the manifests run that image.
        let k8s = std::fs::read_to_string(root.join(format!("k8s/base/{name}.yaml"))).unwrap();
        assert!(
            k8s.contains(&format!("image: golden-goose/{bin}:")),
            "{name}"
        );
    }
}
