//! `GET /v1/jobs/{id}/events`: a job's state as server-sent events, now and at every change,
//! until it ends. Streams are counted per tenant on each node ([`StreamSlots`]): past
//! `max_event_streams_per_tenant` a tenant gets 429s, so that no tenant can hold the node's
//! connections and database polls.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::Stream;

use super::{jobs::JobView, owned_job};
use crate::{
    auth::Caller,
    error::{ApiError, Problem},
    job::{JobStage, JobStatus},
    store::Backend,
    AppState,
};

/// Open event streams per tenant on this node.
#[derive(Debug, Clone, Default)]
pub struct StreamSlots {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream: its tenant's count goes down when it is dropped (the client left, or the
/// job ended).
#[derive(Debug)]
pub struct StreamSlot {
    slots: StreamSlots,
    tenant: String,
}

impl StreamSlots {
    /// A slot for one more stream of `tenant`, or a 429 when it holds `limit` already.
    pub fn open(&self, tenant: &str, limit: usize) -> Result<StreamSlot, ApiError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(tenant.to_owned()).or_insert(0);
        if *count >= limit {
            return Err(ApiError::TooBusy(format!(
                "tenant {tenant} has {count} event streams open on this node, the limit is {limit} (max_event_streams_per_tenant); close one, or poll GET /v1/jobs/{{id}}"
            )));
        }
        *count += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        })
    }

    /// Streams open now, per tenant.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.open.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// Server-sent events: the job's state now and at every change, until it ends.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of `status` events whose data is a JobView", content_type = "text/event-stream"),
        (status = 404, body = Problem, description = "no such job of the caller"),
        (status = 429, body = Problem, description = "the tenant holds its maximum of open event streams on this node")))]
pub async fn job_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let changes = state.scheduler.subscribe();
    let job = owned_job(&state, &caller, &id).await?;
    let slot = state
        .streams
        .open(&caller.tenant, state.config.max_event_streams_per_tenant)?;
    let first = JobView::of(&job);
    let shutdown = state.shutdown.clone();
    // This node announces its own changes; another node's (a job it runs, a lease it lost)
    // are seen by reading the job's row again (no request body) every second in a cluster,
    // every ten seconds alone.
    let every = match state.store.backend() {
        Backend::Postgres => Duration::from_secs(1),
        Backend::Sqlite => Duration::from_secs(10),
    };
    let stream = futures_util::stream::unfold(
        (Some(first), changes, state, id, false, shutdown, None, slot),
        move |(pending, mut changes, state, id, done, mut shutdown, last, slot)| async move {
            if done {
                return None;
            }
            let view = match pending {
                Some(view) => view,
                None => {
                    // The poll's deadline outlives the loop's turns: other jobs' changes on a
                    // busy node must not keep postponing it.
                    let mut poll = tokio::time::Instant::now() + every;
                    loop {
                        let changed = tokio::select! {
                            changed = changes.recv() => changed,
                            _ = shutdown.changed() => return None,
                            () = tokio::time::sleep_until(poll) => {
                                poll = tokio::time::Instant::now() + every;
                                Ok(id.clone())
                            }
                        };
                        match changed {
                            Ok(changed) if changed != id => continue,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                match state.store.get(&id).await {
                                    Ok(Some(job)) => {
                                        let view = JobView::of(&job);
                                        if last.as_ref() == Some(&event_key(&view)) {
                                            continue;
                                        }
                                        break view;
                                    }
                                    // The database is restarting: keep the stream, try again.
                                    Err(e) if e.is_unavailable() => continue,
                                    _ => return None,
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                }
            };
            let terminal = view.status.is_terminal();
            let key = Some(event_key(&view));
            let event = Event::default()
                .event("status")
                .json_data(&view)
                .unwrap_or_else(|_| Event::default().event("status"));
            Some((
                Ok(event),
                (None, changes, state, id, terminal, shutdown, key, slot),
            ))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What makes two events of one job different: a repeat is not sent.
fn event_key(view: &JobView) -> (JobStatus, Option<JobStage>, u64, i64, bool) {
    (
        view.status,
        view.stage,
        (view.progress * 1000.0) as u64,
        view.attempts,
        view.cancel_requested,
    )
}
