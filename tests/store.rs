//! The job store's contract, run against both databases it supports: SQLite (a temp file)
//! and PostgreSQL (a fresh database on the test server of scripts/pg-setup.sh). Leases,
//! attempt fencing, late results, the retry budget and dead letters, node-scoped re-queueing,
//! the node registry, idempotent inserts, and many workers of several nodes claiming at once.

#![allow(clippy::unwrap_used)]

mod pg;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use proofmill_prover::Transcript;
use proofmill_server::{
    job::{AttemptOutcome, JobStage, StoredRequest},
    store::{Completed, Insert, Lease, NewJob, Retried, StoreError},
    JobStatus, JobStore,
};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);
const MAX_DEATHS: u32 = 3;

fn new_job(id: &str, tenant: &str) -> NewJob {
    NewJob {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        request: StoredRequest::Prove {
            circuit: "transfer_batch/d16-b8".to_owned(),
            input: json!({ "n": id }),
            priority: 0,
            transcript: Transcript::Poseidon,
        },
    }
}

async fn add(store: &JobStore, id: &str) {
    let inserted = store.insert(new_job(id, "t"), None, 10_000).await.unwrap();
    assert!(matches!(inserted, Insert::Created(_)), "{inserted:?}");
}

/// Claims `id` with a lease that is already over, then waits until the database's clock is
/// past it.
async fn claim_expired(store: &JobStore, id: &str, node: &str) -> i64 {
    let attempt = store
        .claim(id, node, "cpu0", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    attempt
}

/// Runs `suite` against a fresh SQLite file and, when the test server is set up, a fresh
/// PostgreSQL database: one test per backend.
macro_rules! on_both_backends {
    ($($suite:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("jobs.db");
                    super::$suite(move || {
                        let path = path.clone();
                        async move { proofmill_server::JobStore::open(&path).await.unwrap() }
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let Some(admin) = super::pg::admin_url(concat!("postgres::", stringify!($suite))) else {
                        return;
                    };
                    let url = super::pg::fresh_database(&admin, "pm_store").await;
                    super::$suite(move || {
                        let url = url.clone();
                        async move { proofmill_server::JobStore::connect(&url).await.unwrap() }
                    })
                    .await;
                }
            )*
        }
    };
}

on_both_backends!(
    leases_fence_stale_workers_and_late_proofs_count,
    retryable_failures_spend_the_budget_then_dead_letter,
    restarting_node_requeues_only_its_own_jobs,
    cancels_reach_the_running_node_through_its_heartbeat,
    idempotent_inserts_hold_across_nodes,
    nodes_register_heartbeat_and_leave,
    many_workers_on_several_nodes_never_share_a_job,
    attempts_that_keep_dying_are_dead_lettered,
    the_queue_shows_every_tenant_and_its_share,
    rows_this_version_cannot_read_are_errors_naming_the_job,
);

/// `open` gives another handle on the same database: one per simulated node.
async fn leases_fence_stale_workers_and_late_proofs_count<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let a = open().await;
    let b = open().await;
    add(&a, "j1").await;

    // Node a claims it; nobody else can while it is running.
    let first = claim_expired(&a, "j1", "node-a").await;
    assert_eq!(first, 1);
    assert_eq!(b.claim("j1", "node-b", "cpu0", LEASE).await.unwrap(), None);

    // Its lease ran out (node a stopped heartbeating): any node re-queues it, for free.
    let reaped = b.reap_expired(MAX_DEATHS).await.unwrap();
    assert_eq!(reaped.len(), 1);
    assert_eq!(
        (reaped[0].job_id.as_str(), reaped[0].attempt),
        ("j1", first)
    );
    assert_eq!(reaped[0].node.as_deref(), Some("node-a"));
    let job = b.get("j1").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.failures, 0, "a lease expiry spends no retry");
    assert!(
        job.retry_reason
            .as_deref()
            .is_some_and(|r| r.contains("lease of node node-a expired")),
        "{job:?}"
    );
    assert_eq!(a.renew("j1", first, LEASE).await.unwrap(), Lease::Lost);

    // Node b claims it again: attempt 2. Attempt 1 is fenced out of every change...
    let second = b
        .claim("j1", "node-b", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, 2);
    assert_eq!(
        b.renew("j1", second, LEASE).await.unwrap(),
        Lease::Held {
            cancel_requested: false
        }
    );
    a.set_stage("j1", first, JobStage::Proving).await.unwrap();
    assert!(!a
        .finish("j1", first, JobStatus::Failed, "stale failure")
        .await
        .unwrap());
    assert_eq!(
        a.retry("j1", first, "stale", None, 3).await.unwrap(),
        Retried::Fenced
    );
    assert!(!a.requeue("j1", first, "stale requeue").await.unwrap());
    let job = b.get("j1").await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Running, 2));
    assert_eq!(job.stage, Some(JobStage::Witness));
    assert_eq!(job.node.as_deref(), Some("node-b"));

    // ...except a proof: attempt 1 finished after all, and its verified proof is kept.
    assert_eq!(
        a.complete("j1", first, Some("proofs/j1.json"), "0xvk")
            .await
            .unwrap(),
        Completed::Recorded
    );
    // Attempt 2 can no longer overwrite that result.
    assert_eq!(
        b.complete("j1", second, Some("proofs/other.json"), "0xvk")
            .await
            .unwrap(),
        Completed::AlreadyEnded
    );
    assert!(!b
        .finish("j1", second, JobStatus::Failed, "too late")
        .await
        .unwrap());
    assert_eq!(b.renew("j1", second, LEASE).await.unwrap(), Lease::Lost);
    let job = b.get("j1").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.proof_location.as_deref(), Some("proofs/j1.json"));
    assert_eq!(job.vk_hash.as_deref(), Some("0xvk"));

    let history = b.history("j1").await.unwrap();
    let outcomes: Vec<(i64, &str, Option<AttemptOutcome>)> = history
        .iter()
        .map(|h| (h.attempt, h.node.as_str(), h.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, "node-a", Some(AttemptOutcome::Succeeded)),
            (2, "node-b", Some(AttemptOutcome::Superseded))
        ]
    );
    assert!(history[0]
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("late") && d.contains("lease_expired")));
    assert!(history.iter().all(|h| h.ended_ms.is_some()));
}

