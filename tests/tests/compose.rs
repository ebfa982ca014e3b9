//! `docker-compose.yml` against the Compose specification's JSON schema (vendored in
//! `deploy/compose-spec.json`, source in `deploy/README.md`; no Docker engine runs here), and
//! the few things about it huddle depends on: one UDP port published per media worker on the
//! same number, the advertised address from one variable, Prometheus scraping `/metrics`.

use std::path::PathBuf;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/compose-spec.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let compose = yaml("docker-compose.yml");
    let errors: Vec<String> = validator
        .iter_errors(&compose)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "docker-compose.yml: {errors:#?}");
    // The schema does catch mistakes.
    let mut broken = compose.clone();
    broken["services"]["huddle"]["restart"] = Value::from(3);
    broken["services"]["huddle"]["no-such-key"] = Value::from(true);
    assert!(!validator.is_valid(&broken));
}

#[test]
fn huddle_coturn_prometheus_and_redis_fit_together() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for s in ["huddle", "coturn", "prometheus"] {
        assert!(services.get(s).is_some(), "service {s}");
    }
    let huddle = &services["huddle"];
    let env = &huddle["environment"];
    let workers: u16 = env["HUDDLE_WORKERS"].as_str().unwrap().parse().unwrap();
    let udp = env["HUDDLE_UDP"].as_str().unwrap();
    let first: u16 = udp.rsplit(':').next().unwrap().parse().unwrap();
    let last = first + workers - 1;
    let ports: Vec<&str> = huddle["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ports.contains(&format!("{first}-{last}:{first}-{last}/udp").as_str()),
        "every worker's UDP port published on its own number: {ports:?}"
    );
    assert!(
        env["HUDDLE_PUBLIC_IP"]
            .as_str()
            .unwrap()
            .contains("${HUDDLE_PUBLIC_IP")
    );
    assert!(
        env["HUDDLE_TURN"]
            .as_str()
            .unwrap()
            .contains("${HUDDLE_PUBLIC_IP}")
    );
    let coturn = services["coturn"]["command"].as_array().unwrap();
    let args: Vec<&str> = coturn.iter().filter_map(Value::as_str).collect();
    assert!(args.contains(&"--use-auth-secret"));
    assert!(args.contains(&"--external-ip=${HUDDLE_PUBLIC_IP}"));
    assert!(args.contains(&"--static-auth-secret=${TURN_SECRET}"));
    assert_eq!(
        env["HUDDLE_TURN_SECRET"].as_str().unwrap(),
        "${TURN_SECRET:?set TURN_SECRET}"
    );

    // Cluster membership is opt-in: empty unless HUDDLE_REDIS is set, Redis in its profile.
    assert_eq!(env["HUDDLE_REDIS"].as_str().unwrap(), "${HUDDLE_REDIS:-}");
    assert_eq!(services["redis"]["profiles"][0], "cluster");

    let prometheus = yaml("deploy/prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    assert_eq!(job["static_configs"][0]["targets"][0], "huddle:8080");
}
