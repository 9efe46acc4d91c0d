//! The whole API, property-based, from the server's own `/openapi.json`: schemathesis (PyPI;
//! `scripts/schemathesis-setup.sh` installs it, `.ci/run` requires it) generates requests from
//! the document, valid and invalid, and checks every answer: no 5xx, every status, content type,
//! header and body as documented, schema-valid data accepted and schema-invalid data refused
//! (with the allowance in `tests/schemathesis.toml`).

use super::*;

/// schemathesis's executable, or `None` after a loud notice (a failure with
/// `PROOFMILL_REQUIRE_SCHEMATHESIS=1`).
fn schemathesis() -> Option<PathBuf> {
    match std::env::var("PROOFMILL_SCHEMATHESIS") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            assert!(
                std::env::var("PROOFMILL_REQUIRE_SCHEMATHESIS").as_deref() != Ok("1"),
                "PROOFMILL_REQUIRE_SCHEMATHESIS=1 but PROOFMILL_SCHEMATHESIS is not set (scripts/schemathesis-setup.sh)"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED the property-based API run: no schemathesis (set PROOFMILL_SCHEMATHESIS; scripts/schemathesis-setup.sh installs it) ***\n"
            );
            None
        }
    }
}

/// Every check of schemathesis on every operation for `PROOFMILL_SCHEMATHESIS_SECONDS`
/// (default 90): the run must be clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_own_openapi_document() {
    let Some(st) = schemathesis() else {
        return;
    };
    let seconds = std::env::var("PROOFMILL_SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "90".into());
    let server = TestServer::start(|c| c.max_body_bytes = 256 << 10).await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let spec = server.url("/openapi.json");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(config)
            .args([
                "--no-color",
                "run",
                &spec,
                "--checks",
                "all",
                "--max-time",
                &seconds,
            ])
            .args([
                "--suppress-health-check",
                "filter_too_much",
                "--seed",
                "20261202",
            ])
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("generated") || l.contains(" in ") && l.contains('='))
        .collect();
    eprintln!("schemathesis: {}", summary.join(" | "));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    let (_, health) = json_of(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(health["status"], "ok");
    server.stop().await;
}
