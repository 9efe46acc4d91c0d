//! The operator console: its page and assets from the binary with a policy that lets the
//! browser load nothing from elsewhere, the API it reads (`/v1/stats`, `/v1/examples`, the
//! admin's view of every tenant's jobs), and the whole console driven in headless Chromium
//! (tests/console/console.mjs with playwright-core; `scripts/browser-setup.sh` installs it,
//! `.ci/run` requires it).

use proofmill_server::config::TenantConfig;

use super::*;

fn tenant(name: &str, key: &str, admin: bool) -> TenantConfig {
    TenantConfig {
        name: name.to_owned(),
        key_sha256: Some(key_hash(key)),
        admin,
        max_queued_jobs: None,
        max_body_bytes: None,
        max_priority: None,
    }
}

fn tenants() -> Vec<TenantConfig> {
    vec![
        tenant("alice", "alice-key", false),
        tenant("bob", "bob-key", false),
        tenant("ops", "ops-key", true),
    ]
}

async fn get(server: &TestServer, path: &str, key: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// The page, script and style come from the binary, with a content security policy that
/// allows this server only; a tenant's stats show its own queue, an admin's every tenant's;
/// the `tenant` parameter of the job list is an admin's; examples exist for catalog circuits
/// only and are accepted as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_api_it_reads() {
    let server = TestServer::start(|c| c.tenants = tenants()).await;
    let c = &server.client;

    let page = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/console/console.js"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no other host in the page"
    );
    let mut assets = 0;
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = c.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        let body = r.text().await.unwrap();
        assert!(!body.contains("https://"), "{path} names no other host");
        assets += body.len();
    }
    assert!(
        assets + html.len() < 300 << 10,
        "the console is small: {assets} bytes of assets"
    );

    // One outstanding job of alice's (queued, or already on the device).
    let accepted = submit(c, &server.url, &prove_request(3), Some("alice-key")).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let (_, alice_job) = json_of(accepted).await;
    let (status, stats) = json_of(get(&server, "/v1/stats", "alice-key").await).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["tenant"], "alice");
    assert_eq!(stats["admin"], false);
    assert_eq!(stats["hours"], 24);
    let queue = stats["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 1, "{stats}");
    assert_eq!(queue[0]["tenant"], "alice");
    assert_eq!(
        queue[0]["queued"].as_i64().unwrap() + queue[0]["running"].as_i64().unwrap(),
        1
    );
    let (_, bob_stats) = json_of(get(&server, "/v1/stats", "bob-key").await).await;
    assert_eq!(
        bob_stats["queue"],
        json!([]),
        "bob sees no alice: {bob_stats}"
    );
    let (_, ops_stats) = json_of(get(&server, "/v1/stats?hours=2", "ops-key").await).await;
    assert_eq!(ops_stats["admin"], true);
    assert_eq!(ops_stats["queue"][0]["tenant"], "alice", "{ops_stats}");
    assert_problem(
        get(&server, "/v1/stats?hours=0", "ops-key").await,
        422,
        "invalid-request",
        "hours",
    )
    .await;
    assert_problem(
        get(&server, "/v1/stats?days=1", "ops-key").await,
        422,
        "invalid-request",
        "days",
    )
    .await;

    // Lists: an admin may look at another tenant's jobs or every tenant's; a tenant may not.
    let id = alice_job["id"].as_str().unwrap();
    let (_, all) = json_of(get(&server, "/v1/jobs?tenant=*", "ops-key").await).await;
    assert_eq!(all["jobs"][0]["id"], id, "{all}");
    assert_eq!(all["jobs"][0]["tenant"], "alice");
    let (_, alices) = json_of(get(&server, "/v1/jobs?tenant=alice", "ops-key").await).await;
    assert_eq!(alices["jobs"].as_array().unwrap().len(), 1, "{alices}");
    let (_, own) = json_of(get(&server, "/v1/jobs", "ops-key").await).await;
    assert_eq!(
        own["jobs"],
        json!([]),
        "an admin's own list is its own: {own}"
    );
    assert_problem(
        get(&server, "/v1/jobs?tenant=alice", "bob-key").await,
        403,
        "forbidden",
        "admin key",
    )
    .await;
    let r = c
        .delete(server.url(&format!("/v1/jobs/{id}")))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    assert!(r.status() == StatusCode::OK || r.status() == StatusCode::ACCEPTED);

    // Examples: the catalog's only; what one returns is a job the server accepts.
    let (status, example) = json_of(
        get(
            &server,
            &format!("/v1/examples/{CIRCUIT}?seed=9"),
            "bob-key",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{example}");
    assert_eq!(
        example,
        super::example(9),
        "the same example the CLI writes"
    );
    assert_problem(
        get(&server, "/v1/examples/transfer_batch/d20-b9000", "bob-key").await,
        404,
        "not-found",
        "catalog",
    )
    .await;
    assert_problem(
        get(
            &server,
            &format!("/v1/examples/{CIRCUIT}?seed=-1"),
            "bob-key",
        )
        .await,
        422,
        "invalid-request",
        "seed",
    )
    .await;
    let accepted = submit(
        c,
        &server.url,
        &json!({"type": "prove", "circuit": CIRCUIT, "input": example}),
        Some("bob-key"),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let (_, bob_job) = json_of(accepted).await;
    let r = c
        .delete(server.url(&format!("/v1/jobs/{}", bob_job["id"].as_str().unwrap())))
        .bearer_auth("bob-key")
        .send()
        .await
        .unwrap();
    assert!(r.status() == StatusCode::OK || r.status() == StatusCode::ACCEPTED);

    // Devices carry their recent telemetry for the sparklines.
    let (_, devices) = json_of(get(&server, "/v1/devices", "bob-key").await).await;
    let history = devices["devices"][0]["history"].as_array().unwrap();
    assert!(!history.is_empty(), "{devices}");
    assert!(history[0]["at_ms"].as_i64().unwrap() > 0);
    server.stop().await;
}

/// playwright-core's directory and Chromium, or `None` after a loud notice (a failure with
/// `PROOFMILL_REQUIRE_BROWSER=1`).
fn browser() -> Option<(PathBuf, PathBuf)> {
    match (
        std::env::var("PROOFMILL_PLAYWRIGHT_DIR"),
        std::env::var("PROOFMILL_CHROMIUM"),
    ) {
        (Ok(dir), Ok(chromium)) if !dir.is_empty() && !chromium.is_empty() => {
            Some((PathBuf::from(dir), PathBuf::from(chromium)))
        }
        _ => {
            assert!(
                std::env::var("PROOFMILL_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "PROOFMILL_REQUIRE_BROWSER=1 but PROOFMILL_PLAYWRIGHT_DIR or PROOFMILL_CHROMIUM is not set (scripts/browser-setup.sh)"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED the console's browser test: set PROOFMILL_PLAYWRIGHT_DIR and PROOFMILL_CHROMIUM (scripts/browser-setup.sh) ***\n"
            );
            None
        }
    }
}

/// The console in headless Chromium against a real server: sign in, see the devices, prove a
/// generated batch from the page and watch it live, verify it, open its job page and download
/// the proof, cancel a queued job, see that another tenant's page shows none of it, the admin's
/// view of every tenant, a phone-sized screen, and no request to any other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let Some((playwright, chromium)) = browser() else {
        return;
    };
    let server = TestServer::start(|c| c.tenants = tenants()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console.mjs");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .env("PROOFMILL_URL", &server.url)
        .env(
            "PROOFMILL_KEYS",
            json!({"alice": "alice-key", "bob": "bob-key", "admin": "ops-key"}).to_string(),
        )
        .env("PROOFMILL_PLAYWRIGHT_DIR", playwright)
        .env("PROOFMILL_CHROMIUM", chromium)
        .env("PROOFMILL_CIRCUIT", CIRCUIT)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(1500), command.output())
        .await
        .expect("the browser test ends within 25 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all passed"), "{stdout}");
    server.stop().await;
}
