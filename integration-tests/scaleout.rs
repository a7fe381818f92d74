//! Issue 12: replicas that behave as one gateway. Two real `serve` processes share one real
//! Redis (the machine's, under a per-test prefix), a Redis the test starts and stops itself, or a
//! three-master Redis Cluster started on loopback ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::citizen_flow::{generate, get_auth, post, sign_in};
use crate::harness::*;

const SHARED_REDIS: &str = "redis://127.0.0.1:6379/0";
const BENEFICIARIES: &str = "/api/v2/appointment/beneficiaries";
const ACCESS_LOG: &str = "/api/v2/otpgate/my-access-log";

/// A free loopback port whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A `redis-server` of the test's own, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    cluster: bool,
}

impl RedisServer {
    pub fn start(port: u16, cluster: bool) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        RedisServer::start_in(port, cluster, dir)
    }

    fn start_in(port: u16, cluster: bool, dir: tempfile::TempDir) -> RedisServer {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        cmd.arg("--dir").arg(dir.path());
        if cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server on PATH");
        let server = RedisServer { child, port, _dir: dir, cluster };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.cli(&["ping"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stop the server (its data is gone: it keeps nothing on disk).
    pub fn stop(mut self) -> (u16, bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.cluster)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three masters on loopback ports, slots assigned, `cluster_state:ok`.
pub fn start_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start(free_port(), true)).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok")) {
        assert!(Instant::now() < deadline, "the cluster did not become ok");
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes
}

/// The shipped policy, a keys directory and the synthetic registry that trusts its assertions.
pub struct Deployment {
    keys: tempfile::TempDir,
    /// The shipped policy, with a 2 s resend cooldown so the send caps can be reached in a test.
    policies: tempfile::TempDir,
    _registry: Gateway,
    registry_url: String,
    prefix: String,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment::with(&[])
    }

    /// A deployment whose policy also has `edits` (`(from, to)`) applied.
    pub fn with(edits: &[(&str, &str)]) -> Deployment {
        let keys = tempfile::tempdir().unwrap();
        let out = Command::new(BIN).args(["keys", "generate", "--dir"]).arg(keys.path()).output().unwrap();
        assert!(out.status.success());
        let key_file = keys.path().join("identity.key").display().to_string();
        let args: Vec<String> =
            ["registry-sim", "--listen", "127.0.0.1:0", "--beneficiaries", "2000", "--identity-key-file", &key_file]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let registry = Gateway::spawn(&args, &["registry"]);
        let registry_url = registry.url("registry").to_string();
        let policies = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text =
                    std::fs::read_to_string(&path).unwrap().replace("resend_after: 60s", "resend_after: 2s").replace(
                        r#"webhook: {url: "http://127.0.0.1:8025/otp", timeout: 3s}"#,
                        "outbox: {path: otp-outbox.jsonl}",
                    );
                let text = edits.iter().fold(text, |text, (from, to)| text.replace(from, to));
                std::fs::write(policies.path().join(path.file_name().unwrap()), text).unwrap();
            }
        }
        let prefix = format!("otpgate-it:{}:", uuid::Uuid::new_v4());
        Deployment { keys, policies, _registry: registry, registry_url, prefix }
    }

    /// A replica of the gateway on `store`, with its own data dir.
    pub fn replica(&self, id: &str, store: &str) -> Gateway {
        let data = tempfile::tempdir().unwrap();
        let policies = self.policies.path();
        let args: Vec<String> = [
            "serve",
            "--config",
            &policies.display().to_string(),
            "--keys-dir",
            &self.keys.path().display().to_string(),
            "--data-dir",
            &data.path().display().to_string(),
            "--listen-plain",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--upstream",
            &format!("registry={}", self.registry_url),
            "--store",
            store,
            "--store-prefix",
            &self.prefix,
            "--replica-id",
            id,
            "--insecure-otp-outbox",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut gw = Gateway::spawn(&args, &["http", "admin"]);
        gw.data_dir = Some(data);
        gw
    }
}

fn outbox(gw: &Gateway) -> PathBuf {
    gw.data_path("otp-outbox.jsonl")
}

