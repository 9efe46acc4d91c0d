//! The server's configuration: a TOML file whose every key has a default, so that
//! `proofmill serve` with no file runs a loopback-only appliance under `./proofmill-data`.
//!
//! This module only describes and loads settings: it reads the configuration file and the
//! tenants file it names, and nothing else.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, naming the key.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Server settings (see docs/operations.md for the file format).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Without API keys only loopback addresses are accepted.
    pub listen: SocketAddr,
    /// SRS files and proving keys (`{data_dir}/srs`, `{data_dir}/keys`).
    pub data_dir: PathBuf,
    /// The SQLite job database; default `{data_dir}/jobs.db`. Unused with `database_url`.
    pub database: Option<PathBuf>,
    /// A PostgreSQL job database shared by the nodes of a cluster,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (env `PROOFMILL_DATABASE_URL` overrides
    /// it, so the password can stay out of the file).
    pub database_url: Option<String>,
    /// This node's name in the cluster: what jobs' `node`, the attempt history, `/v1/devices`
    /// and the metrics call it. Default: the host name (env `PROOFMILL_NODE_ID` overrides it).
    /// Two live nodes must not share one.
    pub node_id: Option<String>,
    /// Where other nodes and operators reach this node's API, shown in `/v1/devices` (env
    /// `PROOFMILL_ADVERTISE_URL` overrides it).
    pub advertise_url: Option<String>,
    /// Seconds a claimed job's lease lasts without a heartbeat; heartbeats come every third
    /// of it. A node that stops heartbeating (crash, partition) loses its jobs to the other
    /// nodes after this long. Liveness comes from heartbeats only: a proof may run for hours.
    pub lease_secs: u64,
    /// Retryable failures (a device error, the prover running out of memory) after which a
    /// job is given up and dead-lettered, its attempt history kept. Lease expiries and
    /// shutdowns do not count. `max_attempts`, its earlier name, is still read.
    #[serde(alias = "max_attempts")]
    pub max_failures: u32,
    /// Deaths (an attempt's lease expired, or its node restarted while running it) after
    /// which a job is dead-lettered: a job that kills the nodes it runs on must not cycle
    /// through the cluster forever.
    pub max_deaths: u32,
    /// The largest `priority` (in absolute value) a tenant may give its jobs, unless its own
    /// entry says otherwise. Priority orders a tenant's own jobs; tenants share the devices
    /// fairly whatever their priorities.
    pub max_priority: i32,
    /// Open `GET /v1/jobs/{id}/events` streams one tenant may hold on this node (429 above).
    pub max_event_streams_per_tenant: usize,
    /// `POST /v1/verify` calls verified at once on this node; more wait, briefly, then get a
    /// 429.
    pub max_concurrent_verifications: usize,
    /// Of those, how many one tenant may hold.
    pub max_concurrent_verifications_per_tenant: usize,
    /// Failed authentications one client address may make per minute before it gets 429s.
    pub max_auth_failures_per_minute: u32,
    /// Lets a server that listens beyond loopback prove with the development SRS, whose tau is
    /// public (anyone can forge its proofs). Without it such a server refuses to start until
    /// ceremony SRS files are in `{data_dir}/srs`.
    pub allow_development_srs: bool,
    /// A TOML file of `[[tenants]]` entries added to `tenants` (e.g. mounted from a
    /// Kubernetes Secret, so that key hashes stay out of the main file).
    pub tenants_file: Option<PathBuf>,
    /// Where finished proofs are written; default `{data_dir}/proofs`. Unused when
    /// `artifacts_url` names a bucket.
    pub proofs_dir: Option<PathBuf>,
    /// An S3-compatible bucket for finished proofs, `s3://bucket[/prefix]` (nodes of a
    /// cluster share it); credentials and endpoint from `AWS_*` variables and
    /// `artifacts_options`.
    pub artifacts_url: Option<String>,
    /// object_store S3 options for `artifacts_url`, e.g. `aws_endpoint`, `aws_region`,
    /// `aws_allow_http`; they override the environment.
    pub artifacts_options: BTreeMap<String, String>,
    /// Largest request body accepted from anyone, in bytes.
    pub max_body_bytes: usize,
    /// Jobs a tenant may have queued or running at once (unless its own entry says otherwise).
    pub max_queued_jobs_per_tenant: u64,
    /// Seconds SIGTERM waits for running jobs before re-queueing them.
    pub shutdown_grace_secs: u64,
    /// Number of CPU proving workers (each proves one job at a time on all cores). May be 0
    /// when GPU workers prove everything.
    pub cpu_workers: usize,
    /// Host memory this node's proofs may use at once, in bytes (default: all of it, or the
    /// process's cgroup limit in a container or a systemd unit with `MemoryMax`). Every
    /// job's estimated host memory counts against it, a GPU worker's too (its polynomials
    /// live in host memory while the GPU computes); a job that fits no device of this node
    /// is left to a node it fits.
    pub cpu_memory_bytes: Option<u64>,
    /// One proving worker per usable GPU, each with the engine on its own GPU (when the
    /// proving engine is `auto` or `cuda`). CPU workers then prove with the CPU engine.
    pub gpu_workers: bool,
    /// The proving engine (`--backend`); not read from the file.
    #[serde(skip)]
    pub engine: proofmill_prover::engine::Engine,
    /// Tenants and their API keys (more can be added with `proofmill keys add`).
    pub tenants: Vec<TenantConfig>,
}

