//! API keys, tenant isolation and limits, fair sharing of devices, refusals at start.

use super::*;

use proofmill_server::config::TenantConfig;

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
        max_priority: None,
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
    // The key ring is refreshed in the background (authentication never reads the database):
    // the new key works within the refresh period.
    let start = Instant::now();
    loop {
        let r = c
            .get(server.url("/v1/jobs"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            start.elapsed() < proofmill_server::auth::KEY_REFRESH * 3,
            "the key added by `proofmill keys add` never worked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** no_proving_worker_is_refused_with_the_reason: a GPU is usable here, so the no-GPU half does not apply ***\n"
        );
        return;
    }
    config.gpu_workers = true;
    let err = refused_at_start(config).await;
    assert!(
        err.contains("no proving device") && err.contains("cpu_workers is 0"),
        "{err}"
    );
}

/// A tenant entry with key `key`.
fn tenant_with_key(name: &str, key: &str) -> TenantConfig {
    TenantConfig {
        name: name.to_owned(),
        key_sha256: Some(key_hash(key)),
        admin: false,
        max_queued_jobs: None,
        max_body_bytes: None,
        max_priority: None,
    }
}

/// Tenants share the device fairly: tenant A queues 50 jobs (at its highest priority), then
/// tenant B queues one; B's job is among the next jobs started, ahead of A's queue. And a
/// priority beyond the tenant's bound is refused, naming the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_flood_does_not_delay_another_tenants_job() {
    let server = TestServer::start(|c| {
        c.tenants = vec![
            tenant_with_key("flood", "flood-key"),
            tenant_with_key("other", "other-key"),
        ];
        c.max_priority = 5;
    })
    .await;
    let c = &server.client;
    let base = server.url.clone();
    let mut flood = Vec::new();
    for seed in 0..50 {
        let mut body = prove_request(seed);
        body["priority"] = json!(5);
        let (status, accepted) = json_of(submit(c, &base, &body, Some("flood-key")).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        flood.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let mut greedy = prove_request(99);
    greedy["priority"] = json!(2_147_483_647);
    assert_problem(
        submit(c, &base, &greedy, Some("other-key")).await,
        422,
        "invalid-request",
        "-5..=5",
    )
    .await;
    let (_, accepted) =
        json_of(submit(c, &base, &prove_request(77), Some("other-key")).await).await;
    let other = accepted["id"].as_str().unwrap().to_owned();
    let view = |id: String, key: &'static str| {
        let c = c.clone();
        let url = server.url(&format!("/v1/jobs/{id}"));
        async move {
            let r = c.get(url).bearer_auth(key).send().await.unwrap();
            json_of(r).await.1
        }
    };
    // The device holds the flood's first two jobs (one proving, one prepared); cancelling
    // them frees it at their next stage boundary.
    let start = Instant::now();
    while view(flood[1].clone(), "flood-key").await["status"] != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the flood never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &flood[..2] {
        let r = c
            .delete(server.url(&format!("/v1/jobs/{id}")))
            .bearer_auth("flood-key")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let start = Instant::now();
    loop {
        let mine = view(other.clone(), "other-key").await;
        if mine["status"] != "queued" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "tenant other's job never started: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Started: the flood's next jobs are not all ahead of it. At most one of them (the
    // device's second slot) started too.
    let mut started_of_flood = 0;
    for id in &flood[2..] {
        if view(id.clone(), "flood-key").await["status"] != "queued" {
            started_of_flood += 1;
        }
    }
    assert!(
        started_of_flood <= 1,
        "{started_of_flood} of the flood's queued jobs started before or with tenant other's one"
    );
    for id in flood.iter().chain([&other]) {
        let key = if id == &other {
            "other-key"
        } else {
            "flood-key"
        };
        cancel_as(&server, id, key).await;
    }
    server.stop().await;
}

/// Cancels job `id` with tenant key `key`, whatever its state (clean-up).
async fn cancel_as(server: &TestServer, id: &str, key: &str) {
    let _ = server
        .client
        .delete(server.url(&format!("/v1/jobs/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
}

/// Failed authentication is cheap and limited: past the per-minute limit one address gets
/// 429 with Retry-After, while a valid key still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_rate_limited() {
    let server = TestServer::start(|c| {
        c.tenants = vec![tenant_with_key("alice", "alice-key")];
        c.max_auth_failures_per_minute = 3;
    })
    .await;
    let c = &server.client;
    for _ in 0..3 {
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
    }
    let r = c
        .get(server.url("/v1/jobs"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_problem(r, 429, "too-many-auth-failures", "more than 3 a minute").await;
    let r = c
        .get(server.url("/v1/jobs"))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

/// Beyond loopback: the development SRS is refused unless the operator allows it, and
/// `/metrics` wants an admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_dev_srs_is_refused_and_metrics_need_an_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.tenants = vec![
        tenant_with_key("alice", "alice-key"),
        TenantConfig {
            admin: true,
            ..tenant_with_key("ops", "ops-key")
        },
    ];
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = proofmill_server::run(listener, config.clone(), async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("development SRS") && err.contains("allow_development_srs"),
        "{err}"
    );

    config.allow_development_srs = true;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(proofmill_server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::new();
    wait_until_ready(&c, &base).await;
    assert_problem(
        c.get(format!("{base}/metrics")).send().await.unwrap(),
        401,
        "unauthorized",
        "API key",
    )
    .await;
    assert_problem(
        c.get(format!("{base}/metrics"))
            .bearer_auth("alice-key")
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
        "admin key",
    )
    .await;
    let r = c
        .get(format!("{base}/metrics"))
        .bearer_auth("ops-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("proofmill_"));
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A tenant may hold `max_event_streams_per_tenant` event streams on a node; one more is a
/// 429, and closing one frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_tenant() {
    let server = TestServer::start(|c| {
        c.tenants = vec![
            tenant_with_key("alice", "alice-key"),
            tenant_with_key("bob", "bob-key"),
        ];
        c.max_event_streams_per_tenant = 2;
    })
    .await;
    let c = &server.client;
    let (_, accepted) =
        json_of(submit(c, &server.url, &prove_request(3), Some("alice-key")).await).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    let open = |key: &'static str| {
        let c = c.clone();
        let url = server.url(&format!("/v1/jobs/{id}/events"));
        async move { c.get(url).bearer_auth(key).send().await.unwrap() }
    };
    let first = open("alice-key").await;
    let second = open("alice-key").await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_problem(
        open("alice-key").await,
        429,
        "too-busy",
        "max_event_streams_per_tenant",
    )
    .await;
    // Another tenant is not affected (and sees no stream of alice's job: 404).
    assert_eq!(open("bob-key").await.status(), StatusCode::NOT_FOUND);
    drop(first);
    let start = Instant::now();
    loop {
        let r = open("alice-key").await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the closed stream's place never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(second);
    let _ = c
        .delete(server.url(&format!("/v1/jobs/{id}")))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    server.stop().await;
}

/// The node's host memory bounds its workers together, not each one alone: with two CPU
/// workers and host room for one proof (keygen included) but not two, two jobs run one
/// after the other, where each idle worker would otherwise take one at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_memory_is_shared_by_the_workers() {
    let prover = proofmill_prover::Prover::new(&shared_data_dir());
    let (dims, _) = prover.circuit_dims(&proofmill_prover::ProofCircuit::parse(CIRCUIT).unwrap());
    let proof = proofmill_prover::memory::MemoryNeed::estimate(&dims, false).host_bytes;
    let first = proofmill_prover::memory::MemoryNeed::estimate(&dims, true).host_bytes;
    assert!(
        first < 2 * proof,
        "room for one proof with keygen but not two proofs"
    );
    let room = (first.max(proof) + 2 * proof) / 2;
    let server = TestServer::start(|c| {
        c.cpu_workers = 2;
        c.cpu_memory_bytes = Some(room);
    })
    .await;
    let c = &server.client;
    let mut ids = Vec::new();
    for seed in [31, 32] {
        let (status, accepted) =
            json_of(submit(c, &server.url, &prove_request(seed), None).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let mut spans = Vec::new();
    for id in &ids {
        let view = wait_for(c, &server.url, id, Duration::from_secs(600), terminal).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        let history = view["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{view}");
        // RFC 3339 in UTC with milliseconds: ordered as strings
        let span = |key: &str| history[0][key].as_str().unwrap().to_owned();
        spans.push((span("started"), span("ended")));
    }
    spans.sort();
    assert!(
        spans[1].0 >= spans[0].1,
        "the second proof started before the first ended: {spans:?}"
    );
    server.stop().await;
}

/// Two jobs on a node with two idle workers run at once, one on each, not one behind the
/// other on the first worker (whose second place takes a job only when no device is idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_to_idle_workers_first() {
    let server = TestServer::start(|c| c.cpu_workers = 2).await;
    let c = &server.client;
    let mut ids = Vec::new();
    for seed in [51, 52] {
        let (status, accepted) =
            json_of(submit(c, &server.url, &prove_request(seed), None).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let mut devices = Vec::new();
    let mut spans = Vec::new();
    for id in &ids {
        let view = wait_for(c, &server.url, id, Duration::from_secs(600), terminal).await;
        assert_eq!(view["status"], "succeeded", "{view}");
        devices.push(view["device"].as_str().unwrap().to_owned());
        let history = &view["history"][0];
        let span = |key: &str| history[key].as_str().unwrap().to_owned();
        spans.push((span("started"), span("ended")));
    }
    assert_ne!(devices[0], devices[1], "both jobs ran on {}", devices[0]);
    spans.sort();
    assert!(
        spans[1].0 < spans[0].1,
        "the second proof started only after the first ended: {spans:?}"
    );
    server.stop().await;
}

/// A large job is not kept waiting by a stream of smaller ones. The node has host room for
/// two small proofs, or one large proof, not a large one beside a small one. Tenant small's
/// first two jobs hold the worker (one proving, one prepared), tenant large queues one job,
/// then small two more. When small's first proof ends, its third would fit beside its
/// second, but the large job, first to find no room, keeps its place: it starts next, when
/// the second ends, and small's later jobs wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_job_is_not_kept_waiting_by_smaller_ones() {
    const SMALL: &str = "rollup/d8-t2-e1-c1";
    // Keys first, so that every job needs a proof's memory, not keygen's.
    let prover = std::sync::Arc::new(proofmill_prover::Prover::new(&shared_data_dir()));
    let need = |name: &'static str| {
        let prover = prover.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let circuit = proofmill_circuits::lookup(name).unwrap();
                prover
                    .keys(&circuit, proofmill_prover::KeySource::Generate, &|_| {})
                    .unwrap();
                let parsed = proofmill_prover::ProofCircuit::parse(name).unwrap();
                let (dims, has_key) = prover.circuit_dims(&parsed);
                assert!(has_key, "{name}: keys just made");
                proofmill_prover::memory::MemoryNeed::estimate(&dims, false).host_bytes
            })
            .await
            .unwrap()
        }
    };
    let (small, large) = (need(SMALL).await, need(CIRCUIT).await);
    assert!(large > small, "{CIRCUIT} needs more than {SMALL}");
    // 2 small <= room < large + small
    let room = small + (small + large) / 2;
    let server = TestServer::start(|c| {
        c.tenants = vec![
            tenant_with_key("small", "small-key"),
            tenant_with_key("large", "large-key"),
        ];
        c.cpu_memory_bytes = Some(room);
    })
    .await;
    let c = &server.client;
    let base = &server.url;
    let small_job = |seed: u64| {
        let body = json!({
            "type": "prove",
            "circuit": SMALL,
            "input": proofmill_circuits::lookup(SMALL).unwrap().example_input(seed),
        });
        async move {
            let (status, accepted) = json_of(submit(c, base, &body, Some("small-key")).await).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
            accepted["id"].as_str().unwrap().to_owned()
        }
    };
    let view = |id: String, key: &'static str| {
        let url = server.url(&format!("/v1/jobs/{id}"));
        async move {
            let r = c.get(url).bearer_auth(key).send().await.unwrap();
            json_of(r).await.1
        }
    };
    let first = [small_job(1).await, small_job(2).await];
    let start = Instant::now();
    while view(first[1].clone(), "small-key").await["status"] != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "small's jobs never started"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, accepted) =
        json_of(submit(c, &server.url, &prove_request(41), Some("large-key")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let large_id = accepted["id"].as_str().unwrap().to_owned();
    let later = [small_job(3).await, small_job(4).await];
    assert_eq!(
        view(first[0].clone(), "small-key").await["status"],
        "running",
        "small's first proof ended before the rest was queued; the test cannot tell"
    );
    let start = Instant::now();
    loop {
        let large = view(large_id.clone(), "large-key").await;
        if large["status"] != "queued" {
            assert_eq!(large["status"], "running", "{large}");
            break;
        }
        for id in &later {
            let small = view(id.clone(), "small-key").await;
            assert_eq!(
                small["status"], "queued",
                "a later small job started while the large one waited: {small}"
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the large job never started: {large}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // It started once small's first jobs were done, and they were proved.
    for id in &first {
        let start = Instant::now();
        let done = loop {
            let done = view(id.clone(), "small-key").await;
            if terminal(&done) || start.elapsed() > Duration::from_secs(60) {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    for id in &later {
        cancel_as(&server, id, "small-key").await;
    }
    cancel_as(&server, &large_id, "large-key").await;
    server.stop().await;
}

/// A job that no device of any live node can hold fails at once, saying so (here the lone
/// node's CPU worker may prove in 1 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_device_can_hold_fails_saying_so() {
    let server = TestServer::start(|c| c.cpu_memory_bytes = Some(1 << 20)).await;
    let c = &server.client;
    let (_, accepted) = json_of(submit(c, &server.url, &prove_request(4), None).await).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    let view = wait_for(c, &server.url, &id, Duration::from_secs(60), terminal).await;
    assert_eq!(view["status"], "failed", "{view}");
    let error = view["error"].as_str().unwrap();
    assert!(
        error.contains("no node of this cluster can run it") && error.contains("GiB"),
        "{view}"
    );
    server.stop().await;
}
