//! The server's configuration: a TOML file whose every key has a default, so that
//! `proofmill serve` with no file runs a loopback-only appliance under `./proofmill-data`.
//!
//! This module only describes and loads settings; it opens no files but the config itself.

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Without API keys only loopback addresses are accepted.
    pub listen: SocketAddr,
    /// SRS files and proving keys (`{data_dir}/srs`, `{data_dir}/keys`).
    pub data_dir: PathBuf,
    /// The SQLite job database; default `{data_dir}/jobs.db`.
    pub database: Option<PathBuf>,
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
            proofs_dir: None,
            artifacts_url: None,
            artifacts_options: BTreeMap::new(),
            max_body_bytes: 8 << 20,
            max_queued_jobs_per_tenant: 1000,
            shutdown_grace_secs: 30,
            cpu_workers: 1,
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
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.cpu_workers == 0 && !self.gpu_workers {
            return Err(ConfigError::Invalid(
                "cpu_workers is 0 and gpu_workers is false: at least one worker is needed to run jobs".into(),
            ));
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
}
