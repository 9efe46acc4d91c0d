//! The job store: every job, its state, its leases and attempt history, idempotency keys,
//! API keys, usage and the cluster's nodes. One code path over two databases:
//!
//! - SQLite (the default, one node): WAL with `synchronous=FULL`, so a job is on disk before
//!   the 202 that acknowledges it;
//! - PostgreSQL (cluster mode, `database_url = "postgres://..."`): every node of a cluster
//!   runs against the same database.
//!
//! The store holds rows, not proofs: proofs live in the artifact store and the row names
//! them. It knows nothing of HTTP or proving. Its parts:
//!
//! - [`jobs`]: submitting, reading and listing jobs (lists and polls never read a request
//!   body; [`JobStore::request`] does, once, when a job is about to run), the fair queue;
//! - [`leases`]: claims under leases, heartbeats, outcomes, retries, dead letters and
//!   re-queueing, all fenced by the attempt number;
//! - [`tenants`]: API keys, usage, the verifying keys seen;
//! - [`nodes`]: the cluster's node registry;
//! - [`stats`]: the console's aggregates (queue per tenant, hourly throughput, problems).

pub mod jobs;
pub mod leases;
pub mod nodes;
pub mod stats;
pub mod tenants;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Once},
    time::Duration,
};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool, Executor,
};

