//! What the store keeps per tenant: API keys (as SHA-256 hashes), device time used, and the
//! verifying keys of the circuits this cluster has proven.

use serde::Serialize;
use sqlx::Row;

use super::{now_ms, JobStore, StoreError};

/// Device-seconds used by one tenant on one kind of device.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// Tenant.
    pub tenant: String,
    /// `cpu` or `gpu`.
    pub device_kind: String,
    /// Seconds of device time its jobs used.
    pub device_seconds: f64,
    /// Jobs finished (any outcome) on that kind.
    pub jobs: i64,
}

/// An API key's owner.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Tenant.
    pub tenant: String,
    /// May see all usage.
    pub admin: bool,
}

impl JobStore {
    /// Adds device time to a tenant's usage.
    pub async fn add_usage(
        &self,
        tenant: &str,
        device_kind: &str,
        seconds: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage (tenant, device_kind, device_seconds, jobs) VALUES ($1, $2, $3, 1) ON CONFLICT (tenant, device_kind) DO UPDATE SET device_seconds = usage.device_seconds + excluded.device_seconds, jobs = usage.jobs + 1",
        )
        .bind(tenant)
        .bind(device_kind)
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Usage of one tenant, or of all when `None`.
    pub async fn usage(&self, tenant: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, device_kind, device_seconds, jobs FROM usage WHERE ($1 IS NULL OR tenant = $1) ORDER BY tenant, device_kind",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    tenant: r.try_get("tenant")?,
                    device_kind: r.try_get("device_kind")?,
                    device_seconds: r.try_get("device_seconds")?,
                    jobs: r.try_get("jobs")?,
                })
            })
            .collect()
    }

    /// Stores an API key's hash for a tenant.
    pub async fn add_api_key(
        &self,
        tenant: &str,
        key_hash: &str,
        admin: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (key_hash, tenant, admin, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_hash)
        .bind(tenant)
        .bind(i64::from(admin))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All stored API keys: (hash, owner).
    pub async fn api_keys(&self) -> Result<Vec<(String, KeyOwner)>, StoreError> {
        let rows = sqlx::query("SELECT key_hash, tenant, admin FROM api_keys ORDER BY created_ms")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("key_hash")?,
                    KeyOwner {
                        tenant: r.try_get("tenant")?,
                        admin: r.try_get::<i64, _>("admin")? != 0,
                    },
                ))
            })
            .collect()
    }

    /// Remembers the vk hash a circuit's keys have.
    pub async fn record_vk(&self, circuit: &str, vk_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO circuit_keys (circuit, vk_hash, updated_ms) VALUES ($1, $2, $3) ON CONFLICT (circuit) DO UPDATE SET vk_hash = excluded.vk_hash, updated_ms = excluded.updated_ms",
        )
        .bind(circuit)
        .bind(vk_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The vk hash of a circuit whose keys this appliance has used.
    pub async fn vk_hash(&self, circuit: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT vk_hash FROM circuit_keys WHERE circuit = $1")
                .bind(circuit)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
