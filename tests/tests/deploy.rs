//! The deployment files of `deploy/`, checked as far as this machine can: every config they
//! carry loads with the services' own config loaders; the compose file, the Kubernetes manifests
//! and the systemd units parse and hold the properties the operator guide promises (non-root,
//! one shared vault socket, gRPC probes, NetworkPolicy, Secrets, hardening). Where kubectl and
//! systemd-analyze are installed they check too (`kubectl kustomize`, `systemd-analyze verify`).
//! Docker itself does not run here: the Dockerfile is checked as text.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(deploy().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(&read(rel))
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn vault_config(text: &str) -> fpr_vault::Config {
    fpr_vault::Config::from_toml(text, &no_env()).unwrap()
}

fn orchestrator_config(text: &str) -> fpr_orchestrator::config::Config {
    fpr_orchestrator::config::Config::from_toml(text, &no_env()).unwrap()
}

fn socket_of(v: &fpr_vault::Config) -> PathBuf {
    PathBuf::from(v.server.listen.strip_prefix("unix:").unwrap())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[][..], Vec::as_slice)
}

/// The secret files a config set reads, relative to a secrets mount.
fn secret_files(v: &fpr_vault::Config, o: &fpr_orchestrator::config::Config) -> Vec<PathBuf> {
    let mut files = vec![v.store.master_key_file.clone().unwrap()];
    files.extend(
        v.delivery
            .smtp
            .as_ref()
            .and_then(|s| s.password_file.clone()),
    );
    files.extend(o.yubienterprise.token.file.clone());
    files.extend(o.entra.client_secret.file.clone());
    files.extend(o.okta.as_ref().and_then(|k| k.token.as_ref()?.file.clone()));
    files
}

#[test]
fn dockerfile_builds_the_release_binary_and_runs_it_as_non_root() {
    let text = read("Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: build and runtime");
    assert!(froms[0].ends_with(" AS build"));
    assert!(froms[1].contains("-slim") || froms[1].contains("distroless"));
    assert!(text.contains("cargo build --release --locked -p fpr"));
    let runtime = &text[text.find(froms[1]).unwrap()..];
    assert!(runtime.contains("COPY --from=build /out/fpr /usr/local/bin/fpr"));
    let users: Vec<&str> = runtime.lines().filter(|l| l.starts_with("USER ")).collect();
    assert_eq!(users, ["USER 10001:10001"]);
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/fpr\"]"));
    assert!(!text.contains("ADD http"), "no remote ADD");
    // The build needs nothing the repository does not carry beyond Debian packages (protoc is
    // vendored): the rust image's toolchain must be at least the workspace's rust-version.
    let manifest = std::fs::read_to_string(deploy().join("../Cargo.toml")).unwrap();
    let want: Vec<u32> = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"')
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    let image: Vec<u32> = froms[0]
        .split(':')
        .nth(1)
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        image >= want,
        "rust image {image:?} < rust-version {want:?}"
    );
    let ignore = std::fs::read_to_string(deploy().join("../.dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target") && ignore.lines().any(|l| l == "fpr-data"));
}