/// Every promise of one gateway, kept by two: `a` and `b` share `store`.
async fn two_replicas_behave_as_one(store: &str) {
    let d = Deployment::new();
    let (a, b) = (d.replica("a", store), d.replica("b", store));
    let (ha, hb) = (a.addr("http"), b.addr("http"));

    // An OTP generated on A is confirmed on B; B's token works on A.
    let g = generate(ha, "9000000001").await;
    assert_eq!(g.status, 200, "{}", g.text());
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let otp = crate::citizen_flow::outbox_otp(&outbox(&a), &txn);
    let c = crate::citizen_flow::confirm(hb, &txn, &otp).await;
    assert_eq!(c.status, 200, "confirmed on the other replica: {}", c.text());
    let token = c.json()["token"].as_str().unwrap().to_string();
    assert_eq!(get_auth(ha, BENEFICIARIES, &token).await.status, 200, "B's token on A");
    assert_eq!(get_auth(hb, BENEFICIARIES, &token).await.status, 200, "and on B");
    let again = crate::citizen_flow::confirm(ha, &txn, &otp).await;
    assert_eq!(again.status, 401, "single use across replicas: {}", again.text());

    // The resend cooldown holds across both: a second send from B is refused.
    let cool = generate(hb, "9000000001").await;
    assert_eq!(cool.status, 429, "cooldown across replicas: {}", cool.text());
    // So do the send caps (3 per mobile per 15 min): sends alternate, the fourth is refused.
    for (i, at) in [ha, hb, ha, hb].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let g = generate(at, "9000000008").await;
        let want = if i < 3 { 200 } else { 429 };
        assert_eq!(g.status, want, "send {} of a mobile across both replicas: {}", i + 1, g.text());
    }

    // A limit is one budget across both: my-access-log allows 30 per session per 15 min.
    let mut allowed = 0;
    for i in 0..40 {
        let at = if i % 2 == 0 { ha } else { hb };
        match get_auth(at, ACCESS_LOG, &token).await.status {
            200 => allowed += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(allowed, 30, "the sum across both replicas is the quota");

    // Accesses served by A are listed by B (the access index is shared).
    let b_token = sign_in(hb, &outbox(&b), "9000000002").await;
    assert_eq!(get_auth(ha, BENEFICIARIES, &b_token).await.status, 200, "served by A");
    let log = get_auth(hb, ACCESS_LOG, &b_token).await;
    assert_eq!(log.status, 200, "{}", log.text());
    let entries = log.json()["accesses"].as_array().unwrap().clone();
    assert!(entries.iter().any(|e| e["route"] == "beneficiaries" && e["accessedBy"]["id"] == "you"), "{entries:?}");

    // Logout on A is refused on B at once.
    assert_eq!(post(ha, "/api/v2/auth/logout", "", Some(&b_token)).await.status, 200);
    assert_eq!(get_auth(hb, BENEFICIARIES, &b_token).await.status, 401, "revoked everywhere");

    // Each replica keeps its own verifiable log; `audit verify` and `query` take them together.
    let root = tempfile::tempdir().unwrap();
    for (gw, id) in [(&a, "a"), (&b, "b")] {
        let dir = gw.data_path("audit").join(id);
        assert!(dir.join("audit.log").is_file(), "{id}'s log is named by its replica id");
        copy_dir(&dir, &root.path().join(id));
    }
    let out = Command::new(BIN)
        .args(["audit", "verify", "--keys-dir"])
        .arg(d.keys.path())
        .arg("--log")
        .arg(root.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.matches("chain intact").count() == 2, "{text}");
    let query = |logs: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["audit", "query", "--format", "json"]);
        for log in logs {
            cmd.arg("--log").arg(root.path().join(log));
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["time"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (of_a, of_b, both) = (query(&["a"]), query(&["b"]), query(&["a", "b"]));
    assert!(!of_a.is_empty() && !of_b.is_empty(), "each replica audited what it served: {of_a:?} {of_b:?}");
    assert_eq!(both.len(), of_a.len() + of_b.len());
    assert!(both.windows(2).all(|w| w[0] <= w[1]), "merged by time: {both:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[tokio::test]
async fn two_replicas_on_one_redis_behave_as_one_gateway() {
    two_replicas_behave_as_one(SHARED_REDIS).await;
}

#[tokio::test]
async fn two_replicas_on_a_three_master_cluster_behave_as_one_gateway() {
    let nodes = start_cluster();
    let seeds: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    two_replicas_behave_as_one(&format!("redis+cluster://{}", seeds.join(","))).await;
}

/// Redis stops mid-test: sign-in and sessions fail closed (503, JSON shape), public routes serve,
/// `/readyz` says why, errors are counted; when Redis returns, everything works again without a
/// restart of the gateway.
#[tokio::test]
async fn a_store_that_goes_away_fails_closed_and_comes_back() {
    let redis = RedisServer::start(free_port(), false);
    let store = format!("redis://127.0.0.1:{}/0", redis.port);
    let d = Deployment::new();
    let gw = d.replica("solo", &store);
    let (http, admin) = (gw.addr("http"), gw.addr("admin"));
    let token = sign_in(http, &outbox(&gw), "9000000003").await;
    assert_eq!(get_auth(http, BENEFICIARIES, &token).await.status, 200);

    let (port, _) = redis.stop();
    let public = "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021";
    let g = generate(http, "9000000004").await;
    assert_eq!((g.status, g.error_code().as_str()), (503, "GWY5032"), "sign-in fails closed: {}", g.text());
    assert!(g.json()["requestId"].is_string(), "the JSON error shape");
    let r = get_auth(http, BENEFICIARIES, &token).await;
    assert_eq!(r.status, 503, "sessions fail closed, never open: {}", r.text());
    assert_eq!(get_h1(http, public).await.status, 200, "public routes keep serving");
    assert_eq!(get_h1(http, "/api/v2/admin/location/states").await.status, 200);
    let waited = Instant::now();
    loop {
        let ready = get_h1(admin, "/readyz").await;
        if ready.text().contains("state store unreachable") {
            assert_eq!(ready.status, 200, "degraded, still serving public routes");
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(5), "readyz says why: {}", ready.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = get_h1(admin, "/metrics").await.text();
    assert!(metric(&metrics, "otpgate_store_errors_total", &[]) > 0.0, "{metrics}");
    assert_eq!(metric(&metrics, "otpgate_store_up", &[]), 0.0);
    assert!(metric(&metrics, "otpgate_store_fallbacks_total", &[]) > 0.0, "ip limits fell back to local windows");

    // Redis returns (empty: it kept nothing): new sign-ins work, without restarting the gateway.
    let _redis = RedisServer::start(port, false);
    let back = Instant::now();
    loop {
        let g = generate(http, "9000000005").await;
        if g.status == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "recovers by itself: {} {}", g.status, g.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = sign_in(http, &outbox(&gw), "9000000006").await;
    assert_eq!(get_auth(http, BENEFICIARIES, &token).await.status, 200);
    assert!(get_h1(admin, "/readyz").await.text().contains("\"ready\":true"));
}

/// A Kubernetes ConfigMap volume: the files live in a timestamped directory, `..data` points at
/// it, each file is a link through `..data`, and an update swaps `..data` atomically. The gateway
/// reloads on that swap, as on any edit.
#[tokio::test]
async fn a_configmap_symlink_swap_reloads_the_policy() {
    use crate::foundation::{GATEWAY, routes};
    use std::os::unix::fs::symlink;
    let echo = crate::harness::upstream::Echo::start().await;
    let dir = tempfile::tempdir().unwrap();
    let version = |name: &str, extra: &str| {
        let v = dir.path().join(name);
        std::fs::create_dir(&v).unwrap();
        std::fs::write(v.join("gateway.yaml"), GATEWAY).unwrap();
        std::fs::write(v.join("routes.yaml"), routes(extra)).unwrap();
    };
    version("..2026_11_30_00_00_00.1", "");
    symlink("..2026_11_30_00_00_00.1", dir.path().join("..data")).unwrap();
    for file in ["gateway.yaml", "routes.yaml"] {
        symlink(format!("..data/{file}"), dir.path().join(file)).unwrap();
    }
    let test = format!("test={}", echo.url());
    let gw = Gateway::serve(dir.path(), &["--upstream", &test]);
    assert_eq!(get_h1(gw.addr("http"), "/added").await.status, 404);

    // The kubelet's update: a new directory, a new link, renamed over `..data`.
    let added = "  - {name: added, methods: [GET], path: /added, access: public, upstream: test}\n";
    version("..2026_11_30_00_01_00.2", added);
    symlink("..2026_11_30_00_01_00.2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    std::fs::remove_dir_all(dir.path().join("..2026_11_30_00_00_00.1")).unwrap();
    let http = gw.addr("http");
    assert!(
        eventually(Duration::from_secs(5), || async move { get_h1(http, "/added").await.status == 200 }).await,
        "the swapped policy is served: {}",
        gw.stderr()
    );
}

/// What the shared store costs per request, counted by Redis itself (`INFO commandstats`) on a
/// server of the test's own: printed for the README, and bounded so a change that adds round
/// trips fails here. Run with `-- --nocapture` to see the figures.
#[tokio::test]
async fn store_round_trips_per_request_are_few_and_counted() {
    let redis = RedisServer::start(free_port(), false);
    let store = format!("redis://127.0.0.1:{}/0", redis.port);
    let d = Deployment::new();
    let gw = d.replica("cost", &store);
    let http = gw.addr("http");
    let token = sign_in(http, &outbox(&gw), "9000000007").await;
    let calls = |r: &RedisServer| -> u64 {
        r.cli(&["info", "commandstats"])
            .lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    const N: u64 = 20;
    let public = "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021";
    let mut per_request = Vec::new();
    for (name, path, authed) in
        [("public, ip-limited", public, false), ("citizen read (beneficiaries)", BENEFICIARIES, true)]
    {
        // One request first: the server learns each script once (EVAL after a NOSCRIPT).
        let warm = if authed { get_auth(http, path, &token).await } else { get_h1(http, path).await };
        assert_eq!(warm.status, 200);
        let before = calls(&redis);
        for _ in 0..N {
            let r = if authed { get_auth(http, path, &token).await } else { get_h1(http, path).await };
            assert_eq!(r.status, 200, "{name}: {}", r.text());
        }
        let each = (calls(&redis) - before) as f64 / N as f64;
        println!("store round trips per request, {name}: {each}");
        per_request.push(each);
    }
    assert!(per_request[0] <= 1.0, "a public request: one GCRA call for all its windows");
    // Session touch, the caller's windows, the audit's shared access entry.
    assert!(per_request[1] <= 3.0, "a citizen read: {}", per_request[1]);
    for key in ["s", "rl"] {
        let found = redis.cli(&["--scan", "--pattern", &format!("{}{{{key}:*", d.prefix)]);
        if let Some(k) = found.lines().next() {
            println!("memory of one `{key}` key: {} bytes", redis.cli(&["memory", "usage", k]).trim());
        }
    }
}
