//! The CLI round trip a newcomer runs: example-batch, prove, verify; and the exit codes and
//! messages for tampered proofs and bad input.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// SRS and keys shared with the other test binaries (kept under `target/tmp`).
fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

fn proofmill(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofmill"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir())
        .current_dir(cwd)
        .output()
        .expect("proofmill runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn example_prove_verify_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let circuit = "transfer_batch/d16-b8";

    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            circuit,
            "--seed",
            "3",
            "--out",
            "b.json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = proofmill(
        &[
            "prove",
            "--circuit",
            circuit,
            "--input",
            "b.json",
            "--out",
            "p.json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = proofmill(&["verify", "p.json"], cwd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The same proof with one altered byte is invalid: exit 1.
    let mut envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("p.json")).unwrap()).unwrap();
    let proof = envelope["proof"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&proof[2..]).unwrap();
    bytes[100] ^= 0x01;
    envelope["proof"] = format!("0x{}", hex::encode(bytes)).into();
    std::fs::write(cwd.join("t.json"), envelope.to_string()).unwrap();
    let out = proofmill(&["verify", "t.json"], cwd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("INVALID"), "{}", text(&out));

    // Unusable input: exit 2 with a message naming the problem.
    std::fs::write(cwd.join("junk.json"), "{\"format\": \"proofmill-proof/1\"}").unwrap();
    let out = proofmill(&["verify", "junk.json"], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing field"), "{}", text(&out));
    let out = proofmill(&["verify", "missing.json"], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn bad_input_gets_a_message_that_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let out = proofmill(
        &["example-batch", "--circuit", "transfer_batch/d99-b1"],
        cwd,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown circuit") && text(&out).contains("transfer_batch/d16-b8"),
        "{}",
        text(&out)
    );

    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            "transfer_batch/d16-b8",
            "--out",
            "b.json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("b.json")).unwrap()).unwrap();
    batch["transfers"][1]["nonce"] = 999.into();
    std::fs::write(cwd.join("bad.json"), batch.to_string()).unwrap();
    let out = proofmill(
        &[
            "prove",
            "--circuit",
            "transfer_batch/d16-b8",
            "--input",
            "bad.json",
            "--out",
            "p.json",
        ],
        cwd,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("transfer 1: nonce 999"),
        "{}",
        text(&out)
    );
    assert!(
        !cwd.join("p.json").exists(),
        "no proof written for an invalid batch"
    );

    std::fs::write(cwd.join("notjson.json"), "{").unwrap();
    let out = proofmill(
        &[
            "prove",
            "--circuit",
            "transfer_batch/d16-b8",
            "--input",
            "notjson.json",
            "--out",
            "p.json",
        ],
        cwd,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("not JSON"), "{}", text(&out));
}

#[test]
fn circuits_lists_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let out = proofmill(&["circuits", "--json", "--no-keys"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"transfer_batch/d16-b8") && names.contains(&"transfer_batch/d32-b64"));
    assert!(rows.iter().all(|r| r["k"].as_u64().unwrap() >= 17));
    // Each with the memory a proof needs, growing with k.
    let host = |name: &str| {
        rows.iter().find(|r| r["name"] == name).unwrap()["memory"]["host_bytes"]
            .as_u64()
            .unwrap()
    };
    assert!(host("transfer_batch/d16-b8") < host("transfer_batch/d16-b32"));
    assert!(host("transfer_batch/d16-b32") < host("transfer_batch/d32-b64"));
    let table = proofmill(&["circuits", "--no-keys"], dir.path());
    let table = text(&table);
    assert!(
        table.contains("HOST GiB (1ST)") && table.contains("GPU GiB"),
        "{table}"
    );
}

#[test]
fn aggregate_refuses_bad_inputs_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let circuit = "transfer_batch/d16-b8";
    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            circuit,
            "--seed",
            "4",
            "--count",
            "2",
            "--out",
            "b.json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out));
    for i in 1..=2 {
        let out = proofmill(
            &[
                "prove",
                "--circuit",
                circuit,
                "--input",
                &format!("b-{i}.json"),
                "--out",
                &format!("p-{i}.json"),
            ],
            cwd,
        );
        assert!(out.status.success(), "{}", text(&out));
    }

    // One proof is not an aggregation.
    let out = proofmill(&["aggregate", "p-1.json", "--out", "a.json"], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Out of order: refused before any aggregation key is made, naming the file.
    let out = proofmill(
        &["aggregate", "p-2.json", "p-1.json", "--out", "a.json"],
        cwd,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("p-1.json (input 2) starts at root")
            && text(&out).contains("out of order"),
        "{}",
        text(&out)
    );

    // A tampered input is named.
    let mut envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("p-2.json")).unwrap()).unwrap();
    let proof = envelope["proof"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&proof[2..]).unwrap();
    bytes[64] ^= 0x01;
    envelope["proof"] = format!("0x{}", hex::encode(bytes)).into();
    std::fs::write(cwd.join("t.json"), envelope.to_string()).unwrap();
    let out = proofmill(&["aggregate", "p-1.json", "t.json", "--out", "a.json"], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("t.json (input 2)") && text(&out).contains("does not verify"),
        "{}",
        text(&out)
    );
    assert!(!cwd.join("a.json").exists(), "nothing written on refusal");

    // The Ethereum verifier is for final aggregation proofs only.
    let out = proofmill(&["verifier", "--out-dir", "v", "--proof", "p-1.json"], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--final"), "{}", text(&out));
    let out = proofmill(&["verifier", "--out-dir", "v", "--circuit", circuit], cwd);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("aggregation and epoch circuits only"),
        "{}",
        text(&out)
    );
}

