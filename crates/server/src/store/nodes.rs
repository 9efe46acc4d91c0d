//! The cluster's node registry: each node's devices and heartbeat, so that any node can show
//! the whole cluster and tell live nodes from gone ones.

use sqlx::Row;

use super::{JobStore, StoreError};

/// A node of the cluster, as registered in the store.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    /// Its `node_id`.
    pub node_id: String,
    /// Where its API is reachable, when configured.
    pub advertise_url: Option<String>,
    /// proofmill version it runs.
    pub version: String,
    /// Unix ms.
    pub started_ms: i64,
    /// Last heartbeat, Unix ms (database clock).
    pub heartbeat_ms: i64,
    /// Its devices (JSON array of `DeviceInfo`).
    pub devices: serde_json::Value,
}

impl JobStore {
    /// Registers (or re-registers after a restart) a node and its devices.
    pub async fn register_node(
        &self,
        node_id: &str,
        advertise_url: Option<&str>,
        devices: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = self.backend.now();
        sqlx::query(&format!(
            "INSERT INTO nodes (node_id, advertise_url, version, started_ms, heartbeat_ms, devices) VALUES ($1, $2, $3, {now}, {now}, $4) \
             ON CONFLICT (node_id) DO UPDATE SET advertise_url = excluded.advertise_url, version = excluded.version, \
             started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, devices = excluded.devices"
        ))
        .bind(node_id)
        .bind(advertise_url)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(devices.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A node's heartbeat, with its devices' current state.
    pub async fn node_heartbeat(
        &self,
        node_id: &str,
        devices: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE nodes SET heartbeat_ms = {}, devices = $1 WHERE node_id = $2",
            self.backend.now()
        ))
        .bind(devices.to_string())
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A node that stops cleanly leaves the cluster.
    pub async fn deregister_node(&self, node_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registered nodes, with the database's clock now (Unix ms) to judge their heartbeats by.
    pub async fn nodes(&self) -> Result<(Vec<NodeRecord>, i64), StoreError> {
        let now: i64 = sqlx::query_scalar(&format!("SELECT {}", self.backend.now()))
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT node_id, advertise_url, version, started_ms, heartbeat_ms, devices FROM nodes ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let nodes = rows
            .iter()
            .map(|r| {
                let devices: String = r.try_get("devices")?;
                let node_id: String = r.try_get("node_id")?;
                Ok(NodeRecord {
                    advertise_url: r.try_get("advertise_url")?,
                    version: r.try_get("version")?,
                    started_ms: r.try_get("started_ms")?,
                    heartbeat_ms: r.try_get("heartbeat_ms")?,
                    devices: serde_json::from_str(&devices).map_err(|e| {
                        StoreError::corrupt(&format!("node {node_id}"), format!("devices: {e}"))
                    })?,
                    node_id,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((nodes, now))
    }
}
