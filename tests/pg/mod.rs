//! The throwaway PostgreSQL server of the cluster-mode tests (scripts/pg-setup.sh starts it;
//! scripts/test and .ci/run export its URL). Each test gets a database of its own.

use std::{path::PathBuf, process::Command};

use sqlx::{Connection, Executor, PgConnection};

/// The admin URL of the test server, or `None` (after a loud notice) when none is set up.
/// With `PROOFMILL_REQUIRE_PG=1` (CI) a missing server fails the test instead.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var("PROOFMILL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("PROOFMILL_REQUIRE_PG").as_deref() != Ok("1"),
                "{test}: PROOFMILL_REQUIRE_PG=1 but PROOFMILL_TEST_DATABASE_URL is not set (scripts/pg-setup.sh)"
            );
            eprintln!(
                "\n*** SKIPPED {test}: no PostgreSQL test server (set PROOFMILL_TEST_DATABASE_URL; scripts/pg-setup.sh starts one) ***\n"
            );
            None
        }
    }
}

/// Creates a fresh database for one test and returns its URL.
pub async fn fresh_database(admin: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{:016x}", rand::random::<u64>());
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("connecting to the test PostgreSQL");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("CREATE DATABASE");
    let (base, _) = admin.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

/// Runs the server's control script: `stop`, `start` or `restart`.
#[allow(dead_code)] // not every test binary restarts the server
pub fn ctl(action: &str) {
    let script = PathBuf::from(
        std::env::var("PROOFMILL_TEST_PG_CTL")
            .expect("PROOFMILL_TEST_PG_CTL names scripts/pg-setup.sh's ctl script"),
    );
    let status = Command::new(&script)
        .arg(action)
        .status()
        .expect("running the PostgreSQL control script");
    assert!(status.success(), "{} {action}: {status}", script.display());
}