#[test]
fn selftest_checks_every_backend_and_says_when_gpus_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let out = proofmill(&["selftest", "--max-log", "12", "--no-prove"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("2^12  MSM ok") && report.contains("selftest passed"),
        "{report}"
    );
    let no_gpu = proofmill_accel::DeviceInventory::probe()
        .first_usable_gpu()
        .is_none();
    assert_eq!(report.contains("GPU checks SKIPPED"), no_gpu, "{report}");
    let out = proofmill(&["selftest", "--max-log", "30"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn cuda_backend_without_a_gpu_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    if proofmill_accel::DeviceInventory::probe()
        .first_usable_gpu()
        .is_some()
    {
        // A GPU is here, so there is no refusal to see: the cuda backend must work instead.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** cuda_backend_without_a_gpu_is_refused_with_the_reason: this machine has a GPU; checking that --backend cuda works instead ***\n"
        );
        let out = proofmill(
            &[
                "--backend",
                "cuda",
                "selftest",
                "--no-prove",
                "--max-log",
                "12",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        return;
    }
    let out = proofmill(
        &[
            "--backend",
            "cuda",
            "keygen",
            "--circuit",
            "transfer_batch/d16-b8",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("backend cuda"), "{}", text(&out));
}

#[test]
fn example_batch_writes_signed_rollup_batches_for_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            "rollup/d8-t2-e1-c1",
            "--chain-id",
            "7",
            "--exits",
            "--claims",
            "--count",
            "2",
            "--out",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r-1.json")).unwrap())
            .unwrap();
    assert_eq!(first["chain_id"], 7);
    assert_eq!(first["exits"].as_array().unwrap().len(), 1);
    assert_eq!(first["claims"].as_array().unwrap().len(), 1);
    assert!(first["transfers"][0]["signature"]["R8"].is_array());
    // Both batches are valid inputs of the circuit, the second where the first ended.
    let circuit = proofmill_circuits::lookup("rollup/d8-t2-e1-c1").unwrap();
    for name in ["r-1.json", "r-2.json"] {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap();
        circuit.parse_input(&value).unwrap();
    }
    // Without --exits and --claims: transfers only.
    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            "rollup/d8-t2-e1-c1",
            "--out",
            "t.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plain: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("t.json")).unwrap()).unwrap();
    assert!(plain["exits"].as_array().is_none_or(Vec::is_empty));
    assert!(plain["claims"].as_array().is_none_or(Vec::is_empty));
    // The chain options are refused for a circuit without chains.
    let out = proofmill(
        &[
            "example-batch",
            "--circuit",
            "transfer_batch/d16-b8",
            "--chain-id",
            "3",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("rollup circuits"), "{}", text(&out));
}

/// The epoch commands refuse bad input before any proving or key work, saying what to fix.
#[test]
fn epoch_commands_refuse_bad_input_before_proving() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let refused = |args: &[&str], needle: &str| {
        let out = proofmill(args, cwd);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(needle),
            "{args:?}: {needle:?} not in {}",
            text(&out)
        );
    };
    refused(
        &["example-epoch", "--out-dir", "ex", "--chains", "1,1"],
        "each chain id once",
    );
    refused(
        &["example-epoch", "--out-dir", "ex", "--chains", "1,300"],
        "chain id 300 is out of range",
    );
    refused(
        &[
            "example-epoch",
            "--out-dir",
            "ex",
            "--circuit",
            "transfer_batch/d16-b8",
        ],
        "not a bridged chain's circuit",
    );
    let out = proofmill(
        &["example-epoch", "--out-dir", "ex", "--chains", "3,4,5"],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out));
    let genesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("ex/genesis.json")).unwrap())
            .unwrap();
    let write_state = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut state = genesis.clone();
        edit(&mut state);
        std::fs::write(cwd.join(name), state.to_string()).unwrap();
    };
    write_state("balance.json", &|s| {
        s["chains"]["3"]["balance"] = "lots".into()
    });
    write_state("root.json", &|s| {
        s["global_exit_root"] = format!("0x{}", "00".repeat(32)).into()
    });
    write_state("epoch-1.json", &|s| s["epoch"] = 1.into());
    let batch = "ex/epoch-1/chain-3.json";
    refused(
        &["epoch", "--state", "balance.json", batch, "--out", "e.json"],
        "chains.3.balance",
    );
    refused(
        &["epoch", "--state", "root.json", batch, "--out", "e.json"],
        "global_exit_root is 0x",
    );
    // A batch input is not a proof envelope.
    refused(
        &[
            "epoch",
            "--state",
            "ex/genesis.json",
            batch,
            "--out",
            "e.json",
        ],
        "not a proof envelope",
    );
    let two = "epoch(rollup/d8-t2-e1-c1,rollup/d8-t2-e1-c1)";
    refused(
        &[
            "settlement",
            "--circuit",
            "epoch(transfer_batch/d16-b8)",
            "--out-dir",
            "c",
        ],
        "not a bridged chain's circuit",
    );
    refused(
        &[
            "settlement",
            "--circuit",
            "aggregate(rollup/d8-t2-e1-c1,rollup/d8-t2-e1-c1)",
            "--out-dir",
            "c",
        ],
        "is not an epoch circuit",
    );
    refused(
        &[
            "settlement",
            "--circuit",
            two,
            "--state",
            "epoch-1.json",
            "--out-dir",
            "c",
        ],
        "starts at genesis (epoch 0)",
    );
    let out = proofmill(&["example-epoch", "--out-dir", "one", "--chains", "3"], cwd);
    assert!(out.status.success(), "{}", text(&out));
    refused(
        &[
            "settlement",
            "--circuit",
            two,
            "--state",
            "one/genesis.json",
            "--out-dir",
            "c",
        ],
        "registers 1 chains, but every proof",
    );
    assert!(!cwd.join("c").exists(), "nothing written on refusal");
}
