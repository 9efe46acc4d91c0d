//! The real `proofmill serve` binary: `kill -9` mid-job, restart, SIGTERM drain.

use proofmill_server::{JobStatus, JobStore};

use super::*;

/// Durability: a server killed with SIGKILL mid-proof loses nothing — on restart the job is
/// re-queued and completes. SIGTERM stops the server cleanly within its grace period,
/// re-queueing the job it could not finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_then_restart_completes_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proofmill.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase = {:?}\nproofs_dir = {:?}\nshutdown_grace_secs = 2\n",
            shared_data_dir(),
            dir.path().join("jobs.db"),
            dir.path().join("proofs")
        ),
    )
    .unwrap();
    let c = Client::new();

    let mut first = spawn_serve(&config);
    let (status, accepted) = json_of(submit(&c, &first.url, &prove_request(21), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["id"].as_str().unwrap().to_owned();
    wait_for(&c, &first.url, &id, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let mut second = spawn_serve(&config);
    let view = job(&c, &second.url, &id).await;
    assert!(
        view["retry_reason"]
            .as_str()
            .is_some_and(|r| r.contains("re-queued at start")),
        "{view}"
    );
    let view = wait_for(&c, &second.url, &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
    let r = c
        .get(format!("{}/v1/jobs/{id}/proof", second.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // SIGTERM while a job proves: the server exits 0 after the 2 s grace period, the job
    // goes back to the queue.
    let (_, accepted) = json_of(submit(&c, &second.url, &prove_request(22), None).await).await;
    let other = accepted["id"].as_str().unwrap().to_owned();
    wait_for(&c, &second.url, &other, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    let started = Instant::now();
    terminate(&mut second.child, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(20));
    let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
    let left = store.get(&other).await.unwrap().unwrap();
    assert_eq!(left.status, JobStatus::Queued);
    assert!(
        left.retry_reason
            .as_deref()
            .is_some_and(|r| r.contains("shutdown")),
        "{left:?}"
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    store.close().await;
}
