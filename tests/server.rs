//! The job server end to end: a real server on 127.0.0.1:0 (in process, or the real
//! `proofmill serve` binary for crash and signal tests) and a real HTTP client.
//!
//! Real proofs are few (transfer_batch/d16-b8, k=17, ~40 s each on 2 cores): one proved job
//! carries most assertions; validation, tenant and cancel tests never reach the prover.

// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod pg;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use proofmill_server::{config::TenantConfig, Config, JobStatus, JobStore};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const CIRCUIT: &str = "transfer_batch/d16-b8";

/// SRS and keys shared with the other test binaries (kept under `target/tmp`).
fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

/// A config whose job database and proofs live in `dir`, and SRS/keys in the shared dir.
fn config_in(dir: &Path) -> Config {
    Config {
        data_dir: shared_data_dir(),
        database: Some(dir.join("jobs.db")),
        proofs_dir: Some(dir.join("proofs")),
        shutdown_grace_secs: 2,
        ..Config::default()
    }
}

fn example(seed: u64) -> Value {
    proofmill_circuits::lookup(CIRCUIT)
        .unwrap()
        .example_input(seed)
}

fn prove_request(seed: u64) -> Value {
    json!({"type": "prove", "circuit": CIRCUIT, "input": example(seed)})
}

/// A server running in this process.
struct TestServer {
    url: String,
    client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), proofmill_server::ServerError>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(proofmill_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            url,
            client: Client::new(),
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server stops within the grace period");
        result.unwrap().unwrap();
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.text().await.unwrap();
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// Asserts a problem+json answer with this status and type, whose detail contains `needle`.
async fn assert_problem(response: reqwest::Response, status: u16, kind: &str, needle: &str) {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (got, body) = json_of(response).await;
    assert_eq!(got.as_u16(), status, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(needle),
        "detail {detail:?} lacks {needle:?}"
    );
}

async fn submit(client: &Client, base: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = client.post(format!("{base}/v1/jobs")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn job(client: &Client, base: &str, id: &str) -> Value {
    let (status, body) = json_of(
        client
            .get(format!("{base}/v1/jobs/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls a job until `done` holds for it.
async fn wait_for(
    client: &Client,
    base: &str,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let view = job(client, base, id).await;
        if done(&view) {
            return view;
        }
        assert!(
            start.elapsed() < timeout,
            "job {id} still not there after {timeout:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a server on loopback with `config`, which must refuse to start: its error, in words.
async fn refused_at_start(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    proofmill_server::run(listener, config, async {})
        .await
        .unwrap_err()
        .to_string()
}

/// Waits until the server answers `GET /healthz` (it has finished starting).
async fn wait_until_ready(c: &Client, base: &str) {
    let start = Instant::now();
    while !matches!(c.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success())
    {
        assert!(start.elapsed() < Duration::from_secs(120), "server not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /v1/verify` with `envelope`: the verdict (the request itself must succeed).
async fn verify_over_http(c: &Client, server: &TestServer, envelope: &Value) -> Value {
    let (status, verdict) = json_of(
        c.post(server.url("/v1/verify"))
            .json(&json!({ "proof": envelope }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    verdict
}

fn terminal(view: &Value) -> bool {
    matches!(
        view["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

/// One real proof through the whole API: submission (idempotent), SSE, the proof, its
/// verification over HTTP and by the prover library; and around it, cancelling a job held
/// by the busy device and one still queued, listing, usage, metrics, catalog, devices and
/// operations routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_job_end_to_end() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let base = server.url.clone();

    // Operations routes.
    for path in ["/healthz", "/readyz"] {
        let r = c.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let (_, openapi) = json_of(c.get(server.url("/openapi.json")).send().await.unwrap()).await;
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/verify",
        "/v1/circuits/{name}",
    ] {
        assert!(openapi["paths"][path].is_object(), "openapi lacks {path}");
    }

    // Catalog: names with a slash, plain or URL-encoded.
    let (status, circuits) = json_of(c.get(server.url("/v1/circuits")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(circuits
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == CIRCUIT));
    for path in [
        "/v1/circuits/transfer_batch/d16-b8",
        "/v1/circuits/transfer_batch%2Fd16-b8",
    ] {
        let (status, one) = json_of(c.get(server.url(path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {one}");
        assert_eq!(one["name"], CIRCUIT);
        assert_eq!(one["k"], 17);
    }

    // Submit with an idempotency key; the same key and body gives the same job.
    let request = prove_request(5);
    let submit_keyed = |body: Value| {
        c.post(server.url("/v1/jobs"))
            .header("Idempotency-Key", "batch-5")
            .json(&body)
            .send()
    };
    let r = submit_keyed(request.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().get("location").is_some());
    let (_, accepted) = json_of(r).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["status"], "queued");
    let (status, again) = json_of(submit_keyed(request.clone()).await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        again["id"],
        id.as_str(),
        "an idempotent retry returns the original job"
    );
    assert_problem(
        submit_keyed(prove_request(6)).await.unwrap(),
        422,
        "idempotency-key-reused",
        &id,
    )
    .await;

    // Follow it over server-sent events.
    let events = {
        let response = c
            .get(server.url(&format!("/v1/jobs/{id}/events")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        tokio::spawn(async move {
            let mut response = response;
            let mut text = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        })
    };

    // While it is being proved: a second job is held by the device (its witness ready),
    // a third is queued. Cancel both.
    wait_for(c, &base, &id, Duration::from_secs(120), |v| {
        v["status"] == "running"
    })
    .await;
    let (_, held) = json_of(submit(c, &base, &prove_request(7), None).await).await;
    let held = held["id"].as_str().unwrap().to_owned();
    wait_for(c, &base, &held, Duration::from_secs(60), |v| {
        v["stage"] == "waiting_for_device"
    })
    .await;
    let (_, queued) = json_of(submit(c, &base, &prove_request(8), None).await).await;
    let queued = queued["id"].as_str().unwrap().to_owned();
    assert_eq!(job(c, &base, &queued).await["status"], "queued");
    let r = c
        .delete(server.url(&format!("/v1/jobs/{queued}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await.1["status"], "cancelled");
    let r = c
        .delete(server.url(&format!("/v1/jobs/{queued}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "cancel is idempotent");
    let r = c
        .delete(server.url(&format!("/v1/jobs/{held}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "a running job stops at a stage boundary"
    );
    let view = wait_for(c, &base, &held, Duration::from_secs(30), terminal).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_problem(
        c.get(server.url(&format!("/v1/jobs/{held}/proof")))
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
        "cancelled",
    )
    .await;
    assert_eq!(
        job(c, &base, &id).await["status"],
        "running",
        "the first job goes on"
    );

    // The proof.
    let view = wait_for(c, &base, &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["progress"], 1.0);
    assert_eq!(view["device"], "cpu0");
    assert!(view["timings"]["running_seconds"].as_f64().unwrap() > 0.0);
    assert!(view["timings"]["finished"].is_string());
    let r = c
        .get(server.url(&format!("/v1/jobs/{id}/proof")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, envelope) = json_of(r).await;
    assert_eq!(envelope["format"], "proofmill-proof/1");
    assert_eq!(envelope["circuit"], CIRCUIT);
    assert_eq!(envelope["transcript"], "poseidon");

    // It verifies over HTTP and with the prover library; an altered byte does not.
    let verdict = verify_over_http(c, &server, &envelope).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    let mut tampered = envelope.clone();
    let hex_proof = tampered["proof"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&hex_proof[2..]).unwrap();
    bytes[64] ^= 1;
    tampered["proof"] = format!("0x{}", hex::encode(bytes)).into();
    let verdict = verify_over_http(c, &server, &tampered).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(verdict["reason"].is_string());
    let parsed = proofmill_prover::ProofEnvelope::from_value(envelope.clone()).unwrap();
    let verdict = tokio::task::spawn_blocking(move || {
        proofmill_prover::Prover::new(&shared_data_dir()).verify(&parsed, &|_| {})
    })
    .await
    .unwrap()
    .unwrap();
    assert!(verdict.valid, "{verdict:?}");

    // SSE saw it run and end.
    let text = tokio::time::timeout(Duration::from_secs(10), events)
        .await
        .expect("the event stream ends when the job does")
        .unwrap();
    assert!(text.contains("event: status"), "{text}");
    assert!(text.contains("\"status\":\"running\""), "{text}");
    assert!(text.contains("\"status\":\"succeeded\""), "{text}");

    // Listing, with a filter and a cursor.
    let (_, all) = json_of(c.get(server.url("/v1/jobs")).send().await.unwrap()).await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 3);
    let (_, done) = json_of(
        c.get(server.url("/v1/jobs?status=succeeded"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(done["jobs"][0]["id"], id.as_str());
    let (_, page1) = json_of(c.get(server.url("/v1/jobs?limit=2")).send().await.unwrap()).await;
    assert_eq!(page1["jobs"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = json_of(
        c.get(server.url(&format!("/v1/jobs?limit=2&cursor={cursor}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page2["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page2["jobs"][0]["id"], id.as_str(), "oldest last");
    assert!(page2["next_cursor"].is_null());

    // Usage, devices, metrics, and the catalog now knows the vk hash.
    let (_, usage) = json_of(c.get(server.url("/v1/usage")).send().await.unwrap()).await;
    let row = &usage["usage"][0];
    assert_eq!(row["tenant"], "default");
    assert_eq!(row["device_kind"], "cpu");
    assert!(row["device_seconds"].as_f64().unwrap() > 1.0, "{usage}");
    let (_, devices) = json_of(c.get(server.url("/v1/devices")).send().await.unwrap()).await;
    assert_eq!(devices["devices"][0]["id"], "cpu0");
    assert_eq!(devices["devices"][0]["kind"], "cpu");
    assert!(devices["devices"][0]["cores"].as_u64().unwrap() >= 1);
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "proofmill_jobs{status=\"succeeded\"}",
        "proofmill_queue_depth",
        "proofmill_prove_seconds_bucket{circuit=\"transfer_batch/d16-b8\"",
        "proofmill_stage_seconds_bucket{stage=\"proving\"",
        "proofmill_seconds_since_last_proof",
        "proofmill_device_memory_total_bytes{device=\"cpu0\"",
    ] {
        assert!(metrics.contains(needle), "metrics lack {needle}");
    }
    let (_, one) = json_of(
        c.get(server.url("/v1/circuits/transfer_batch/d16-b8"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["vk_hash"], envelope["vk_hash"]);

    server.stop().await;
}

/// Every client mistake gets a precise 4xx problem, before anything is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_problems() {
    let server = TestServer::start(|c| c.max_body_bytes = 64 << 10).await;
    let c = &server.client;
    let base = server.url.clone();
    let post_raw = |path: &str, body: &'static str| {
        c.post(server.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    assert_problem(
        post_raw("/v1/jobs", "{").await.unwrap(),
        400,
        "malformed-json",
        "EOF",
    )
    .await;
    assert_problem(
        post_raw("/v1/jobs", r#"{"type":"sing"}"#).await.unwrap(),
        422,
        "invalid-request",
        "unknown variant `sing`",
    )
    .await;
    assert_problem(
        post_raw("/v1/jobs", r#"{"type":"prove","input":{}}"#)
            .await
            .unwrap(),
        422,
        "invalid-request",
        "missing field `circuit`",
    )
    .await;
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"prove","circuit":"transfer_batch/d99-b1","input":{}}),
            None,
        )
        .await,
        422,
        "unknown-circuit",
        "transfer_batch/d16-b8",
    )
    .await;
    let mut overdraft = example(5);
    overdraft["transfers"][3]["amount"] = json!(1_000_000_000_000_000u64);
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"prove","circuit":CIRCUIT,"input":overdraft}),
            None,
        )
        .await,
        422,
        "invalid-input",
        "transfer 3: overdraft",
    )
    .await;
    let mut nonce = example(5);
    nonce["transfers"][1]["nonce"] = json!(999);
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"prove","circuit":CIRCUIT,"input":nonce}),
            None,
        )
        .await,
        422,
        "invalid-input",
        "transfer 1: nonce 999",
    )
    .await;
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"prove","circuit":CIRCUIT,"input":example(5),"transcript":"sha3"}),
            None,
        )
        .await,
        422,
        "invalid-request",
        "sha3",
    )
    .await;
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":"job_x"}]}),
            None,
        )
        .await,
        422,
        "invalid-request",
        "2 to 64",
    )
    .await;
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":"job_x"},{"job":"job_y"}]}),
            None,
        )
        .await,
        422,
        "invalid-request",
        "inputs[0].job: no job job_x",
    )
    .await;
    assert_problem(
        submit(c, &base, &json!({"type":"aggregate","inputs":[{"proof":{"format":"proofmill-proof/1"}},{"job":"a","proof":{}}]}), None).await,
        422,
        "invalid-envelope",
        "inputs[0].proof: not a proof envelope: missing field",
    )
    .await;
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":"a","proof":{}},{"job":"b"}]}),
            None,
        )
        .await,
        422,
        "invalid-request",
        "exactly one of",
    )
    .await;
    assert_problem(
        c.post(server.url("/v1/verify"))
            .json(&json!({"proof":{"format":"proofmill-proof/9"}}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-envelope",
        "proof: not a proof envelope",
    )
    .await;
    let envelope = json!({"format":"proofmill-proof/1","circuit":"nope","k":17,"vk_hash":"0x00",
        "transcript":"poseidon","instances":[["0x01"]],"proof":"0x00"});
    assert_problem(
        c.post(server.url("/v1/verify"))
            .json(&json!({"proof":envelope}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-envelope",
        "unknown circuit \"nope\"",
    )
    .await;
    assert_problem(
        post_raw("/v1/verify", "[").await.unwrap(),
        400,
        "malformed-json",
        "not JSON",
    )
    .await;

    // Oversized bodies: 413 naming the limit, whether announced or streamed.
    let big = format!(
        "{{\"type\":\"prove\",\"circuit\":\"{CIRCUIT}\",\"input\":\"{}\"}}",
        "x".repeat(200 << 10)
    );
    assert_problem(
        c.post(server.url("/v1/jobs"))
            .body(big.clone())
            .send()
            .await
            .unwrap(),
        413,
        "payload-too-large",
        "65536",
    )
    .await;

    // Unknown jobs and routes.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/jobs/job_nope"),
        (reqwest::Method::GET, "/v1/jobs/job_nope/proof"),
        (reqwest::Method::GET, "/v1/jobs/job_nope/events"),
        (reqwest::Method::DELETE, "/v1/jobs/job_nope"),
    ] {
        assert_problem(
            c.request(method, server.url(path)).send().await.unwrap(),
            404,
            "not-found",
            "no job job_nope",
        )
        .await;
    }
    assert_problem(
        c.get(server.url("/v2/x")).send().await.unwrap(),
        404,
        "not-found",
        "/v2/x",
    )
    .await;
    assert_problem(
        c.get(server.url("/v1/circuits/x/y")).send().await.unwrap(),
        404,
        "not-found",
        "unknown circuit",
    )
    .await;
    assert_problem(
        c.put(server.url("/v1/jobs")).send().await.unwrap(),
        405,
        "method-not-allowed",
        "PUT",
    )
    .await;
    assert_problem(
        c.get(server.url("/v1/jobs?status=done"))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-request",
        "unknown status",
    )
    .await;
    assert_problem(
        c.get(server.url("/v1/jobs?limit=0")).send().await.unwrap(),
        422,
        "invalid-request",
        "limit",
    )
    .await;
    assert_problem(
        c.get(server.url("/v1/jobs?cursor=abc"))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-request",
        "cursor",
    )
    .await;

    // Nothing was queued by any of this.
    let (_, list) = json_of(c.get(server.url("/v1/jobs")).send().await.unwrap()).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0, "{list}");
    server.stop().await;
}

fn key_hash(key: &str) -> String {
    proofmill_server::auth::hash_key(key)
}

/// API keys: 401 without one, tenants see only their own jobs, per-tenant queue and body
/// limits, usage per tenant (all for an admin), keys added by the CLI work at once; and no
/// keyless server on a public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = |name: &str, key: &str| TenantConfig {
        name: name.to_owned(),
        key_sha256: Some(key_hash(key)),
        admin: false,
        max_queued_jobs: None,
        max_body_bytes: None,
    };
    let tenants = vec![
        tenant("alice", "alice-key"),
        TenantConfig {
            max_queued_jobs: Some(1),
            max_body_bytes: Some(4096),
            ..tenant("bob", "bob-key")
        },
        TenantConfig {
            admin: true,
            ..tenant("ops", "ops-key")
        },
    ];
    let server = TestServer::start(|c| {
        c.tenants = tenants.clone();
        c.database = Some(dir.path().join("jobs.db"));
    })
    .await;
    let c = &server.client;
    let base = server.url.clone();

    assert_problem(
        c.get(server.url("/v1/jobs")).send().await.unwrap(),
        401,
        "unauthorized",
        "Bearer",
    )
    .await;
    assert_problem(
        c.get(server.url("/v1/jobs"))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
        "unknown API key",
    )
    .await;

    // Alice's job is invisible to Bob. Cancelled at once, so nothing is proved.
    let (status, accepted) =
        json_of(submit(c, &base, &prove_request(11), Some("alice-key")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let alice_job = accepted["id"].as_str().unwrap().to_owned();
    let r = c
        .delete(server.url(&format!("/v1/jobs/{alice_job}")))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for path in [
        format!("/v1/jobs/{alice_job}"),
        format!("/v1/jobs/{alice_job}/proof"),
    ] {
        assert_problem(
            c.get(server.url(&path))
                .bearer_auth("bob-key")
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
            "no job",
        )
        .await;
    }
    assert_problem(
        c.delete(server.url(&format!("/v1/jobs/{alice_job}")))
            .bearer_auth("bob-key")
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
        "no job",
    )
    .await;
    let (_, bobs) = json_of(
        c.get(server.url("/v1/jobs"))
            .bearer_auth("bob-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bobs["jobs"].as_array().unwrap().len(), 0);
    // Bob cannot aggregate Alice's job either.
    assert_problem(
        c.post(server.url("/v1/jobs"))
            .bearer_auth("bob-key")
            .json(&json!({"type":"aggregate","inputs":[{"job":alice_job},{"job":alice_job}]}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-request",
        "no job",
    )
    .await;
    let (_, alices) = json_of(
        c.get(server.url("/v1/jobs"))
            .bearer_auth("alice-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(alices["jobs"][0]["id"], alice_job.as_str());

    // Bob's body limit (4096) is below the example batch; Alice's is not.
    assert_problem(
        submit(c, &base, &prove_request(12), Some("bob-key")).await,
        413,
        "payload-too-large",
        "4096",
    )
    .await;

    // Bob's queue limit is 1 (a small aggregate request fits his body limit; its inputs are
    // envelopes, so it is accepted and then fails without proving anything).
    let fake = json!({"format":"proofmill-proof/1","circuit":CIRCUIT,"k":17,"vk_hash":"0x00",
        "transcript":"poseidon","instances":[[format!("0x{:064x}", 1), format!("0x{:064x}", 2), format!("0x{:064x}", 3)]],"proof":"0x00"});
    let aggregate =
        json!({"type":"aggregate","inputs":[{"proof":fake},{"proof":fake}],"priority":-5});
    let (status, first) = json_of(submit(c, &base, &aggregate, Some("bob-key")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();
    let second = submit(c, &base, &aggregate, Some("bob-key")).await;
    if second.status() == StatusCode::TOO_MANY_REQUESTS {
        assert_problem(second, 429, "too-many-jobs", "limit is 1").await;
    } else {
        // The first one ended already (it cannot verify); then the second is accepted.
        assert_eq!(second.status(), StatusCode::ACCEPTED);
    }
    let r = c
        .delete(server.url(&format!("/v1/jobs/{first}")))
        .bearer_auth("bob-key")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status() == StatusCode::CONFLICT);

    // Usage: own rows for a tenant, everyone's for the admin.
    let (status, usage) = json_of(
        c.get(server.url("/v1/usage"))
            .bearer_auth("alice-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        usage["usage"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tenant"] == "alice"),
        "{usage}"
    );
    let (status, _) = json_of(
        c.get(server.url("/v1/usage"))
            .bearer_auth("ops-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A key made by `proofmill keys add` against the same database works right away.
    let config_file = dir.path().join("proofmill.toml");
    std::fs::write(
        &config_file,
        format!("database = {:?}\n", dir.path().join("jobs.db")),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proofmill"))
        .args(["keys", "--config"])
        .arg(&config_file)
        .args(["add", "--tenant", "carol"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("pm_") && key.len() > 40, "{key}");
    let r = c
        .get(server.url("/v1/jobs"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;

    // No keys and a non-loopback address: refused, saying why.
    let open = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = proofmill_server::run(listener, config_in(open.path()), async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("without API keys") && err.contains("keys add"),
        "{err}"
    );
}

/// A server with no worker at all refuses to start and says why: the configuration check
/// rejects `cpu_workers = 0` without GPU workers, and with GPU workers on but no usable GPU
/// (this machine, unless it has one) `run` names the missing GPU.
#[tokio::test]
async fn no_proving_worker_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.cpu_workers = 0;
    config.gpu_workers = false;
    let err = config.check().unwrap_err().to_string();
    assert!(err.contains("cpu_workers is 0"), "{err}");

    if proofmill_accel::DeviceInventory::probe()
        .first_usable_gpu()
        .is_some()
    {
        eprintln!("no_proving_worker_is_refused_with_the_reason: a GPU is usable here, so the no-GPU half is skipped");
        return;
    }
    config.gpu_workers = true;
    let err = refused_at_start(config).await;
    assert!(
        err.contains("no proving worker") && err.contains("cpu_workers is 0"),
        "{err}"
    );
}

/// A running job is stopped at its next stage boundary by DELETE: it ends cancelled, with
/// no proof, and the device is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_running_job_stops_at_a_stage_boundary() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let base = server.url.clone();
    let (_, accepted) = json_of(submit(c, &base, &prove_request(31), None).await).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    wait_for(c, &base, &id, Duration::from_secs(120), |v| {
        matches!(
            v["stage"].as_str(),
            Some("srs" | "keys" | "keygen" | "proving")
        )
    })
    .await;
    let r = c
        .delete(server.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(r).await.1["cancel_requested"], true);
    let view = wait_for(c, &base, &id, Duration::from_secs(600), terminal).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["error"], "cancelled by its owner");
    assert_problem(
        c.get(server.url(&format!("/v1/jobs/{id}/proof")))
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
        "cancelled",
    )
    .await;
    let (_, devices) = json_of(c.get(server.url("/v1/devices")).send().await.unwrap()).await;
    assert_eq!(
        devices["devices"][0]["jobs"].as_array().unwrap().len(),
        0,
        "{devices}"
    );
    server.stop().await;
}

/// A `proofmill serve` child process, with the URL it printed.
struct ServeProcess {
    child: Child,
    url: String,
}

/// A test that fails leaves no server behind.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_serve(config: &Path) -> ServeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofmill"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("proofmill listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    ServeProcess { child, url }
}

/// Sends SIGTERM to a server and asserts that it exits 0 within `timeout`.
fn terminate(child: &mut Child, timeout: Duration) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = wait_exit(child, timeout);
    assert!(exit.success(), "{exit:?}");
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < timeout,
            "server did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Durability: a server killed with SIGKILL mid-proof loses nothing — on restart the job is
/// re-queued and completes. SIGTERM stops the server cleanly within its grace period,
/// re-queueing the job it could not finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_then_restart_completes_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proofmill.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase = {:?}\nproofs_dir = {:?}\nshutdown_grace_secs = 2\n",
            shared_data_dir(),
            dir.path().join("jobs.db"),
            dir.path().join("proofs")
        ),
    )
    .unwrap();
    let c = Client::new();

    let mut first = spawn_serve(&config);
    let (status, accepted) = json_of(submit(&c, &first.url, &prove_request(21), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["id"].as_str().unwrap().to_owned();
    wait_for(&c, &first.url, &id, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let mut second = spawn_serve(&config);
    let view = job(&c, &second.url, &id).await;
    assert!(
        view["retry_reason"]
            .as_str()
            .is_some_and(|r| r.contains("re-queued at start")),
        "{view}"
    );
    let view = wait_for(&c, &second.url, &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
    let r = c
        .get(format!("{}/v1/jobs/{id}/proof", second.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // SIGTERM while a job proves: the server exits 0 after the 2 s grace period, the job
    // goes back to the queue.
    let (_, accepted) = json_of(submit(&c, &second.url, &prove_request(22), None).await).await;
    let other = accepted["id"].as_str().unwrap().to_owned();
    wait_for(&c, &second.url, &other, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    let started = Instant::now();
    terminate(&mut second.child, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(20));
    let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
    let left = store.get(&other).await.unwrap().unwrap();
    assert_eq!(left.status, JobStatus::Queued);
    assert!(
        left.retry_reason
            .as_deref()
            .is_some_and(|r| r.contains("shutdown")),
        "{left:?}"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    store.close().await;
}

/// Aggregation over HTTP: two prove jobs of consecutive batches, one aggregate job that
/// waits for them; and an aggregate whose input job was cancelled fails naming it. Heavy
/// (k=21 aggregation keygen ~110 s unless another test cached the keys, proof ~240 s, ~8 GB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_job_waits_for_its_prove_jobs() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let base = server.url.clone();
    let batches = proofmill_circuits::lookup(CIRCUIT)
        .unwrap()
        .example_inputs(31, 2);
    let mut jobs = Vec::new();
    for batch in batches {
        let (_, a) = json_of(
            submit(
                c,
                &base,
                &json!({"type":"prove","circuit":CIRCUIT,"input":batch}),
                None,
            )
            .await,
        )
        .await;
        jobs.push(a["id"].as_str().unwrap().to_owned());
    }

    // An input job that is cancelled while queued: its aggregate fails and says which.
    let (_, doomed) = json_of(submit(c, &base, &prove_request(77), None).await).await;
    let doomed = doomed["id"].as_str().unwrap().to_owned();
    let (status, broken) = json_of(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":jobs[1]},{"job":doomed}]}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{broken}");
    let broken = broken["id"].as_str().unwrap().to_owned();
    let cancel = c
        .delete(server.url(&format!("/v1/jobs/{doomed}")))
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success(), "{:?}", cancel.status());
    let view = wait_for(c, &base, &broken, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert!(
        view["error"].as_str().unwrap_or_default().contains(&doomed),
        "{view}"
    );

    let (status, agg) = json_of(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":jobs[0]},{"job":jobs[1]}],"final":false}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{agg}");
    let agg = agg["id"].as_str().unwrap().to_owned();
    assert_eq!(job(c, &base, &agg).await["status"], "queued");
    let view = wait_for(c, &base, &agg, Duration::from_secs(1800), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let (_, envelope) = json_of(
        c.get(server.url(&format!("/v1/jobs/{agg}/proof")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let verdict = verify_over_http(c, &server, &envelope).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    server.stop().await;
}

/// An S3-compatible server for the bucket test: `moto_server` (PyPI `moto[server]`, which
/// `.ci/run` installs) on a free loopback port. None, after a loud message, when it is not
/// installed, unless `PROOFMILL_REQUIRE_S3=1` (CI), which makes that a failure.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    async fn start() -> Option<Self> {
        let exe = std::env::var("PROOFMILL_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let msg = format!("{exe} could not be started ({e})");
                assert!(
                    std::env::var("PROOFMILL_REQUIRE_S3").as_deref() != Ok("1"),
                    "PROOFMILL_REQUIRE_S3=1 but {msg}"
                );
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!!!!! SKIPPED the S3 proof store test: {msg}; install moto[server] !!!!!!!!\n"
                );
                return None;
            }
        };
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = Client::new();
        let start = Instant::now();
        while client.get(&server.endpoint).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto_server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(server)
    }
}

impl S3Server {
    /// object_store options that reach this server with moto's test credentials.
    fn options(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `artifacts_url`, proofs go to an S3-compatible bucket: the job's proof is the object
/// under `{prefix}/proofs/{id}.json`, `GET /proof` serves it and it verifies. A bad URL or
/// option is refused at start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_in_an_s3_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config_in(dir.path());
    bad.artifacts_url = Some("gs://elsewhere/p".into());
    let err = refused_at_start(bad).await;
    assert!(err.contains("only s3://"), "{err}");
    let mut bad = config_in(dir.path());
    bad.artifacts_url = Some("s3://bucket".into());
    bad.artifacts_options
        .insert("aws_no_such_option".into(), "1".into());
    let err = refused_at_start(bad).await;
    assert!(err.contains("aws_no_such_option"), "{err}");

    let Some(s3) = S3Server::start().await else {
        return;
    };
    let c = Client::new();
    let bucket = format!("{}/proofmill-test", s3.endpoint);
    assert!(c.put(&bucket).send().await.unwrap().status().is_success());

    // The start-up check finds a missing bucket; a `bucket` option is refused.
    let mut missing = config_in(dir.path());
    missing.artifacts_url = Some("s3://no-such-bucket/x".into());
    missing.artifacts_options = s3.options();
    let err = refused_at_start(missing).await;
    assert!(err.contains("no-such-bucket"), "{err}");
    let mut named = config_in(dir.path());
    named.artifacts_url = Some("s3://proofmill-test".into());
    named.artifacts_options = s3.options();
    named
        .artifacts_options
        .insert("aws_bucket".into(), "other".into());
    let err = refused_at_start(named).await;
    assert!(err.contains("named by artifacts_url"), "{err}");
    let options = s3.options();
    let local_proofs = dir.path().join("local-proofs");
    let proofs_dir = local_proofs.clone();
    let server = TestServer::start(move |config| {
        config.artifacts_url = Some("s3://proofmill-test/node-a".into());
        config.artifacts_options = options;
        config.proofs_dir = Some(proofs_dir);
    })
    .await;
    let base = server.url.clone();
    let r = submit(&c, &base, &prove_request(41), None).await;
    let (status, created) = json_of(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let view = wait_for(&c, &base, &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");

    let served = c
        .get(server.url(&format!("/v1/jobs/{id}/proof")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let served = served.text().await.unwrap();
    // The object itself, read back with a client of its own.
    let reader =
        proofmill_server::Artifacts::bucket("s3://proofmill-test", &s3.options(), dir.path())
            .unwrap();
    let object = reader
        .get(&format!("s3://proofmill-test/node-a/proofs/{id}.json"))
        .await
        .unwrap();
    assert_eq!(object, served, "the proof object is what GET /proof served");
    let envelope: Value = serde_json::from_str(&served).unwrap();
    let verdict = verify_over_http(&c, &server, &envelope).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert!(
        !local_proofs.exists(),
        "with a bucket, nothing is written to the local proofs directory"
    );
    server.stop().await;

    // After the proof, the node shared the SRS file and proving key it used...
    let shared = shared_data_dir();
    let used = tokio::task::spawn_blocking({
        let shared = shared.clone();
        move || {
            let k = proofmill_circuits::lookup(CIRCUIT).unwrap().shape().k;
            proofmill_prover::Prover::new(&shared)
                .data_files(CIRCUIT, k)
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(used.len(), 3, "SRS file, pk.bin, meta.json: {used:?}");
    let meta = used[2].strip_prefix(&shared).unwrap();
    let start = Instant::now();
    let meta_object = format!("s3://proofmill-test/node-a/data/{}", meta.to_str().unwrap());
    while reader.get(&meta_object).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{meta_object} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and a new node with an empty data directory fetches them at start, byte for byte,
    // instead of generating them.
    let fresh = dir.path().join("fresh-node-data");
    let options = s3.options();
    let data_dir = fresh.clone();
    let second = TestServer::start(move |config| {
        config.artifacts_url = Some("s3://proofmill-test/node-a".into());
        config.artifacts_options = options;
        config.data_dir = data_dir;
    })
    .await;
    wait_until_ready(&c, &second.url).await;
    for file in &used {
        let copy = fresh.join(file.strip_prefix(&shared).unwrap());
        assert!(
            std::fs::read(file).unwrap() == std::fs::read(&copy).unwrap(),
            "{} differs from {}",
            copy.display(),
            file.display()
        );
    }
    second.stop().await;
}

/// A bucket that goes away after start does not cost a finished proof: it is kept in the
/// local proofs directory, the job succeeds and `GET /proof` serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_outage_keeps_the_proof_on_the_node() {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let c = Client::new();
    assert!(c
        .put(format!("{}/outage-test", s3.endpoint))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let dir = tempfile::tempdir().unwrap();
    let local_proofs = dir.path().join("fallback");
    let (options, proofs_dir) = (s3.options(), local_proofs.clone());
    let server = TestServer::start(move |config| {
        config.artifacts_url = Some("s3://outage-test".into());
        config.artifacts_options = options;
        config.proofs_dir = Some(proofs_dir);
    })
    .await;
    let base = server.url.clone();
    // The server has passed its start-up check once it answers; then the bucket goes away.
    wait_until_ready(&c, &base).await;
    drop(s3);

    let (status, created) = json_of(submit(&c, &base, &prove_request(43), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let view = wait_for(&c, &base, &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let kept = local_proofs.join(format!("{id}.json"));
    assert!(kept.exists(), "the proof is kept at {}", kept.display());
    let served = c
        .get(server.url(&format!("/v1/jobs/{id}/proof")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(
        served.text().await.unwrap(),
        std::fs::read_to_string(&kept).unwrap()
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Cluster mode: several `proofmill serve` processes against one PostgreSQL database (the test
// server of scripts/pg-setup.sh) and one proofs directory standing in for the object store.

/// The cluster tests share one PostgreSQL server, and one of them restarts it: they run one
/// at a time.
static PG_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a cluster test runs on: exclusive use of the test PostgreSQL server, a fresh database
/// on it, and a directory for the nodes' files. `None` (after a loud notice) without a server.
async fn cluster_setup(
    test: &str,
) -> Option<(
    tokio::sync::MutexGuard<'static, ()>,
    String,
    tempfile::TempDir,
)> {
    let admin = pg::admin_url(test)?;
    let exclusive = PG_SERVER.lock().await;
    let url = pg::fresh_database(&admin, "pm_cluster").await;
    Some((exclusive, url, tempfile::tempdir().unwrap()))
}

/// A cluster node's configuration file in `dir`: the shared database, the shared proofs
/// directory, a short lease.
fn node_config(dir: &Path, database_url: &str, node: &str, lease_secs: u64) -> PathBuf {
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\ndatabase_url = {database_url:?}\nnode_id = {node:?}\nproofs_dir = {:?}\nlease_secs = {lease_secs}\nshutdown_grace_secs = 2\n",
            shared_data_dir(),
            dir.join("proofs")
        ),
    )
    .unwrap();
    path
}

/// A job's view through the first node that answers (nodes or the database may be
/// restarting).
async fn job_via(c: &Client, urls: &[String], id: &str) -> Option<Value> {
    for base in urls {
        if let Ok(r) = c.get(format!("{base}/v1/jobs/{id}")).send().await {
            if r.status() == StatusCode::OK {
                return r.json().await.ok();
            }
        }
    }
    None
}

/// Waits until `GET /v1/devices` on `base` lists every node of `nodes` as live, with its
/// devices; returns the answer.
async fn wait_for_cluster(c: &Client, base: &str, nodes: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("{base}/v1/devices")).send().await {
            if r.status() == StatusCode::OK {
                let body: Value = r.json().await.unwrap();
                let live = |n: &str| {
                    body["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v["node"] == n && v["live"] == true)
                        && body["devices"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|d| d["node"] == n)
                };
                if nodes.iter().all(|n| live(n)) {
                    return body;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{base} never listed all of {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `(node, outcome)` of each attempt in a job's history.
fn attempts_of(view: &Value) -> Vec<(String, String)> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["node"].as_str().unwrap().to_owned(),
                h["outcome"].as_str().unwrap_or("running").to_owned(),
            )
        })
        .collect()
}

/// Two nodes; the one proving a job is killed with SIGKILL. Its lease expires, the other
/// node re-queues the job (spending no retry) and proves it: one result, recorded once, with
/// the history saying what happened. The dead node drops out of the device list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_killed_mid_job_its_job_finishes_on_another_after_the_lease() {
    let Some((_exclusive, url, dir)) = cluster_setup("cluster_node_killed_mid_job").await else {
        return;
    };
    let c = Client::new();
    let names = ["node-a", "node-b"];
    let mut nodes: Vec<ServeProcess> = names
        .iter()
        .map(|n| spawn_serve(&node_config(dir.path(), &url, n, 4)))
        .collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    for base in &urls {
        let devices = wait_for_cluster(&c, base, &names).await;
        assert!(
            devices["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["this_node"] == true)
                .count()
                == 1,
            "{devices}"
        );
    }

    let (status, accepted) = json_of(submit(&c, &urls[0], &prove_request(31), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let running = wait_for(&c, &urls[1], &id, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    let victim = running["node"].as_str().unwrap().to_owned();
    let (dead, alive) = if victim == names[0] { (0, 1) } else { (1, 0) };
    nodes[dead].child.kill().unwrap(); // SIGKILL: no goodbye, the lease just stops
    nodes[dead].child.wait().unwrap();

    let view = wait_for(&c, &urls[alive], &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
    assert_eq!(
        view["failures"], 0,
        "a lease expiry spends no retry: {view}"
    );
    assert_eq!(view["node"], names[alive], "{view}");
    assert!(
        view["retry_reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("lease of node {victim} expired"))),
        "{view}"
    );
    assert_eq!(
        attempts_of(&view),
        [
            (victim.clone(), "lease_expired".to_owned()),
            (names[alive].to_owned(), "succeeded".to_owned())
        ],
        "{view}"
    );
    let r = c
        .get(format!("{}/v1/jobs/{id}/proof", urls[alive]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The dead node stops heartbeating: after three leases it is listed as not live and its
    // devices are gone from the cluster's list.
    let start = Instant::now();
    loop {
        let body: Value = c
            .get(format!("{}/v1/devices", urls[alive]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let gone = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["node"] == victim.as_str() && n["live"] == false)
            && body["devices"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["node"] != victim.as_str());
        if gone {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    terminate(&mut nodes[alive].child, Duration::from_secs(30));
}

/// Three nodes under load: PostgreSQL is restarted while jobs prove, then a node holding a
/// job is restarted (SIGTERM, start again). Every job succeeds exactly once; no lease
/// expires (the restarts are shorter than the lease), no job is ever held by two attempts at
/// once, nothing is lost, and the proofs are served by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_of_three_survives_postgres_and_node_restarts_under_load() {
    let Some((_exclusive, url, dir)) = cluster_setup("cluster_of_three_survives_restarts").await
    else {
        return;
    };
    let c = Client::new();
    let names = ["node-a", "node-b", "node-c"];
    let configs: Vec<PathBuf> = names
        .iter()
        .map(|n| node_config(dir.path(), &url, n, 8))
        .collect();
    let mut nodes: Vec<ServeProcess> = configs.iter().map(|p| spawn_serve(p)).collect();
    let mut urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    wait_for_cluster(&c, &urls[2], &names).await;

    let mut ids = Vec::new();
    for (i, seed) in (41..45).enumerate() {
        let (status, accepted) =
            json_of(submit(&c, &urls[i % 3], &prove_request(seed), None).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    // Poll until `pick` finds a job in a state worth acting on.
    async fn until(
        c: &Client,
        urls: &[String],
        ids: &[String],
        pick: impl Fn(&[Value]) -> Option<String>,
    ) -> String {
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            for id in ids {
                if let Some(v) = job_via(c, urls, id).await {
                    views.push(v);
                }
            }
            if views.len() == ids.len() {
                if let Some(found) = pick(&views) {
                    return found;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(600), "{views:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    until(&c, &urls, &ids, |views| {
        (views.iter().filter(|v| v["stage"] == "proving").count() >= 2).then(String::new)
    })
    .await;
    pg::ctl("restart");

    // A node proving a job is restarted gracefully; it comes back under the same id.
    let victim = until(&c, &urls, &ids, |views| {
        views
            .iter()
            .find(|v| v["stage"] == "proving")
            .and_then(|v| v["node"].as_str().map(str::to_owned))
    })
    .await;
    let v = names.iter().position(|n| *n == victim).unwrap();
    terminate(&mut nodes[v].child, Duration::from_secs(60));
    nodes[v] = spawn_serve(&configs[v]);
    urls[v] = nodes[v].url.clone();

    until(&c, &urls, &ids, |views| {
        views.iter().all(terminal).then(String::new)
    })
    .await;
    let mut requeued = 0;
    for id in &ids {
        let view = job_via(&c, &urls, id).await.unwrap();
        assert_eq!(view["status"], "succeeded", "{view}");
        let attempts = attempts_of(&view);
        assert_eq!(
            attempts.iter().filter(|(_, o)| o == "succeeded").count(),
            1,
            "{view}"
        );
        assert!(
            attempts
                .iter()
                .all(|(_, o)| o != "lease_expired" && o != "superseded"),
            "{view}"
        );
        requeued += attempts.iter().filter(|(_, o)| o == "requeued").count();
        // Attempts follow one another: none starts before the previous one ended.
        let history = view["history"].as_array().unwrap();
        for pair in history.windows(2) {
            let ended = pair[0]["ended"].as_str().unwrap();
            let started = pair[1]["started"].as_str().unwrap();
            assert!(ended <= started, "{view}");
        }
        for base in &urls {
            let r = c
                .get(format!("{base}/v1/jobs/{id}/proof"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{base} {id}");
        }
    }
    assert!(
        requeued >= 1,
        "the restarted node's job went back to the queue"
    );
    let devices = wait_for_cluster(&c, &urls[0], &names).await;
    assert_eq!(devices["nodes"].as_array().unwrap().len(), 3, "{devices}");
    for node in &mut nodes {
        terminate(&mut node.child, Duration::from_secs(30));
    }
}
