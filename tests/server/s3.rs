//! Proofs in an S3-compatible bucket (moto), and a bucket outage.

use super::*;

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
