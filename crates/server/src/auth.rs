//! Tenants and API keys. Keys are stored only as SHA-256 hashes (in the config file or the
//! job database) and compared in constant time. With no key anywhere the server runs open,
//! as the single tenant `default`, and only on loopback.
//!
//! Authentication never touches the database: the key ring is read into memory at start and
//! refreshed in the background every [`KEY_REFRESH`] (a key added with `proofmill keys add`
//! works within that time), so a wrong key costs one hash and stays a 401 while the database
//! is down. Failed attempts are counted per client address; past the configured rate they get
//! 429s until the minute is over (a valid key always passes: the limit slows down guessing,
//! not the tenants behind the same address).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    config::Config,
    error::ApiError,
    store::{JobStore, StoreError},
    AppState,
};

/// The tenant of an open (keyless) server.
pub const OPEN_TENANT: &str = "default";
/// How often the key ring is read again from the configuration and the database.
pub const KEY_REFRESH: Duration = Duration::from_secs(5);

/// SHA-256 of a key, hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key (`pm_` + 64 hex digits).
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("pm_{}", hex::encode(bytes))
}

/// The caller of a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant its jobs belong to.
    pub tenant: String,
    /// May read every tenant's usage and jobs' summaries, and `/metrics` beyond loopback.
    pub admin: bool,
    /// Largest body it may send.
    pub max_body_bytes: usize,
    /// Jobs it may have queued or running.
    pub max_outstanding: u64,
    /// The largest |priority| it may give its jobs.
    pub max_priority: i32,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    hash: [u8; 32],
    tenant: String,
    admin: bool,
}

/// The known keys, and the failed attempts of each client address.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Vec<KeyEntry>>>,
    config: Arc<Config>,
    store: JobStore,
    failures: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl KeyRing {
    /// Keys of the configuration and the database.
    pub async fn load(config: Arc<Config>, store: JobStore) -> Result<Self, StoreError> {
        let ring = Self {
            keys: Arc::new(RwLock::new(Vec::new())),
            config,
            store,
            failures: Arc::new(Mutex::new(HashMap::new())),
        };
        ring.reload().await?;
        Ok(ring)
    }

    /// Reads the keys again, until the task is aborted; a failed read keeps the keys known.
    pub async fn refresh(self) {
        loop {
            tokio::time::sleep(KEY_REFRESH).await;
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "could not refresh the API keys; keeping the known ones");
            }
        }
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let mut entries = Vec::new();
        for t in &self.config.tenants {
            if let Some(hash) = t.key_sha256.as_deref().and_then(decode_hash) {
                entries.push(KeyEntry {
                    hash,
                    tenant: t.name.clone(),
                    admin: t.admin,
                });
            }
        }
        for (hash, owner) in self.store.api_keys().await? {
            if let Some(hash) = decode_hash(&hash) {
                entries.push(KeyEntry {
                    hash,
                    tenant: owner.tenant,
                    admin: owner.admin,
                });
            }
        }
        if let Ok(mut keys) = self.keys.write() {
            *keys = entries;
        }
        Ok(())
    }

    /// True when no key exists: the server is open (loopback only).
    pub fn is_open(&self) -> bool {
        self.keys.read().map(|k| k.is_empty()).unwrap_or(false)
    }

    fn find(&self, hash: &[u8; 32]) -> Option<(String, bool)> {
        let keys = self.keys.read().ok()?;
        let mut found = None;
        // Compare against every key, in constant time each, whatever matches.
        for entry in keys.iter() {
            if bool::from(entry.hash.ct_eq(hash)) {
                found = Some((entry.tenant.clone(), entry.admin));
            }
        }
        found
    }

    /// Counts a failed attempt from `client`; the error to answer with (429 past the limit).
    fn failed(&self, client: Option<IpAddr>, error: ApiError) -> ApiError {
        let Some(ip) = client else {
            return error;
        };
        let limit = self.config.max_auth_failures_per_minute;
        let Ok(mut failures) = self.failures.lock() else {
            return error;
        };
        let now = Instant::now();
        if failures.len() > 10_000 {
            // Forget finished windows rather than grow without bound under a scan.
            failures.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
        }
        let entry = failures.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > limit {
            let retry = 60u64
                .saturating_sub(now.duration_since(entry.0).as_secs())
                .max(1);
            metrics::counter!("proofmill_auth_throttled_total").increment(1);
            return ApiError::TooManyAuthFailures {
                limit,
                retry_after_secs: retry,
            };
        }
        error
    }

    /// The caller presenting `authorization` (the header's value) from `client`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(self.caller(OPEN_TENANT, true));
        }
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized(
                "this server needs an API key: send `Authorization: Bearer <key>`".into(),
            ));
        };
        let Some(key) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Err(self.failed(
                client,
                ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into()),
            ));
        };
        let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
        match self.find(&digest) {
            Some((tenant, admin)) => Ok(self.caller(&tenant, admin)),
            None => Err(self.failed(
                client,
                ApiError::Unauthorized(format!(
                    "unknown API key (a key added with `proofmill keys add` works within {} s)",
                    KEY_REFRESH.as_secs()
                )),
            )),
        }
    }

    fn caller(&self, tenant: &str, admin: bool) -> Caller {
        let own = self.config.tenant(tenant);
        Caller {
            tenant: tenant.to_owned(),
            admin,
            max_body_bytes: own
                .and_then(|t| t.max_body_bytes)
                .map_or(self.config.max_body_bytes, |n| {
                    n.min(self.config.max_body_bytes)
                }),
            max_outstanding: own
                .and_then(|t| t.max_queued_jobs)
                .unwrap_or(self.config.max_queued_jobs_per_tenant),
            max_priority: own
                .and_then(|t| t.max_priority)
                .unwrap_or(self.config.max_priority),
        }
    }
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// The address a request came from, when the server recorded it.
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::Unauthorized("the Authorization header is not ASCII".into())
                })
            })
            .transpose()?;
        state.keys.authenticate(header, client_addr(parts))
    }
}
