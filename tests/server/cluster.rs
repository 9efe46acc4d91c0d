//! Several nodes on one PostgreSQL: a node killed mid-job, PostgreSQL and node restarts.

use super::*;

/// The cluster tests share one PostgreSQL server, and one of them restarts it: they run one
/// at a time.
static PG_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a cluster test runs on: exclusive use of the test PostgreSQL server, a fresh database
/// on it, and a directory for the nodes' files. `None` (after a loud notice) without a server.
pub(crate) async fn cluster_setup(
    test: &str,
) -> Option<(
    tokio::sync::MutexGuard<'static, ()>,
    String,
    tempfile::TempDir,
)> {
    let admin = pg::admin_url(test)?;
    let exclusive = PG_SERVER.lock().await;
    let url = pg::fresh_database(&admin, "pm_cluster").await;
    Some((exclusive, url, tempfile::tempdir().unwrap()))
}

/// A cluster node's configuration file in `dir`: the shared database, the shared proofs
/// directory, a short lease.
pub(crate) fn node_config(dir: &Path, database_url: &str, node: &str, lease_secs: u64) -> PathBuf {
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\ndatabase_url = {database_url:?}\nnode_id = {node:?}\nproofs_dir = {:?}\nlease_secs = {lease_secs}\nshutdown_grace_secs = 2\n",
            shared_data_dir(),
            dir.join("proofs")
        ),
    )
    .unwrap();
    path
}

/// A job's view through the first node that answers (nodes or the database may be
/// restarting).
pub(crate) async fn job_via(c: &Client, urls: &[String], id: &str) -> Option<Value> {
    for base in urls {
        if let Ok(r) = c.get(format!("{base}/v1/jobs/{id}")).send().await {
            if r.status() == StatusCode::OK {
                return r.json().await.ok();
            }
        }
    }
    None
}