#[test]
fn compose_shares_the_vault_socket_and_its_configs_load() {
    let doc = &yaml_docs("compose/compose.yaml")[0];
    let services = &doc["services"];
    for name in ["sandbox", "vault", "orchestrator"] {
        assert!(services[name].is_mapping(), "{name}");
    }
    let v = vault_config(&read("compose/vault.toml"));
    let o = orchestrator_config(&read("compose/orchestrator.toml"));
    let socket = socket_of(&v);
    assert_eq!(socket, o.vault_socket);
    // Both mount the same named volume at the directory above the socket's own directory.
    let mount_of = |svc: &str| {
        seq(&services[svc]["volumes"])
            .iter()
            .map(s)
            .find(|m| m.starts_with("vault-socket:"))
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(mount_of("vault"), mount_of("orchestrator"));
    assert_eq!(
        socket.parent().unwrap().parent().unwrap(),
        Path::new(&mount_of("vault"))
    );
    assert!(
        doc["volumes"]["vault-socket"].is_null() || doc["volumes"]["vault-socket"].is_mapping()
    );
    // Health checks use the same socket and the orchestrator's port; non-root everywhere.
    let vault_check = seq(&services["vault"]["healthcheck"]["test"])
        .iter()
        .map(s)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(vault_check.contains(&format!("--vault-socket {}", socket.display())));
    assert_eq!(o.listen, "0.0.0.0:7400");
    assert_eq!(s(&doc["x-fpr"]["user"]), "10001:10001");
    assert_eq!(
        s(&services["orchestrator"]["depends_on"]["vault"]["condition"]),
        "service_healthy"
    );
    // The master key is a compose secret at the path the vault reads.
    let secret = &seq(&services["vault"]["secrets"])[0];
    assert_eq!(
        Path::new(s(&secret["target"])),
        v.store.master_key_file.as_deref().unwrap()
    );
    // The sandbox answers under the name the configs use.
    let sandbox_cmd: Vec<&str> = seq(&services["sandbox"]["command"]).iter().map(s).collect();
    let public = sandbox_cmd[sandbox_cmd
        .iter()
        .position(|a| *a == "--public-url")
        .unwrap()
        + 1];
    assert!(o.auth.issuer.starts_with(public));
}

#[test]
fn kubernetes_statefulset_has_the_vault_sidecar_probes_volumes_and_secrets() {
    let docs: Vec<Value> = [
        "namespace.yaml",
        "serviceaccount.yaml",
        "configmap.yaml",
        "statefulset.yaml",
        "service.yaml",
        "networkpolicy.yaml",
    ]
    .iter()
    .flat_map(|f| yaml_docs(&format!("k8s/{f}")))
    .collect();
    let kind = |k: &str| -> Vec<&Value> { docs.iter().filter(|d| s(&d["kind"]) == k).collect() };
    let kustomization = &yaml_docs("k8s/kustomization.yaml")[0];
    for r in seq(&kustomization["resources"]) {
        assert!(deploy().join("k8s").join(s(r)).exists(), "{r:?}");
    }

    let cm = kind("ConfigMap")[0];
    let v = vault_config(s(&cm["data"]["vault.toml"]));
    let o = orchestrator_config(s(&cm["data"]["orchestrator.toml"]));
    assert!(!o.danger_allow_plaintext_http);
    // The API port speaks TLS; only health is plaintext, on its own port.
    assert!(o.tls.is_some());
    assert_eq!(o.health_listen.as_deref(), Some("0.0.0.0:7401"));
    assert!(o.attestation.builtin_yubico_roots && !o.attestation.danger_unpinned_trust_anchors);
    assert!(!v.danger.allow_plaintext_http && !v.danger.allow_plaintext_smtp);
    let socket = socket_of(&v);
    assert_eq!(socket, o.vault_socket);

    let sts = kind("StatefulSet")[0];
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(sts["spec"]["replicas"], Value::from(1));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::from(true));
    assert_eq!(pod["automountServiceAccountToken"], Value::from(false));
    let vault = seq(&pod["initContainers"])
        .iter()
        .find(|c| s(&c["name"]) == "vault")
        .unwrap();
    assert_eq!(s(&vault["restartPolicy"]), "Always", "a native sidecar");
    let orch = seq(&pod["containers"])
        .iter()
        .find(|c| s(&c["name"]) == "orchestrator")
        .unwrap();
    for c in [vault, orch] {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], Value::from(false));
        assert_eq!(sc["readOnlyRootFilesystem"], Value::from(true));
        assert_eq!(seq(&sc["capabilities"]["drop"])[0], Value::from("ALL"));
    }
    // gRPC probes on the orchestrator's port; the vault's exec probes ask the same socket.
    // The API port speaks TLS; the kubelet's gRPC probes use the plaintext health-only port.
    assert_eq!(orch["livenessProbe"]["grpc"]["port"], Value::from(7401));
    assert_eq!(orch["readinessProbe"]["grpc"]["port"], Value::from(7401));
    assert_eq!(
        s(&orch["readinessProbe"]["grpc"]["service"]),
        "fpr.v1.ShipmentService"
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let cmd: Vec<&str> = seq(&vault[probe]["exec"]["command"])
            .iter()
            .map(s)
            .collect();
        assert_eq!(cmd[1..3], ["health", "--vault-socket"]);
        assert_eq!(Path::new(cmd[3]), socket);
    }
    // Volumes: the socket emptyDir shared at one path; each its own claim and its own Secret.
    let mounts = |c: &Value| -> BTreeMap<String, String> {
        seq(&c["volumeMounts"])
            .iter()
            .map(|m| (s(&m["name"]).to_owned(), s(&m["mountPath"]).to_owned()))
            .collect()
    };
    let (vm, om) = (mounts(vault), mounts(orch));
    assert_eq!(vm["vault-socket"], om["vault-socket"]);
    assert!(socket.starts_with(&vm["vault-socket"]));
    assert!(!om.contains_key("vault-secret") && !om.contains_key("vault-data"));
    assert!(!vm.contains_key("orchestrator-secret") && !vm.contains_key("orchestrator-data"));
    assert!(v.store.path.starts_with(&vm["vault-data"]));
    assert!(o.store_path.starts_with(&om["orchestrator-data"]));
    let claims: Vec<&str> = seq(&sts["spec"]["volumeClaimTemplates"])
        .iter()
        .map(|c| s(&c["metadata"]["name"]))
        .collect();
    assert_eq!(claims, ["vault-data", "orchestrator-data"]);
    // Every secret file the configs read is a key of the Secret mounted there.
    let secrets: Vec<Value> = yaml_docs("k8s/secret.example.yaml");
    let volumes = seq(&pod["volumes"]);
    for file in secret_files(&v, &o) {
        let (mount_name, dir) = vm
            .iter()
            .chain(om.iter())
            .find(|(_, dir)| file.starts_with(dir.as_str()))
            .unwrap_or_else(|| panic!("{} is on no mount", file.display()));
        let secret_name = volumes
            .iter()
            .find(|vol| s(&vol["name"]) == mount_name)
            .map(|vol| s(&vol["secret"]["secretName"]))
            .unwrap();
        let key = file.strip_prefix(dir).unwrap().to_str().unwrap();
        let secret = secrets
            .iter()
            .find(|d| s(&d["metadata"]["name"]) == secret_name)
            .unwrap_or_else(|| panic!("no Secret {secret_name}"));
        assert!(
            secret["stringData"][key].is_string(),
            "{secret_name} lacks {key}"
        );
    }

    let np = kind("NetworkPolicy")[0];
    let types: Vec<&str> = seq(&np["spec"]["policyTypes"]).iter().map(s).collect();
    assert_eq!(types, ["Ingress", "Egress"]);
    assert_eq!(
        np["spec"]["ingress"][0]["ports"][0]["port"],
        Value::from(7400)
    );
    // The metrics ports the configs name are the pod's, and only scrapers reach them.
    let port = |addr: &Option<String>| {
        let a: std::net::SocketAddr = addr.as_deref().unwrap().parse().unwrap();
        Value::from(a.port())
    };
    let scrapers = seq(&np["spec"]["ingress"])
        .iter()
        .find(|r| r["from"][0]["podSelector"]["matchLabels"]["fpr-metrics-scraper"] == "true")
        .expect("an ingress rule for metrics scrapers");
    let scraped: Vec<&Value> = seq(&scrapers["ports"]).iter().map(|p| &p["port"]).collect();
    assert_eq!(
        scraped,
        [&port(&o.metrics_listen), &port(&v.server.metrics_listen)]
    );
    let containers: Vec<&Value> = seq(&sts["spec"]["template"]["spec"]["containers"])
        .iter()
        .chain(seq(&sts["spec"]["template"]["spec"]["initContainers"]))
        .collect();
    let declared: Vec<&Value> = containers
        .iter()
        .flat_map(|c| seq(&c["ports"]))
        .map(|p| &p["containerPort"])
        .collect();
    for p in [
        port(&o.metrics_listen),
        port(&v.server.metrics_listen),
        port(&o.rest.as_ref().map(|r| r.listen.clone())),
    ] {
        assert!(declared.contains(&&p), "{p:?} not declared: {declared:?}");
    }
    let svc = kind("Service")
        .into_iter()
        .find(|d| s(&d["metadata"]["name"]) == "fpr")
        .unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], Value::from(7400));
    assert_eq!(s(&sts["spec"]["serviceName"]), "fpr-headless");

    // kubectl, where installed, renders the kustomization.
    if let Ok(out) = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy().join("k8s"))
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("kind: StatefulSet"));
    }
}