async fn retryable_failures_spend_the_budget_then_dead_letter<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    add(&s, "j2").await;
    let n1 = s.claim("j2", "n", "gpu0", LEASE).await.unwrap().unwrap();
    assert_eq!(
        s.retry("j2", n1, "device error on gpu0: boom", Some("gpu0"), 2)
            .await
            .unwrap(),
        Retried::Requeued
    );
    let job = s.get("j2").await.unwrap().unwrap();
    assert_eq!((job.status, job.failures), (JobStatus::Queued, 1));
    assert_eq!(job.exclude_device.as_deref(), Some("gpu0"));
    assert!(!job.dead_letter);

    // A lease expiry in between is not a failure.
    claim_expired(&s, "j2", "n").await;
    assert_eq!(s.reap_expired(MAX_DEATHS).await.unwrap().len(), 1);
    assert_eq!(s.get("j2").await.unwrap().unwrap().failures, 1);

    let n3 = s.claim("j2", "n", "cpu0", LEASE).await.unwrap().unwrap();
    assert_eq!(n3, 3);
    assert_eq!(
        s.retry("j2", n3, "out of memory", None, 2).await.unwrap(),
        Retried::DeadLettered
    );
    let job = s.get("j2").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.dead_letter);
    assert_eq!(job.failures, 2);
    let error = job.error.unwrap();
    assert!(
        error.contains("gave up after 2 failed attempts") && error.contains("out of memory"),
        "{error}"
    );
    assert!(job.finished_ms.is_some());
    // Dead letters stay dead.
    assert_eq!(s.claim("j2", "n", "cpu0", LEASE).await.unwrap(), None);
    let outcomes: Vec<String> = s
        .history("j2")
        .await
        .unwrap()
        .into_iter()
        .map(|h| {
            format!(
                "{}:{}",
                h.device,
                h.outcome.map_or("running", AttemptOutcome::as_str)
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        ["gpu0:retry", "cpu0:lease_expired", "cpu0:failed"]
    );

    // What the console shows of it (GET /v1/stats): every problem attempt, the GPU retry as a
    // fallback, the hour's failures, and the queue with one waiting job.
    let hour_ago = proofmill_server::store::now_ms() - 3_600_000;
    let mut counts = s.problem_counts(Some("t"), hour_ago).await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("failed".to_owned(), 1, 0),
            ("lease_expired".to_owned(), 1, 0),
            ("retry".to_owned(), 1, 1)
        ]
    );
    assert_eq!(s.problem_counts(Some("other"), hour_ago).await.unwrap(), []);
    let problems = s.problems(None, hour_ago, 2).await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].outcome, "failed");
    assert_eq!(
        problems[0]
            .detail
            .as_deref()
            .map(|d| d.contains("out of memory")),
        Some(true)
    );
    let hours = s.hourly(None, hour_ago).await.unwrap();
    assert_eq!(
        hours.iter().map(|h| h.failures).sum::<i64>(),
        2,
        "{hours:?}"
    );
    assert_eq!(hours.iter().map(|h| h.proofs).sum::<i64>(), 0);
    assert!(hours
        .iter()
        .all(|h| h.tenant == "t" && h.hour_ms % 3_600_000 == 0));
    assert_eq!(s.queue_by_tenant(None).await.unwrap(), []);
    add(&s, "j2-next").await;
    let queue = s.queue_by_tenant(Some("t")).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!((queue[0].queued, queue[0].running), (1, 0));
    assert!(queue[0].oldest_queued_ms.is_some());
}

