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
