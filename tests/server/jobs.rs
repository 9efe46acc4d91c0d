//! A real proof through the whole API; cancels; aggregate jobs that wait for prove jobs.

use super::*;

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
        // The memory placement uses: the first proof (keygen) needs more host memory than
        // later ones, and a k=17 proof is between 0.5 and 2 GiB on the host.
        let memory = &one["memory"];
        let (host, first, gpu) = (
            memory["host_bytes"].as_u64().unwrap(),
            memory["host_bytes_with_keygen"].as_u64().unwrap(),
            memory["gpu_bytes"].as_u64().unwrap(),
        );
        assert!((1u64 << 29..2u64 << 30).contains(&host), "{one}");
        assert!(first > host && gpu > 0 && gpu < host, "{one}");
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
    let queued = job(c, &base, &agg).await;
    assert_eq!(queued["status"], "queued");
    // Its circuit, from its input jobs' (placement sizes it by that and its keys).
    let circuit = format!("aggregate({CIRCUIT},{CIRCUIT})");
    assert_eq!(queued["circuit"], circuit.as_str(), "{queued}");
    let view = wait_for(c, &base, &agg, Duration::from_secs(1800), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let (_, envelope) = json_of(
        c.get(server.url(&format!("/v1/jobs/{agg}/proof")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(envelope["circuit"], circuit.as_str());
    let verdict = verify_over_http(c, &server, &envelope).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    server.stop().await;
}

/// A keygen job is admitted, queued and counted like any other job: it ends succeeded with
/// the keys' vk hash and no proof; with its keys made, proofs of the circuit verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_jobs_make_keys_and_have_no_proof() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let base = server.url.clone();
    let (status, accepted) =
        json_of(submit(c, &base, &json!({"type":"keygen","circuit":CIRCUIT}), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let view = wait_for(c, &base, &id, Duration::from_secs(600), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["type"], "keygen");
    assert!(
        view["vk_hash"].as_str().unwrap().starts_with("0x"),
        "{view}"
    );
    assert!(view.get("transcript").is_none(), "{view}");
    assert_problem(
        c.get(server.url(&format!("/v1/jobs/{id}/proof")))
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
        "made keys",
    )
    .await;
    // A keygen job cannot be an aggregate's input.
    assert_problem(
        submit(
            c,
            &base,
            &json!({"type":"aggregate","inputs":[{"job":id},{"job":id}]}),
            None,
        )
        .await,
        422,
        "invalid-request",
        "no poseidon-transcript proof",
    )
    .await;
    let (_, usage) = json_of(c.get(server.url("/v1/usage")).send().await.unwrap()).await;
    assert!(
        usage["usage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["jobs"].as_i64().unwrap() >= 1),
        "the keygen job is metered: {usage}"
    );
    server.stop().await;
}