pub use crate::job::JobStatus;
pub use jobs::{Insert, JobRecord, NewJob, QueueShare};
pub use leases::{AttemptRecord, Completed, Lease, Reaped, Requeued, ResultFacts, Retried};
pub use nodes::NodeRecord;
pub use stats::{HourRow, ProblemRow, QueueRow};
pub use tenants::{KeyOwner, UsageRow};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("job database: {0}")]
    Db(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("job database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database did not answer in time.
    #[error("job database: {0}")]
    Timeout(String),
    /// The database URL is not one the store can use.
    #[error("job database URL: {0}")]
    Url(String),
    /// The directory of the SQLite file could not be made.
    #[error("job database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A store task stopped before it finished (the runtime is shutting down).
    #[error("job database task: {0}")]
    Task(String),
    /// A row holds a value this version does not understand.
    #[error("job database row of {job}: {message}")]
    Corrupt {
        /// The job (or table row) it is about.
        job: String,
        /// What is wrong with it.
        message: String,
    },
}

impl StoreError {
    /// The database cannot be reached now (restarting, network, pool exhausted): worth
    /// retrying, unlike a query or data error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                ) || e
                    .as_database_error()
                    .and_then(|d| d.code())
                    // PostgreSQL: admin shutdown, crash shutdown, cannot connect now.
                    .is_some_and(|code| matches!(&*code, "57P01" | "57P02" | "57P03"))
            }
            Self::Timeout(_) => true,
            _ => false,
        }
    }

    /// A row of `job` that cannot be read back.
    pub(crate) fn corrupt(job: &str, message: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            job: job.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Now, in Unix milliseconds (this host's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One node, one file.
    Sqlite,
    /// A cluster's shared database.
    Postgres,
}

impl Backend {
    /// The database's clock in Unix ms, as SQL.
    fn now(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Self::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` where the database has row locks: a node never waits for a
    /// row another node is claiming, it moves on.
    fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// The job database (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: AnyPool,
    backend: Backend,
    describe: Arc<str>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// A database URL with its password hidden, for logs and messages. A URL that cannot be
/// parsed is not shown at all beyond its scheme: it may hold a password where the parser
/// did not expect one.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => match url.split_once("://") {
            Some((scheme, _))
                if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                format!("{scheme}://(unparseable URL, not shown)")
            }
            _ => "(unparseable URL, not shown)".to_owned(),
        },
    }
}

impl JobStore {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
            }
        }
        let text = path
            .to_str()
            .ok_or_else(|| StoreError::Url(format!("{} is not UTF-8", path.display())))?;
        // The path travels in a URL: escape what the URL would otherwise read as syntax.
        let escaped = text
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23");
        Self::connect(&format!("sqlite://{escaped}?mode=rwc")).await
    }

    /// Connects to `postgres://...` (or `sqlite://...`) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Url(format!(
                "{}: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact_url(url)
            )));
        };
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Url(format!("{}: {e}", redact_url(url))))?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            describe: redact_url(url).into(),
        })
    }

    /// The database it runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL, password hidden.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The database's clock, Unix ms.
    pub async fn db_now_ms(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar(&format!("SELECT {}", self.backend.now()))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Closes the pool (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Executes raw SQL: for tests that must put a row into a state the API cannot (an
    /// older or damaged row).
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_and_unparseable_ones_their_contents() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/pm"),
            "postgres://u:***@db:5432/pm"
        );
        let weird = redact_url("postgres://u:se cr%et@[db/pm");
        assert!(
            !weird.contains("se cr") && weird.starts_with("postgres://"),
            "{weird}"
        );
        assert!(!redact_url("secret-text").contains("secret"));
    }

    /// An epoch job's row: its request read back whole, its input jobs, and the gas and
    /// public values recorded with its result (an older-style completion leaves them null).
    #[tokio::test]
    async fn epoch_rows_keep_their_request_gas_and_values() {
        use crate::job::{JobKind, StoredInput, StoredRequest};
        use proofmill_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fr;
        use proofmill_prover::epoch::SettledState;

        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
        let request = StoredRequest::Epoch {
            inputs: vec![
                StoredInput::Job("job_dep".into()),
                StoredInput::Proof(serde_json::json!({"format": "x"})),
            ],
            state: SettledState::genesis([
                (1, Fr::from(1), Fr::from(2), 5),
                (7, Fr::from(3), Fr::from(4), 0),
            ]),
            final_: true,
            priority: 0,
        };
        for id in ["job_epoch", "job_plain"] {
            let job = NewJob {
                id: id.into(),
                tenant: "t".into(),
                request: request.clone(),
            };
            let Insert::Created(row) = store.insert(job, None, 10).await.unwrap() else {
                panic!("not created")
            };
            assert_eq!(row.kind, JobKind::Epoch);
            assert_eq!(row.input_jobs, ["job_dep"]);
            assert_eq!((row.evm_gas, row.epoch.as_ref()), (None, None));
        }
        assert_eq!(store.request("job_epoch").await.unwrap(), Some(request));

        let attempt = store
            .claim("job_epoch", "n", "cpu", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let facts = ResultFacts {
            evm_gas: Some(412_345),
            epoch: Some(serde_json::json!({"epoch": 1, "chains": []})),
            note: Some(
                "2 engine call(s) failed on gpu0 and were computed by halo2's CPU code instead"
                    .into(),
            ),
        };
        let done = store
            .complete_with("job_epoch", attempt, Some("proofs/e.json"), "0xvk", &facts)
            .await
            .unwrap();
        assert_eq!(done, Completed::Recorded);
        let row = store.get("job_epoch").await.unwrap().unwrap();
        assert_eq!(row.status, JobStatus::Succeeded);
        assert_eq!(row.evm_gas, Some(412_345));
        assert_eq!(row.epoch, facts.epoch);
        let history = store.history("job_epoch").await.unwrap();
        assert_eq!(history.last().unwrap().detail, facts.note, "{history:?}");

        let attempt = store
            .claim("job_plain", "n", "cpu", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        store
            .complete("job_plain", attempt, Some("proofs/p.json"), "0xvk")
            .await
            .unwrap();
        let row = store.get("job_plain").await.unwrap().unwrap();
        assert_eq!((row.evm_gas, row.epoch), (None, None));
        let history = store.history("job_plain").await.unwrap();
        assert_eq!(history.last().unwrap().detail, None, "{history:?}");
        store.close().await;
    }
}
