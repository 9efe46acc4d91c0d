//! Bad input on every route: precise problem+json answers, never a 5xx, a panic or a hang.

use super::*;

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

/// A hostile corpus against a real server, on every route: malformed and truncated JSON,
/// wrong types, huge numbers, deep nesting in every field that takes JSON, over-long names
/// and headers, invalid UTF-8, wrong methods, wrong and missing keys, oversized bodies. Every
/// answer is a 4xx problem+json that names what is wrong; the server stays healthy, and a job
/// submitted before the corpus still completes and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_corpus_gets_4xx_problems_and_harms_nothing() {
    let server = TestServer::start(|c| {
        c.tenants = vec![proofmill_server::config::TenantConfig {
            name: "t".into(),
            key_sha256: Some(key_hash("good-key")),
            admin: false,
            max_queued_jobs: None,
            max_body_bytes: Some(1 << 20),
            max_priority: None,
        }];
        c.max_auth_failures_per_minute = 10_000;
    })
    .await;
    let c = &server.client;
    let base = server.url.clone();
    let (status, accepted) =
        json_of(submit(c, &base, &prove_request(41), Some("good-key")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let survivor = accepted["id"].as_str().unwrap().to_owned();

    let deep_array = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_name = "aggregate(".repeat(60_000);
    let long_name = format!("aggregate({})", vec![CIRCUIT; 2000].join(","));
    let nested_name = {
        let mut name = CIRCUIT.to_owned();
        for _ in 0..9 {
            name = format!("aggregate({name},{CIRCUIT})");
        }
        name
    };
    let one = format!("0x{}1", "0".repeat(63));
    let envelope_of = |circuit: &str, inputs: usize| {
        json!({"format":"proofmill-proof/1","circuit":circuit,"k":21,"vk_hash":format!("0x{}", "0".repeat(64)),
            "transcript":"poseidon","instances":[vec![one.clone(); inputs]],"proof":"0x00"})
    };
    let envelope = |circuit: &str| envelope_of(circuit, 1);
    let jobs_bodies: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), "EOF"),
        (br#"{"type":"prove","circuit":"transfer_batch/d16-b8","input":{"old_root":"0x"#.to_vec(), "EOF"),
        (b"\xff\xfe{}".to_vec(), "not JSON"),
        (b"null".to_vec(), "object"),
        (b"[]".to_vec(), "object"),
        (br#"{"type":7}"#.to_vec(), "type"),
        (br#"{"type":"prove","circuit":5,"input":{}}"#.to_vec(), "circuit"),
        (br#"{"type":"prove","circuit":"transfer_batch/d16-b8","input":{},"priority":"high"}"#.to_vec(), "priority"),
        (br#"{"type":"prove","circuit":"transfer_batch/d16-b8","input":{},"priority":1e400}"#.to_vec(), "number out of range"),
        (br#"{"type":"prove","circuit":"transfer_batch/d16-b8","input":{},"priority":18446744073709551616}"#.to_vec(), "priority"),
        (br#"{"type":"prove","circuit":"transfer_batch/d16-b8","input":{},"priority":2147483647}"#.to_vec(), "max_priority"),
        (format!(r#"{{"type":"prove","circuit":"transfer_batch/d16-b8","input":{}}}"#, deep_array(100_000)).into_bytes(), "recursion limit"),
        (format!(r#"{{"type":"prove","circuit":"transfer_batch/d16-b8","input":{{"old_root":{}}}}}"#, deep_array(120)).into_bytes(), "input"),
        (format!(r#"{{"type":"aggregate","inputs":{}}}"#, deep_array(100_000)).into_bytes(), "recursion limit"),
        (format!(r#"{{"type":"keygen","circuit":"{deep_name}"}}"#).into_bytes(), "limit is 16384 bytes"),
        (format!(r#"{{"type":"keygen","circuit":"{nested_name}"}}"#).into_bytes(), "limit is 8 levels"),
        (format!(r#"{{"type":"keygen","circuit":"{}"}}"#, "x".repeat(20_000)).into_bytes(), "limit is 16384 bytes"),
        (format!(r#"{{"type":"prove","circuit":"{}","input":{{}}}}"#, "x".repeat(20_000)).into_bytes(), "unknown circuit"),
        (json!({"type":"aggregate","inputs":[{"proof":envelope(&deep_name)},{"proof":envelope(CIRCUIT)}]}).to_string().into_bytes(), "limit is 16384 bytes"),
        (json!({"type":"aggregate","inputs":[{"proof":envelope(&long_name)},{"proof":envelope(CIRCUIT)}]}).to_string().into_bytes(), "limit is 16384 bytes"),
        (json!({"type":"aggregate","inputs":[{"proof":envelope("aggregate(transfer_batch/d32-b64,transfer_batch/d32-b64)")},{"proof":envelope(CIRCUIT)}]}).to_string().into_bytes(), "keygen job"),
        (json!({"type":"aggregate","inputs":[{"proof":{"format":"proofmill-proof/1","circuit":CIRCUIT,"k":17,"vk_hash":"0x","transcript":"poseidon","instances":[["0x01"]],"proof":format!("0x{}", "ab".repeat(300_000))}},{"job":"x"}]}).to_string().into_bytes(), "the limit is 262144"),
        (json!({"type":"aggregate","inputs":[{"proof":{"format":"proofmill-proof/1","circuit":CIRCUIT,"k":17,"vk_hash":"0x","transcript":"poseidon","instances":[vec!["0x01"; 5000]],"proof":"0x00"}},{"job":"x"}]}).to_string().into_bytes(), "the limit is 4096"),
        (json!({"type":"aggregate","inputs":[deep_array(100).as_str(),{"job":"x"}]}).to_string().into_bytes(), "inputs[0]"),
    ];
    let verify_bodies: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"proof\":".to_vec(), "EOF"),
        (br#"{"proof":{}}"#.to_vec(), "not a proof envelope"),
        (br#"{"proof":[]}"#.to_vec(), "not a proof envelope"),
        (json!({"proof": envelope(&deep_name)}).to_string().into_bytes(), "limit is 16384 bytes"),
        (json!({"proof": envelope(&nested_name)}).to_string().into_bytes(), "limit is 8 levels"),
        (json!({"proof": envelope_of("aggregate(transfer_batch/d32-b64,transfer_batch/d32-b64)", 15)}).to_string().into_bytes(), "no keys for"),
        (format!(r#"{{"proof":{{"format":"proofmill-proof/1","circuit":"c","k":1,"vk_hash":"0x","transcript":"poseidon","instances":{},"proof":"0x"}}}}"#, deep_array(100_000)).into_bytes(), "recursion limit"),
        (br#"{"proof":{"format":"proofmill-proof/1","circuit":"transfer_batch/d16-b8","k":99999999999,"vk_hash":"0x","transcript":"poseidon","instances":[],"proof":"0x"}}"#.to_vec(), "u32"),
        (b"\xc3\x28".to_vec(), "not JSON"),
    ];
    let mut answers = 0;
    let check = |r: reqwest::Response, what: String, needle: &'static str| async move {
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = r.text().await.unwrap();
        assert!(status.is_client_error(), "{what}: {status} {body}");
        assert_eq!(content_type, "application/problem+json", "{what}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: {status}: detail {detail:?} does not name {needle:?}"
        );
    };
    for (path, bodies) in [("/v1/jobs", &jobs_bodies), ("/v1/verify", &verify_bodies)] {
        for (body, needle) in bodies {
            let r = c
                .post(server.url(path))
                .bearer_auth("good-key")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            check(r, format!("POST {path} {shown}"), needle).await;
            answers += 1;
        }
    }
    // Headers and queries.
    let long_key = "k".repeat(300);
    let requests = vec![
        (
            c.post(server.url("/v1/jobs"))
                .bearer_auth("good-key")
                .header("idempotency-key", long_key.as_str())
                .json(&prove_request(1)),
            "Idempotency-Key",
        ),
        (
            c.post(server.url("/v1/jobs"))
                .bearer_auth("good-key")
                .header("idempotency-key", "tab\there")
                .json(&prove_request(1)),
            "Idempotency-Key",
        ),
        (
            c.get(server.url("/v1/jobs?limit=99999999999999999999999"))
                .bearer_auth("good-key"),
            "limit",
        ),
        (
            c.get(server.url("/v1/jobs?status=%FF%FE"))
                .bearer_auth("good-key"),
            "UTF-8",
        ),
        (
            c.get(server.url("/v1/jobs?cursor=1&cursor=2"))
                .bearer_auth("good-key"),
            "twice",
        ),
        (
            c.get(server.url(&format!("/v1/jobs?{}=1", "q".repeat(10_000))))
                .bearer_auth("good-key"),
            "unknown query parameter",
        ),
        (
            c.get(server.url(&format!("/v1/jobs/{}", "j".repeat(5000))))
                .bearer_auth("good-key"),
            "no job",
        ),
        (
            c.get(server.url(&format!("/v1/circuits/{}", "c".repeat(5000))))
                .bearer_auth("good-key"),
            "unknown circuit",
        ),
        (
            c.patch(server.url("/v1/jobs")).bearer_auth("good-key"),
            "PATCH",
        ),
        (
            c.delete(server.url("/v1/verify")).bearer_auth("good-key"),
            "DELETE",
        ),
        (c.get(server.url("/v1/jobs")), "API key"),
        (
            c.get(server.url("/v1/jobs")).bearer_auth("wrong-key"),
            "unknown API key",
        ),
        (
            c.get(server.url("/v1/jobs"))
                .header("authorization", "Basic Zm9vOmJhcg=="),
            "Bearer",
        ),
        (
            c.get(server.url("/v1/devices"))
                .header("authorization", format!("Bearer {}", "x".repeat(20_000))),
            "unknown API key",
        ),
        (
            c.post(server.url("/v1/verify"))
                .bearer_auth("good-key")
                .body(vec![b' '; 3 << 19]),
            "1048576",
        ),
    ];
    for (request, needle) in requests {
        let request = request.build().unwrap();
        let what = format!(
            "{} {}",
            request.method(),
            &request.url().as_str()[..80.min(request.url().as_str().len())]
        );
        let r = c.execute(request).await.unwrap();
        check(r, what, needle).await;
        answers += 1;
    }
    let r = c.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the server is still healthy");
    eprintln!("hostile corpus: {answers} requests, every one a 4xx problem");

    // The job submitted before all that completes, and its proof verifies.
    let start = Instant::now();
    let view = loop {
        let r = c
            .get(server.url(&format!("/v1/jobs/{survivor}")))
            .bearer_auth("good-key")
            .send()
            .await
            .unwrap();
        let (_, view) = json_of(r).await;
        if terminal(&view) {
            break view;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "{view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "succeeded", "{view}");
    let proof: Value = c
        .get(server.url(&format!("/v1/jobs/{survivor}/proof")))
        .bearer_auth("good-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(proof["srs"]["kind"], "development", "{}", proof["srs"]);
    let (status, verdict) = json_of(
        c.post(server.url("/v1/verify"))
            .bearer_auth("good-key")
            .json(&json!({ "proof": proof }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["srs"]["insecure"], true, "{verdict}");
    server.stop().await;
}
