//! The job server end to end: a real server on 127.0.0.1:0 (in process, or the real
//! `proofmill serve` binary for crash and signal tests) and a real HTTP client. One test
//! binary, its tests by concern:
//!
//! - [`jobs`]: a real proof through the whole API, cancels, aggregation;
//! - [`input`]: bad input on every route, from precise problems to a hostile corpus;
//! - [`tenants`]: keys, isolation, limits, fair sharing of the devices;
//! - [`lifecycle`]: `kill -9`, restarts, SIGTERM;
//! - [`s3`]: proofs in an S3-compatible bucket, and its outage;
//! - [`cluster`]: several nodes on one PostgreSQL;
//! - [`console`]: the operator console, its API, and the console in headless Chromium;
//! - [`epoch`]: two chains over two epochs, settled by the contract on a real Ethereum node;
//! - [`openapi`]: the whole API, property-based, from its own OpenAPI document (schemathesis).
//!
//! Real proofs are few (transfer_batch/d16-b8, k=17, ~30 s each on 2 cores): one proved job
//! carries most assertions; validation, tenant and cancel tests never reach the prover.

// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "../pg/mod.rs"]
mod pg;

mod cluster;
mod console;
mod epoch;
mod input;
mod jobs;
mod lifecycle;
mod openapi;
mod s3;
mod tenants;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use proofmill_server::Config;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub(crate) const CIRCUIT: &str = "transfer_batch/d16-b8";

/// SRS and keys shared with the other test binaries (kept under `target/tmp`).
pub(crate) fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

/// A config whose job database and proofs live in `dir`, and SRS/keys in the shared dir.
pub(crate) fn config_in(dir: &Path) -> Config {
    Config {
        data_dir: shared_data_dir(),
        database: Some(dir.join("jobs.db")),
        proofs_dir: Some(dir.join("proofs")),
        shutdown_grace_secs: 2,
        ..Config::default()
    }
}

pub(crate) fn example(seed: u64) -> Value {
    proofmill_circuits::lookup(CIRCUIT)
        .unwrap()
        .example_input(seed)
}

pub(crate) fn prove_request(seed: u64) -> Value {
    json!({"type": "prove", "circuit": CIRCUIT, "input": example(seed)})
}

/// A server running in this process.
pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), proofmill_server::ServerError>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub(crate) async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server stops within the grace period");
        result.unwrap().unwrap();
    }
}

pub(crate) async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.text().await.unwrap();
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// Asserts a problem+json answer with this status and type, whose detail contains `needle`.
pub(crate) async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    needle: &str,
) {
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

pub(crate) async fn submit(
    client: &Client,
    base: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = client.post(format!("{base}/v1/jobs")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

pub(crate) async fn job(client: &Client, base: &str, id: &str) -> Value {
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
pub(crate) async fn wait_for(
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
pub(crate) async fn refused_at_start(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    proofmill_server::run(listener, config, async {})
        .await
        .unwrap_err()
        .to_string()
}

/// Waits until the server answers `GET /healthz` (it has finished starting).
pub(crate) async fn wait_until_ready(c: &Client, base: &str) {
    let start = Instant::now();
    while !matches!(c.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success())
    {
        assert!(start.elapsed() < Duration::from_secs(120), "server not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /v1/verify` with `envelope`: the verdict (the request itself must succeed).
pub(crate) async fn verify_over_http(c: &Client, server: &TestServer, envelope: &Value) -> Value {
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

pub(crate) fn terminal(view: &Value) -> bool {
    matches!(
        view["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

/// A `proofmill serve` child process, with the URL it printed.
pub(crate) struct ServeProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
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

pub(crate) fn spawn_serve(config: &Path) -> ServeProcess {
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
pub(crate) fn terminate(child: &mut Child, timeout: Duration) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = wait_exit(child, timeout);
    assert!(exit.success(), "{exit:?}");
}

pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
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

pub(crate) fn key_hash(key: &str) -> String {
    proofmill_server::auth::hash_key(key)
}
