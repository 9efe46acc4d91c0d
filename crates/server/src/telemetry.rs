//! Prometheus metrics: the process-wide recorder and the gauges refreshed at each scrape
//! (jobs by status, queue depth, device telemetry, time since the last proof). Counters and
//! histograms are recorded where things happen (scheduler, workers) through the `metrics`
//! macros; this module only renders them.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{store::JobStatus, AppState};

/// The process's recorder (installed on first use; shared by every server in the process).
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 480.0, 900.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(|b| b.install_recorder());
            match handle {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is empty");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!("proofmill_jobs", "Jobs in the store by status");
    describe_gauge!("proofmill_queue_depth", "Jobs waiting for a device");
    describe_counter!("proofmill_jobs_submitted_total", "Jobs accepted (202)");
    describe_counter!(
        "proofmill_jobs_finished_total",
        "Jobs that ended, by status"
    );
    describe_histogram!(
        "proofmill_prove_seconds",
        Unit::Seconds,
        "Device time of successful jobs, per circuit"
    );
    describe_histogram!(
        "proofmill_stage_seconds",
        Unit::Seconds,
        "Duration of proof stages"
    );
    describe_counter!(
        "proofmill_fallbacks_total",
        "Jobs retried on another device (the CPU) after a device error, with the reason"
    );
    describe_counter!(
        "proofmill_device_seconds_total",
        "Device time used by jobs, per device"
    );
    describe_counter!(
        "proofmill_leases_expired_total",
        "Running jobs re-queued because their node stopped renewing the lease, by that node"
    );
    describe_counter!(
        "proofmill_jobs_dead_lettered_total",
        "Jobs given up after max_attempts retryable failures"
    );
    describe_gauge!("proofmill_device_utilization", "Busy fraction 0..1");
    describe_gauge!(
        "proofmill_device_memory_total_bytes",
        Unit::Bytes,
        "Device memory"
    );
    describe_gauge!(
        "proofmill_device_memory_used_bytes",
        Unit::Bytes,
        "Device memory in use"
    );
    describe_gauge!("proofmill_device_temperature_celsius", "Device temperature");
    describe_gauge!("proofmill_device_power_watts", "Device power draw");
    describe_gauge!("proofmill_device_jobs", "Jobs a device holds");
    describe_gauge!(
        "proofmill_seconds_since_last_proof",
        Unit::Seconds,
        "Time since the last successful proof (since start when none yet)"
    );
}

/// Updates the gauges that are read rather than counted.
pub async fn refresh(state: &AppState) {
    if let Ok(counts) = state.store.status_counts().await {
        for (status, n) in counts {
            metrics::gauge!("proofmill_jobs", "status" => status.as_str()).set(n as f64);
            if status == JobStatus::Queued {
                metrics::gauge!("proofmill_queue_depth").set(n as f64);
            }
        }
    }
    for worker in state.scheduler.workers() {
        let info = worker.info();
        let labels = [
            ("device", info.id.clone()),
            ("kind", info.kind.as_str().to_owned()),
            ("node", info.node.clone().unwrap_or_default()),
        ];
        if let Some(u) = info.utilization {
            metrics::gauge!("proofmill_device_utilization", &labels).set(u);
        }
        if let Some(total) = info.memory_total_bytes {
            metrics::gauge!("proofmill_device_memory_total_bytes", &labels).set(total as f64);
            if let Some(free) = info.memory_free_bytes {
                metrics::gauge!("proofmill_device_memory_used_bytes", &labels)
                    .set(total.saturating_sub(free) as f64);
            }
        }
        if let Some(t) = info.temperature_c {
            metrics::gauge!("proofmill_device_temperature_celsius", &labels).set(t);
        }
        if let Some(p) = info.power_w {
            metrics::gauge!("proofmill_device_power_watts", &labels).set(p);
        }
        metrics::gauge!("proofmill_device_jobs", &labels).set(info.jobs.len() as f64);
    }
    let since = state
        .scheduler
        .since_last_proof()
        .unwrap_or_else(|| state.started.elapsed());
    metrics::gauge!("proofmill_seconds_since_last_proof").set(since.as_secs_f64());
}