fn unit(rel: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read(rel).lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap();
        m.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    m
}

#[test]
fn systemd_units_are_hardened_share_one_dynamic_user_and_their_configs_load() {
    let v = vault_config(&read("systemd/vault.toml"));
    let o = orchestrator_config(&read("systemd/orchestrator.toml"));
    assert_eq!(socket_of(&v), o.vault_socket);
    // Production: the API listens with TLS, so bearer tokens never cross a network in clear.
    assert!(o.tls.is_some() && o.listen.starts_with("0.0.0.0"));
    assert_eq!(o.health_listen.as_deref(), Some("127.0.0.1:7401"));
    let vu = unit("systemd/fpr-vault.service");
    let ou = unit("systemd/fpr-orchestrator.service");
    for u in [&vu, &ou] {
        for (k, want) in [
            ("DynamicUser", "yes"),
            ("User", "fpr"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("CapabilityBoundingSet", ""),
            ("LimitCORE", "0"),
        ] {
            assert_eq!(u.get(k).map(|v| v[0].as_str()), Some(want), "{k}");
        }
    }
    assert_eq!(
        vu["ExecStart"][0],
        "/usr/local/bin/fpr vault serve --config /etc/fpr/vault.toml"
    );
    assert_eq!(
        ou["ExecStart"][0],
        "/usr/local/bin/fpr orchestrator serve --config /etc/fpr/orchestrator.toml"
    );
    assert_eq!(vu["ExecReload"][0], "/bin/kill -HUP $MAINPID");
    // The vault's runtime directory holds the socket; the orchestrator may reach it.
    let run = Path::new("/run").join(&vu["RuntimeDirectory"][0]);
    assert_eq!(socket_of(&v).parent().unwrap(), run);
    assert_eq!(Path::new(&ou["ReadWritePaths"][0]), run);
    assert!(
        v.store
            .path
            .starts_with(Path::new("/var/lib").join(&vu["StateDirectory"][0]))
    );
    assert!(
        o.store_path
            .starts_with(Path::new("/var/lib").join(&ou["StateDirectory"][0]))
    );
    assert_eq!(ou["Requires"][0], "fpr-vault.service");

    // systemd-analyze, where installed, verifies both (with ExecStart pointed at a real file).
    let dir = tempfile::tempdir().unwrap();
    for name in ["fpr-vault.service", "fpr-orchestrator.service"] {
        let text = read(&format!("systemd/{name}")).replace("/usr/local/bin/fpr", "/bin/true");
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    if let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("fpr-vault.service"))
        .arg(dir.path().join("fpr-orchestrator.service"))
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
