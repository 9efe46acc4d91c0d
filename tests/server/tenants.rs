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