async fn restarting_node_requeues_only_its_own_jobs<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    add(&s, "mine").await;
    add(&s, "theirs").await;
    let mine = s
        .claim("mine", "node-a", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    s.claim("theirs", "node-b", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    let requeued = s
        .requeue_node("node-a", "re-queued at start", Some(MAX_DEATHS))
        .await
        .unwrap();
    assert_eq!((requeued.requeued, requeued.dead_lettered.len()), (1, 0));
    let job = s.get("mine").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.failures, job.deaths),
        (JobStatus::Queued, 0, 1)
    );
    assert_eq!(s.renew("mine", mine, LEASE).await.unwrap(), Lease::Lost);
    assert_eq!(
        s.get("theirs").await.unwrap().unwrap().status,
        JobStatus::Running
    );
    // Live leases are not reaped.
    assert!(s.reap_expired(MAX_DEATHS).await.unwrap().is_empty());
}

async fn cancels_reach_the_running_node_through_its_heartbeat<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let api_node = open().await;
    let worker_node = open().await;
    add(&api_node, "c1").await;
    let attempt = worker_node
        .claim("c1", "w", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    let job = api_node.cancel("c1").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert!(job.cancel_requested);
    assert_eq!(
        worker_node.renew("c1", attempt, LEASE).await.unwrap(),
        Lease::Held {
            cancel_requested: true
        }
    );
    assert!(worker_node
        .finish(
            "c1",
            attempt,
            JobStatus::Cancelled,
            "cancelled by its owner"
        )
        .await
        .unwrap());
    // A cancel asked for while its node was gone: the expired lease does not put the job
    // back in the queue, it ends it.
    add(&api_node, "c3").await;
    claim_expired(&worker_node, "c3", "w").await;
    api_node.cancel("c3").await.unwrap();
    assert_eq!(api_node.reap_expired(MAX_DEATHS).await.unwrap().len(), 1);
    let job = api_node.get("c3").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Cancelled, "{job:?}");
    assert_eq!(
        worker_node.claim("c3", "w", "cpu0", LEASE).await.unwrap(),
        None
    );
    // A queued job is cancelled at once.
    add(&api_node, "c2").await;
    let job = api_node.cancel("c2").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(
        worker_node.claim("c2", "w", "cpu0", LEASE).await.unwrap(),
        None
    );
}

