//! Tenants and API keys. Keys are stored only as SHA-256 hashes (in the config file or the
//! job database) and compared in constant time. With no key anywhere the server runs open,
//! as the single tenant `default`, and only on loopback.

use std::sync::{Arc, RwLock};

use axum::{extract::FromRequestParts, http::request::Parts};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{config::Config, error::ApiError, store::JobStore, AppState};

/// The tenant of an open (keyless) server.
pub const OPEN_TENANT: &str = "default";

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
    /// May read every tenant's usage.
    pub admin: bool,
    /// Largest body it may send.
    pub max_body_bytes: usize,
    /// Jobs it may have queued or running.
    pub max_outstanding: u64,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    hash: [u8; 32],
    tenant: String,
    admin: bool,
}

/// The known keys.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Vec<KeyEntry>>>,
    config: Arc<Config>,
    store: JobStore,
}

impl KeyRing {
    /// Keys of the configuration and the database.
    pub async fn load(config: Arc<Config>, store: JobStore) -> Result<Self, ApiError> {
        let ring = Self {
            keys: Arc::new(RwLock::new(Vec::new())),
            config,
            store,
        };
        ring.reload().await?;
        Ok(ring)
    }

    async fn reload(&self) -> Result<(), ApiError> {
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

    /// The caller presenting `authorization` (the header's value).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
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
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <key>`".into(),
            ));
        };
        let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
        if let Some((tenant, admin)) = self.find(&digest) {
            return Ok(self.caller(&tenant, admin));
        }
        // A key added with `proofmill keys add` while the server runs.
        self.reload().await?;
        match self.find(&digest) {
            Some((tenant, admin)) => Ok(self.caller(&tenant, admin)),
            None => Err(ApiError::Unauthorized("unknown API key".into())),
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
        }
    }
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
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
        state.keys.authenticate(header).await
    }
}