/// One tenant of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant's name (jobs and usage are recorded under it).
    pub name: String,
    /// SHA-256 of the API key, hex (`printf %s KEY | sha256sum`). Keys are never stored in clear.
    pub key_sha256: Option<String>,
    /// May read every tenant's usage.
    #[serde(default)]
    pub admin: bool,
    /// Overrides `max_queued_jobs_per_tenant`.
    pub max_queued_jobs: Option<u64>,
    /// Overrides `max_priority`.
    pub max_priority: Option<i32>,
    /// A lower request-size limit for this tenant, in bytes.
    pub max_body_bytes: Option<usize>,
}

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("proofmill-data"),
            database: None,
            database_url: None,
            node_id: None,
            advertise_url: None,
            lease_secs: 30,
            max_failures: 3,
            max_deaths: 3,
            max_priority: 10,
            max_event_streams_per_tenant: 16,
            max_concurrent_verifications: 4,
            max_concurrent_verifications_per_tenant: 2,
            max_auth_failures_per_minute: 30,
            allow_development_srs: false,
            tenants_file: None,
            proofs_dir: None,
            artifacts_url: None,
            artifacts_options: BTreeMap::new(),
            max_body_bytes: 8 << 20,
            max_queued_jobs_per_tenant: 1000,
            shutdown_grace_secs: 30,
            cpu_workers: 1,
            cpu_memory_bytes: None,
            gpu_workers: true,
            engine: proofmill_prover::engine::Engine::Auto,
            tenants: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a TOML configuration file; keys it does not set keep their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(file) = config.tenants_file.clone() {
            let file = if file.is_relative() {
                path.parent().unwrap_or(Path::new(".")).join(file)
            } else {
                file
            };
            config.tenants.extend(load_tenants(&file)?);
        }
        config.check()?;
        Ok(config)
    }

    /// Applies `PROOFMILL_DATABASE_URL`, `PROOFMILL_NODE_ID` and `PROOFMILL_ADVERTISE_URL`
    /// (secrets and per-pod values that do not belong in a shared file).
    pub fn apply_env(&mut self) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(url) = var("PROOFMILL_DATABASE_URL") {
            self.database_url = Some(url);
        }
        if let Some(node) = var("PROOFMILL_NODE_ID") {
            self.node_id = Some(node);
        }
        if let Some(url) = var("PROOFMILL_ADVERTISE_URL") {
            self.advertise_url = Some(url);
        }
    }

    /// This node's id: `node_id`, else the host name, else `proofmill`.
    pub fn node(&self) -> String {
        self.node_id
            .clone()
            .or_else(proofmill_accel::host::hostname)
            .unwrap_or_else(|| "proofmill".to_owned())
    }

    /// How long a lease lasts without a heartbeat.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// Checks values that parse but cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.cpu_workers == 0 && !self.gpu_workers {
            return Err(ConfigError::Invalid(
                "cpu_workers is 0 and gpu_workers is false: at least one worker is needed to run jobs".into(),
            ));
        }
        if self.lease_secs < 3 {
            return Err(ConfigError::Invalid(format!(
                "lease_secs is {}: at least 3 (heartbeats come every third of it)",
                self.lease_secs
            )));
        }
        if self.max_failures == 0 {
            return Err(ConfigError::Invalid(
                "max_failures is 0: at least 1 is needed to run a job".into(),
            ));
        }
        if self.max_deaths == 0 {
            return Err(ConfigError::Invalid(
                "max_deaths is 0: at least 1 is needed to run a job".into(),
            ));
        }
        if self.max_priority < 0
            || self
                .tenants
                .iter()
                .any(|t| t.max_priority.is_some_and(|p| p < 0))
        {
            return Err(ConfigError::Invalid(
                "max_priority must be 0 or more (it bounds |priority|)".into(),
            ));
        }
        for (name, value) in [
            (
                "max_event_streams_per_tenant",
                self.max_event_streams_per_tenant,
            ),
            (
                "max_concurrent_verifications",
                self.max_concurrent_verifications,
            ),
            (
                "max_concurrent_verifications_per_tenant",
                self.max_concurrent_verifications_per_tenant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{name} is 0: at least 1 is needed"
                )));
            }
        }
        if let Some(node) = &self.node_id {
            if node.is_empty() || node.len() > 64 || node.chars().any(|c| c.is_control()) {
                return Err(ConfigError::Invalid(format!(
                    "node_id {node:?}: 1 to 64 printable characters"
                )));
            }
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid(format!(
                    "database_url {:?}: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                    crate::store::redact_url(url)
                )));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(format!(
                "max_body_bytes is {}: at least 1024 is needed for any job",
                self.max_body_bytes
            )));
        }
        for t in &self.tenants {
            if let Some(hash) = &t.key_sha256 {
                if hash.len() != 64 || hex::decode(hash).is_err() {
                    return Err(ConfigError::Invalid(format!(
                        "tenant {:?}: key_sha256 must be 64 hex digits (printf %s KEY | sha256sum)",
                        t.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The job database file.
    pub fn database_path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jobs.db"))
    }

    /// The directory of finished proofs.
    pub fn proofs_path(&self) -> PathBuf {
        self.proofs_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("proofs"))
    }

    /// How long shutdown waits for running jobs.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The configured tenant of this name, if any.
    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.name == name)
    }
}

/// A setting's value as `Debug` shows it: credentials never appear in logs or panics.
fn secret_option(key: &str, value: &str) -> String {
    let key = key.to_ascii_lowercase();
    let secret = [
        "secret",
        "token",
        "password",
        "credential",
        "access_key",
        "session",
    ]
    .iter()
    .any(|word| key.contains(word));
    if secret {
        "***".to_owned()
    } else {
        value.to_owned()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: BTreeMap<&str, String> = self
            .artifacts_options
            .iter()
            .map(|(k, v)| (k.as_str(), secret_option(k, v)))
            .collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::store::redact_url),
            )
            .field("node_id", &self.node_id)
            .field("advertise_url", &self.advertise_url)
            .field("lease_secs", &self.lease_secs)
            .field("max_failures", &self.max_failures)
            .field("max_deaths", &self.max_deaths)
            .field("max_priority", &self.max_priority)
            .field(
                "max_event_streams_per_tenant",
                &self.max_event_streams_per_tenant,
            )
            .field(
                "max_concurrent_verifications",
                &self.max_concurrent_verifications,
            )
            .field(
                "max_concurrent_verifications_per_tenant",
                &self.max_concurrent_verifications_per_tenant,
            )
            .field(
                "max_auth_failures_per_minute",
                &self.max_auth_failures_per_minute,
            )
            .field("allow_development_srs", &self.allow_development_srs)
            .field("tenants_file", &self.tenants_file)
            .field("proofs_dir", &self.proofs_dir)
            .field("artifacts_url", &self.artifacts_url)
            .field("artifacts_options", &options)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "max_queued_jobs_per_tenant",
                &self.max_queued_jobs_per_tenant,
            )
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("cpu_workers", &self.cpu_workers)
            .field("cpu_memory_bytes", &self.cpu_memory_bytes)
            .field("gpu_workers", &self.gpu_workers)
            .field("engine", &self.engine)
            .field("tenants", &self.tenants)
            .finish()
    }
}