async fn idempotent_inserts_hold_across_nodes<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(open().await);
    }
    // The same idempotency key submitted through three nodes at once: one job.
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            node.insert(
                new_job(&format!("idem{i}"), "t"),
                Some(("key-1", "hash-1")),
                100,
            )
            .await
            .unwrap()
        }));
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Insert::Created(job) => created.push(job.id),
            Insert::Existing(job) => existing.push(job.id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?} {existing:?}");
    assert!(existing.iter().all(|id| *id == created[0]));
    let mismatch = nodes[1]
        .insert(new_job("idem9", "t"), Some(("key-1", "other-hash")), 100)
        .await
        .unwrap();
    assert!(matches!(mismatch, Insert::KeyMismatch { job_id } if job_id == created[0]));

    // The tenant limit holds across nodes too: 5 submissions at once through 3 nodes with a
    // limit of 3 (one job already outstanding) store exactly 2 more.
    let mut tasks = Vec::new();
    for i in 0..5 {
        let node = nodes[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            node.insert(new_job(&format!("lim{i}"), "t"), None, 3)
                .await
                .unwrap()
        }));
    }
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Insert::Created(_) => stored += 1,
            Insert::TooMany { outstanding } => assert_eq!(outstanding, 3),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(stored, 2);
}

async fn nodes_register_heartbeat_and_leave<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    let devices = json!([{"id": "cpu0", "node": "n1"}]);
    s.register_node("n1", Some("http://n1:8080"), &devices)
        .await
        .unwrap();
    s.register_node("n2", None, &json!([])).await.unwrap();
    let (before, _) = s.nodes().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.node_heartbeat("n1", &json!([{"id": "cpu0"}, {"id": "gpu0"}]))
        .await
        .unwrap();
    let (nodes, now) = s.nodes().await.unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2"]);
    assert_eq!(nodes[0].advertise_url.as_deref(), Some("http://n1:8080"));
    assert_eq!(nodes[0].devices.as_array().unwrap().len(), 2);
    assert!(nodes[0].heartbeat_ms > before[0].heartbeat_ms);
    assert!(now >= nodes[0].heartbeat_ms);
    s.deregister_node("n2").await.unwrap();
    assert_eq!(s.nodes().await.unwrap().0.len(), 1);
}