/// Waits until `GET /v1/devices` on `base` lists every node of `nodes` as live, with its
/// devices; returns the answer.
pub(crate) async fn wait_for_cluster(c: &Client, base: &str, nodes: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("{base}/v1/devices")).send().await {
            if r.status() == StatusCode::OK {
                let body: Value = r.json().await.unwrap();
                let live = |n: &str| {
                    body["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v["node"] == n && v["live"] == true)
                        && body["devices"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|d| d["node"] == n)
                };
                if nodes.iter().all(|n| live(n)) {
                    return body;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{base} never listed all of {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `(node, outcome)` of each attempt in a job's history.
pub(crate) fn attempts_of(view: &Value) -> Vec<(String, String)> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["node"].as_str().unwrap().to_owned(),
                h["outcome"].as_str().unwrap_or("running").to_owned(),
            )
        })
        .collect()
}

/// Two nodes; the one proving a job is killed with SIGKILL. Its lease expires, the other
/// node re-queues the job (spending no retry) and proves it: one result, recorded once, with
/// the history saying what happened. The dead node drops out of the device list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_killed_mid_job_its_job_finishes_on_another_after_the_lease() {
    let Some((_exclusive, url, dir)) = cluster_setup("cluster_node_killed_mid_job").await else {
        return;
    };
    let c = Client::new();
    let names = ["node-a", "node-b"];
    let mut nodes: Vec<ServeProcess> = names
        .iter()
        .map(|n| spawn_serve(&node_config(dir.path(), &url, n, 4)))
        .collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    for base in &urls {
        let devices = wait_for_cluster(&c, base, &names).await;
        assert!(
            devices["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["this_node"] == true)
                .count()
                == 1,
            "{devices}"
        );
    }

    let (status, accepted) = json_of(submit(&c, &urls[0], &prove_request(31), None).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let running = wait_for(&c, &urls[1], &id, Duration::from_secs(300), |v| {
        v["stage"] == "proving"
    })
    .await;
    let victim = running["node"].as_str().unwrap().to_owned();
    let (dead, alive) = if victim == names[0] { (0, 1) } else { (1, 0) };
    nodes[dead].child.kill().unwrap(); // SIGKILL: no goodbye, the lease just stops
    nodes[dead].child.wait().unwrap();

    let view = wait_for(&c, &urls[alive], &id, Duration::from_secs(900), terminal).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
    assert_eq!(
        view["failures"], 0,
        "a lease expiry spends no retry: {view}"
    );
    assert_eq!(view["node"], names[alive], "{view}");
    assert!(
        view["retry_reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("lease of node {victim} expired"))),
        "{view}"
    );
    assert_eq!(
        attempts_of(&view),
        [
            (victim.clone(), "lease_expired".to_owned()),
            (names[alive].to_owned(), "succeeded".to_owned())
        ],
        "{view}"
    );
    let r = c
        .get(format!("{}/v1/jobs/{id}/proof", urls[alive]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The dead node stops heartbeating: after three leases it is listed as not live and its
    // devices are gone from the cluster's list.
    let start = Instant::now();
    loop {
        let body: Value = c
            .get(format!("{}/v1/devices", urls[alive]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let gone = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["node"] == victim.as_str() && n["live"] == false)
            && body["devices"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["node"] != victim.as_str());
        if gone {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    terminate(&mut nodes[alive].child, Duration::from_secs(30));
}

/// Three nodes under load: PostgreSQL is restarted while jobs prove, then a node holding a
/// job is restarted (SIGTERM, start again). Every job succeeds exactly once; no lease
/// expires (the restarts are shorter than the lease), no job is ever held by two attempts at
/// once, nothing is lost, and the proofs are served by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_of_three_survives_postgres_and_node_restarts_under_load() {
    let Some((_exclusive, url, dir)) = cluster_setup("cluster_of_three_survives_restarts").await
    else {
        return;
    };
    let c = Client::new();
    let names = ["node-a", "node-b", "node-c"];
    let configs: Vec<PathBuf> = names
        .iter()
        .map(|n| node_config(dir.path(), &url, n, 8))
        .collect();
    let mut nodes: Vec<ServeProcess> = configs.iter().map(|p| spawn_serve(p)).collect();
    let mut urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    wait_for_cluster(&c, &urls[2], &names).await;

    let mut ids = Vec::new();
    for (i, seed) in (41..45).enumerate() {
        let (status, accepted) =
            json_of(submit(&c, &urls[i % 3], &prove_request(seed), None).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    // Poll until `pick` finds a job in a state worth acting on.
    async fn until(
        c: &Client,
        urls: &[String],
        ids: &[String],
        pick: impl Fn(&[Value]) -> Option<String>,
    ) -> String {
        let start = Instant::now();
        loop {
            let mut views = Vec::new();
            for id in ids {
                if let Some(v) = job_via(c, urls, id).await {
                    views.push(v);
                }
            }
            if views.len() == ids.len() {
                if let Some(found) = pick(&views) {
                    return found;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(600), "{views:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    until(&c, &urls, &ids, |views| {
        (views.iter().filter(|v| v["stage"] == "proving").count() >= 2).then(String::new)
    })
    .await;
    pg::ctl("restart");

    // A node proving a job is restarted gracefully; it comes back under the same id.
    let victim = until(&c, &urls, &ids, |views| {
        views
            .iter()
            .find(|v| v["stage"] == "proving")
            .and_then(|v| v["node"].as_str().map(str::to_owned))
    })
    .await;
    let v = names.iter().position(|n| *n == victim).unwrap();
    terminate(&mut nodes[v].child, Duration::from_secs(60));
    nodes[v] = spawn_serve(&configs[v]);
    urls[v] = nodes[v].url.clone();

    until(&c, &urls, &ids, |views| {
        views.iter().all(terminal).then(String::new)
    })
    .await;
    let mut requeued = 0;
    for id in &ids {
        let view = job_via(&c, &urls, id).await.unwrap();
        assert_eq!(view["status"], "succeeded", "{view}");
        let attempts = attempts_of(&view);
        assert_eq!(
            attempts.iter().filter(|(_, o)| o == "succeeded").count(),
            1,
            "{view}"
        );
        assert!(
            attempts
                .iter()
                .all(|(_, o)| o != "lease_expired" && o != "superseded"),
            "{view}"
        );
        requeued += attempts.iter().filter(|(_, o)| o == "requeued").count();
        // Attempts follow one another: none starts before the previous one ended.
        let history = view["history"].as_array().unwrap();
        for pair in history.windows(2) {
            let ended = pair[0]["ended"].as_str().unwrap();
            let started = pair[1]["started"].as_str().unwrap();
            assert!(ended <= started, "{view}");
        }
        for base in &urls {
            let r = c
                .get(format!("{base}/v1/jobs/{id}/proof"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{base} {id}");
        }
    }
    assert!(
        requeued >= 1,
        "the restarted node's job went back to the queue"
    );
    let devices = wait_for_cluster(&c, &urls[0], &names).await;
    assert_eq!(devices["nodes"].as_array().unwrap().len(), 3, "{devices}");
    for node in &mut nodes {
        terminate(&mut node.child, Duration::from_secs(30));
    }
}

/// A job bigger than this node's largest device stays queued for a node whose device fits it,
/// instead of failing: node-a lets its CPU worker prove in 256 MiB (too little for a
/// transfer_batch/d16-b8 proof), node-b in all of the host's memory; the job submitted to
/// node-a runs on node-b. And the API answers wrong keys with 401 while the database is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_too_big_for_this_node_runs_on_one_it_fits() {
    let Some((_exclusive, url, dir)) = cluster_setup("cluster_placement").await else {
        return;
    };
    let c = Client::new();
    let small = node_config(dir.path(), &url, "node-a", 6);
    let mut text = std::fs::read_to_string(&small).unwrap();
    text.push_str(&format!(
        "cpu_memory_bytes = {}\n[[tenants]]\nname = \"t\"\nkey_sha256 = \"{}\"\n",
        256u64 << 20,
        key_hash("t-key")
    ));
    std::fs::write(&small, text).unwrap();
    let big = node_config(dir.path(), &url, "node-b", 6);
    let mut text = std::fs::read_to_string(&big).unwrap();
    text.push_str(&format!(
        "[[tenants]]\nname = \"t\"\nkey_sha256 = \"{}\"\n",
        key_hash("t-key")
    ));
    std::fs::write(&big, text).unwrap();
    let a = spawn_serve(&small);
    let b = spawn_serve(&big);
    for base in [&a.url, &b.url] {
        let start = Instant::now();
        loop {
            let r = c
                .get(format!("{base}/v1/devices"))
                .bearer_auth("t-key")
                .send()
                .await;
            if let Ok(r) = r {
                if r.status() == StatusCode::OK {
                    let body: Value = r.json().await.unwrap();
                    let nodes: Vec<&str> = body["devices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|d| d["node"].as_str())
                        .collect();
                    if nodes.contains(&"node-a") && nodes.contains(&"node-b") {
                        break;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "cluster never formed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (status, accepted) =
        json_of(submit(&c, &a.url, &prove_request(61), Some("t-key")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let view = loop {
        let r = c
            .get(format!("{}/v1/jobs/{id}", a.url))
            .bearer_auth("t-key")
            .send()
            .await
            .unwrap();
        let (_, view) = json_of(r).await;
        if terminal(&view) {
            break view;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "{view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["node"], "node-b", "{view}");
    assert!(
        attempts_of(&view).iter().all(|(node, _)| node == "node-b"),
        "{view}"
    );

    // The database goes away: a wrong key is still a 401 (authentication reads no database),
    // a valid key gets through to the 503 of the route that needs it.
    pg::ctl("stop");
    let r = c
        .get(format!("{}/v1/jobs", a.url))
        .bearer_auth("wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!("{}/v1/jobs", a.url))
        .bearer_auth("t-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    pg::ctl("start");
    drop(a);
    drop(b);
}