/// The `[[tenants]]` of a tenants file.
fn load_tenants(path: &Path) -> Result<Vec<TenantConfig>, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TenantsFile {
        #[serde(default)]
        tenants: Vec<TenantConfig>,
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: TenantsFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(file.tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\n[[tenants]]\nname = \"a\"\nkey_sha256 = \"00\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.database_path(), PathBuf::from("proofmill-data/jobs.db"));
        assert!(c.check().unwrap_err().to_string().contains("64 hex digits"));
        let err = toml::from_str::<Config>("lisen = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn gpu_workers_default_on_and_cpu_workers_may_be_zero_with_them() {
        let c: Config = toml::from_str("cpu_workers = 0").unwrap();
        assert!(c.gpu_workers);
        c.check().unwrap();
        let c: Config = toml::from_str("cpu_workers = 0\ngpu_workers = false").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("at least one worker"), "{err}");
        // The engine comes from --backend, never from the file.
        assert!(toml::from_str::<Config>("engine = \"cpu\"").is_err());
    }

    #[test]
    fn cluster_keys_are_checked_and_tenants_come_from_their_file() {
        let c: Config = toml::from_str("database_url = \"mysql://u:secret@h/db\"").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("postgres://") && !err.contains("secret"),
            "{err}"
        );
        let c: Config = toml::from_str("lease_secs = 1").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("lease_secs"));
        let c: Config = toml::from_str("max_attempts = 0").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("max_failures"));
        let c: Config = toml::from_str("max_attempts = 5").unwrap();
        assert_eq!(c.max_failures, 5, "the earlier name is still read");
        let c: Config = toml::from_str("max_deaths = 0").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("max_deaths"));

        let dir = tempfile::tempdir().unwrap();
        let hash = "ab".repeat(32);
        std::fs::write(
            dir.path().join("tenants.toml"),
            format!("[[tenants]]\nname = \"b\"\nkey_sha256 = \"{hash}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("main.toml"),
            format!("tenants_file = \"tenants.toml\"\n[[tenants]]\nname = \"a\"\nkey_sha256 = \"{hash}\"\n"),
        )
        .unwrap();
        let c = Config::load(&dir.path().join("main.toml")).unwrap();
        let names: Vec<&str> = c.tenants.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        std::fs::write(
            dir.path().join("tenants.toml"),
            "[[tenants]]\nnme = \"x\"\n",
        )
        .unwrap();
        let err = Config::load(&dir.path().join("main.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tenants.toml") && err.contains("nme"), "{err}");
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    /// `Debug` of a configuration (what a log line or a panic would print) shows no password,
    /// secret key or token.
    #[test]
    fn debug_hides_credentials() {
        let c: Config = toml::from_str(
            "database_url = \"postgres://pm:hunter2@db:5432/pm\"\nartifacts_url = \"s3://b/p\"\n[artifacts_options]\naws_secret_access_key = \"wJalrXUtnFEMI\"\naws_access_key_id = \"AKIAEXAMPLE\"\naws_session_token = \"tok3n\"\naws_region = \"eu-west-1\"\n",
        )
        .unwrap();
        let text = format!("{c:?}");
        for secret in ["hunter2", "wJalrXUtnFEMI", "AKIAEXAMPLE", "tok3n"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("eu-west-1") && text.contains("db:5432"),
            "{text}"
        );
    }
}