/// Several nodes (each its own connection pool), each with several workers, claim from one
/// queue of many small jobs at once. Every job is handed out exactly once and none is lost.
async fn many_workers_on_several_nodes_never_share_a_job<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    const JOBS: usize = 120;
    let first = open().await;
    for i in 0..JOBS {
        add(&first, &format!("s{i:03}")).await;
    }
    let claims: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let node = open().await;
        for w in 0..3 {
            let node = node.clone();
            let claims = claims.clone();
            let me = format!("node{n}/cpu{w}");
            tasks.push(tokio::spawn(async move {
                loop {
                    let queued = node.queued(16).await.unwrap();
                    if queued.is_empty() {
                        return;
                    }
                    for job in queued {
                        let Some(attempt) = node
                            .claim(&job.id, &format!("node{n}"), &format!("cpu{w}"), LEASE)
                            .await
                            .unwrap()
                        else {
                            continue;
                        };
                        claims
                            .lock()
                            .unwrap()
                            .entry(job.id.clone())
                            .or_default()
                            .push(me.clone());
                        tokio::time::sleep(Duration::from_millis(u64::from(
                            rand::random::<u8>() % 5,
                        )))
                        .await;
                        let done = node
                            .complete(
                                &job.id,
                                attempt,
                                Some(&format!("proofs/{}", job.id)),
                                "0xvk",
                            )
                            .await
                            .unwrap();
                        assert_eq!(done, Completed::Recorded);
                        break;
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let claims = claims.lock().unwrap().clone();
    assert_eq!(claims.len(), JOBS, "every job was claimed");
    for (job, by) in claims.iter() {
        assert_eq!(by.len(), 1, "{job} handed to {by:?}");
    }
    let counts = first.status_counts().await.unwrap();
    let succeeded = counts
        .iter()
        .find(|(s, _)| *s == JobStatus::Succeeded)
        .unwrap()
        .1;
    assert_eq!(succeeded as usize, JOBS);
    // More than one node did work.
    let nodes: std::collections::HashSet<&str> = claims
        .values()
        .map(|by| by[0].split('/').next().unwrap())
        .collect();
    assert!(nodes.len() > 1, "{nodes:?}");
}

/// A job whose attempts keep dying (its lease expires, its node restarts while running it)
/// is dead-lettered after `max_deaths`, with its history, instead of cycling forever; a
/// shutdown's re-queue is not a death.
async fn attempts_that_keep_dying_are_dead_lettered<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    add(&s, "poison").await;
    // Death 1: the lease expires.
    claim_expired(&s, "poison", "node-a").await;
    let reaped = s.reap_expired(3).await.unwrap();
    assert_eq!(reaped.len(), 1);
    assert!(!reaped[0].dead_lettered);
    // Not a death: a clean shutdown re-queues it.
    s.claim("poison", "node-b", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    let stopped = s
        .requeue_node("node-b", "re-queued at shutdown", None)
        .await
        .unwrap();
    assert_eq!(stopped.requeued, 1);
    assert_eq!(s.get("poison").await.unwrap().unwrap().deaths, 1);
    // Death 2: its node restarts while running it.
    s.claim("poison", "node-b", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    let restarted = s
        .requeue_node("node-b", "re-queued at start", Some(3))
        .await
        .unwrap();
    assert_eq!((restarted.requeued, restarted.dead_lettered.len()), (1, 0));
    // Death 3: the lease expires again, and that is the last.
    claim_expired(&s, "poison", "node-c").await;
    let reaped = s.reap_expired(3).await.unwrap();
    assert_eq!(reaped.len(), 1);
    assert!(reaped[0].dead_lettered);
    let job = s.get("poison").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.dead_letter);
    assert_eq!((job.deaths, job.failures), (3, 0));
    let error = job.error.unwrap();
    assert!(error.contains("died 3 times"), "{error}");
    assert_eq!(s.claim("poison", "n", "cpu0", LEASE).await.unwrap(), None);
    let outcomes: Vec<AttemptOutcome> = s
        .history("poison")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| h.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::LeaseExpired,
            AttemptOutcome::Requeued,
            AttemptOutcome::Requeued,
            AttemptOutcome::LeaseExpired
        ]
    );
}

/// The dispatch candidates hold every tenant's first jobs however many one tenant queued, and
/// the shares count running jobs and recent device time.
async fn the_queue_shows_every_tenant_and_its_share<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    for i in 0..40 {
        s.insert(new_job(&format!("flood{i:02}"), "a"), None, 10_000)
            .await
            .unwrap();
    }
    s.insert(new_job("lone", "b"), None, 10_000).await.unwrap();
    let candidates = s.queued(4).await.unwrap();
    let ids: Vec<&str> = candidates.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["flood00", "flood01", "flood02", "flood03", "lone"]);
    let a1 = s
        .claim("flood00", "n", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.complete("flood00", a1, Some("p"), "0xvk").await.unwrap();
    s.claim("flood01", "n", "cpu0", LEASE)
        .await
        .unwrap()
        .unwrap();
    let shares = s.queue_shares(3_600_000).await.unwrap();
    let a = shares.iter().find(|x| x.tenant == "a").unwrap();
    let b = shares.iter().find(|x| x.tenant == "b").unwrap();
    assert_eq!((a.running, a.queued), (1, 38));
    assert_eq!((b.running, b.queued), (0, 1));
    assert!(a.recent_device_seconds > 0.0, "{a:?}");
    assert_eq!(b.recent_device_seconds, 0.0);
    assert!(b.oldest_queued_ms.is_some());
}

/// A stored request, status or stage this version does not understand is an error that
/// names the job, never a silent default.
async fn rows_this_version_cannot_read_are_errors_naming_the_job<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let s = open().await;
    add(&s, "odd1").await;
    add(&s, "odd2").await;
    assert!(matches!(
        s.request("odd1").await.unwrap(),
        Some(StoredRequest::Prove { .. })
    ));
    s.execute_raw(
        "UPDATE jobs SET request = '{\"type\":\"prove\",\"circuit\":\"c\"}' WHERE id = 'odd1'",
    )
    .await
    .unwrap();
    let err = s.request("odd1").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { job, .. } if job == "odd1"),
        "{err}"
    );
    assert!(err.to_string().contains("odd1") && err.to_string().contains("request"));
    s.execute_raw("UPDATE jobs SET stage = 'levitating' WHERE id = 'odd2'")
        .await
        .unwrap();
    let err = s.get("odd2").await.unwrap_err().to_string();
    assert!(err.contains("odd2") && err.contains("levitating"), "{err}");
}
