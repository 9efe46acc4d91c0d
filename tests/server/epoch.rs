//! Epoch settlement end to end, for real: `proofmill example-epoch` writes two chains' signed
//! batches over two epochs (exits in epoch 1 that the other chain claims in epoch 2); epoch 1
//! is proven through the job server (prove jobs, then an `"epoch"` job over them, final, with
//! its EVM gas in the result), epoch 2 through the CLI (`proofmill prove`, `proofmill epoch
//! --final`); `proofmill settlement` writes the verifier and the settlement contract, which are
//! deployed on a real local Ethereum node (anvil) and settle epoch 1 then epoch 2 with real
//! transactions; a replayed epoch and a tampered proof revert.
//!
//! The heaviest test of this binary (one epoch keygen and two k=21 epoch proofs, ~8 GB each).
//! It needs anvil and cast (`scripts/anvil-setup.sh`; `PROOFMILL_ANVIL_DIR`) and `solc` on
//! PATH (`scripts/solc-setup.sh`); without them it says SKIPPED, unless
//! `PROOFMILL_REQUIRE_ANVIL=1` (CI) makes that a failure.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use proofmill_prover::{
    aggregate::evm_calldata,
    epoch::{EpochValues, SettledState},
    ProofEnvelope,
};
use serde_json::{json, Value};

use super::{json_of, shared_data_dir, submit, terminal, wait_for, TestServer};

const CHAIN_CIRCUIT: &str = "rollup/d8-t2-e1-c1";
/// anvil's first development account.
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// EIP-170: the largest runtime code a contract may have on Ethereum.
const EIP170_LIMIT: usize = 24_576;

/// The directory holding `anvil` and `cast`, or `None` (and a loud SKIPPED) when the test
/// cannot run here.
fn tools() -> Option<PathBuf> {
    let required = std::env::var("PROOFMILL_REQUIRE_ANVIL").is_ok_and(|v| v == "1");
    let dir = std::env::var_os("PROOFMILL_ANVIL_DIR").map(PathBuf::from);
    let solc = Command::new("solc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = match &dir {
        None => {
            Some("PROOFMILL_ANVIL_DIR is not set (scripts/anvil-setup.sh DIR prints it)".to_owned())
        }
        Some(d) if !d.join("anvil").exists() || !d.join("cast").exists() => {
            Some(format!("{} has no anvil and cast", d.display()))
        }
        Some(_) if !solc => Some("no solc on PATH (scripts/solc-setup.sh DIR)".to_owned()),
        Some(_) => None,
    };
    match missing {
        None => dir,
        Some(why) if required => panic!("PROOFMILL_REQUIRE_ANVIL=1 but {why}"),
        Some(why) => {
            eprintln!("SKIPPED: the epoch settlement test needs anvil, cast and solc: {why}");
            None
        }
    }
}

fn proofmill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofmill"))
        .arg("--data-dir")
        .arg(shared_data_dir())
        .args(args)
        .output()
        .unwrap()
}

fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A refusal: non-zero exit and an error naming `needles`.
fn refused(what: &str, out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} was accepted: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: {needle:?} not in {stderr}"
        );
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!(
        "[epoch test] {what}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    out
}

/// The value a batch moves across the bridge: (claimed, exited).
fn bridged(batch: &Value) -> (u128, u128) {
    let sum = |list: &Value, amount: &dyn Fn(&Value) -> &Value| {
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| u128::from(amount(i).as_u64().unwrap()))
                    .sum()
            })
            .unwrap_or(0)
    };
    (
        sum(&batch["claims"], &|c| &c["exit"]["amount"]),
        sum(&batch["exits"], &|e| &e["amount"]),
    )
}

/// A local Ethereum node and the client that talks to it.
struct Node {
    anvil: Child,
    cast: PathBuf,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

impl Node {
    fn start(tools: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let anvil = Command::new(tools.join("anvil"))
            .args(["--port", &port.to_string(), "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let node = Self {
            anvil,
            cast: tools.join("cast"),
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while !node.cast(&["chain-id"]).status.success() {
            assert!(start.elapsed() < Duration::from_secs(30), "anvil not up");
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    fn cast(&self, args: &[&str]) -> Output {
        Command::new(&self.cast)
            .args(args)
            .env("ETH_RPC_URL", &self.url)
            .output()
            .unwrap()
    }

    /// Sends a transaction; its receipt, which must say it succeeded.
    fn send(&self, what: &str, args: &[&str]) -> Value {
        let mut all = vec!["send", "--private-key", DEV_KEY, "--json"];
        all.extend_from_slice(args);
        let receipt: Value = serde_json::from_str(&succeeded(what, &self.cast(&all))).unwrap();
        assert_eq!(receipt["status"], "0x1", "{what}: {receipt}");
        receipt
    }

    /// A transaction that must revert with custom error `error` (cast estimates the gas
    /// first, so it is refused before it is sent).
    fn reverts(&self, what: &str, args: &[&str], error: &str) {
        let selector = succeeded("cast sig", &self.cast(&["sig", error]));
        let mut all = vec!["send", "--private-key", DEV_KEY, "--json"];
        all.extend_from_slice(args);
        let out = self.cast(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what} did not revert: {stderr}");
        assert!(
            stderr.contains(selector.trim()),
            "{what}: reverted, but not with {error} ({}): {stderr}",
            selector.trim()
        );
    }

    fn deploy(&self, what: &str, code: &str) -> String {
        let receipt = self.send(what, &["--create", code]);
        receipt["contractAddress"].as_str().unwrap().to_owned()
    }

    fn code_size(&self, address: &str) -> usize {
        succeeded("cast codesize", &self.cast(&["codesize", address]))
            .trim()
            .parse()
            .unwrap()
    }

    fn call(&self, address: &str, signature: &str, args: &[&str]) -> String {
        let mut all = vec!["call", address, signature];
        all.extend_from_slice(args);
        succeeded("cast call", &self.cast(&all)).trim().to_owned()
    }
}

fn gas(receipt: &Value) -> u64 {
    u64::from_str_radix(
        receipt["gasUsed"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

/// `chain(id)`'s raw return data: state root, exit root, balance as 32-byte words.
fn settled_words(state: &SettledState, id: u64) -> String {
    let chain = &state.chains[&id];
    format!(
        "0x{}{}{:064x}",
        proofmill_circuits::field::to_hex(&chain.state_root).trim_start_matches("0x"),
        proofmill_circuits::field::to_hex(&chain.exit_root).trim_start_matches("0x"),
        chain.balance
    )
}

fn calldata_of(envelope: &ProofEnvelope) -> String {
    format!("0x{}", hex::encode(evm_calldata(envelope).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_epochs_of_two_chains_settle_on_a_real_ethereum_node() {
    let Some(tools) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ex = dir.path().join("ex");
    let path = |name: &str| dir.path().join(name);
    let file = |p: &Path| p.to_str().unwrap().to_owned();

    succeeded(
        "example-epoch",
        &proofmill(&[
            "example-epoch",
            "--out-dir",
            &file(&ex),
            "--circuit",
            CHAIN_CIRCUIT,
            "--chains",
            "1,2",
            "--epochs",
            "2",
        ]),
    );
    let genesis = SettledState::read(&ex.join("genesis.json")).unwrap();
    assert_eq!(genesis.epoch, 0);
    assert_eq!(genesis.chains.keys().copied().collect::<Vec<_>>(), [1, 2]);
    let batch =
        |epoch: u32, chain: u64| read_json(&ex.join(format!("epoch-{epoch}/chain-{chain}.json")));
    for chain in [1, 2] {
        let (claimed, exited) = bridged(&batch(1, chain));
        assert!(claimed == 0 && exited > 0, "epoch 1 exits, claims nothing");
        let (claimed, _) = bridged(&batch(2, chain));
        assert!(claimed > 0, "epoch 2 claims epoch 1's exits");
    }

    // Epoch 1 through the job server: two prove jobs, and an epoch job over them.
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let base = server.url.clone();
    let mut prove_jobs = Vec::new();
    for chain in [1, 2] {
        let (status, accepted) = json_of(
            submit(
                c,
                &base,
                &json!({"type": "prove", "circuit": CHAIN_CIRCUIT, "input": batch(1, chain)}),
                None,
            )
            .await,
        )
        .await;
        assert_eq!(status.as_u16(), 202, "{accepted}");
        prove_jobs.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let genesis_json = read_json(&ex.join("genesis.json"));
    let mut bad_state = genesis_json.clone();
    bad_state["chains"]["1"]["balance"] = json!("-5");
    let (status, problem) = json_of(
        submit(
            c,
            &base,
            &json!({"type": "epoch", "inputs": [{"job": prove_jobs[0]}], "state": bad_state}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("state.chains.1.balance"),
        "{problem}"
    );
    let (status, accepted) = json_of(
        submit(
            c,
            &base,
            &json!({
                "type": "epoch",
                "inputs": [{"job": prove_jobs[1]}, {"job": prove_jobs[0]}],
                "state": genesis_json,
                "final": true
            }),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status.as_u16(), 202, "{accepted}");
    let epoch_job = accepted["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let view = wait_for(c, &base, &epoch_job, Duration::from_secs(3600), terminal).await;
    eprintln!(
        "[epoch test] epoch 1 through the server (prove jobs, keygen on first run, final epoch proof): {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["type"], "epoch", "{view}");
    assert_eq!(view["transcript"], "keccak", "{view}");
    assert_eq!(
        view["input_jobs"],
        json!([prove_jobs[1], prove_jobs[0]]),
        "{view}"
    );
    let job_gas = view["evm_gas"]
        .as_u64()
        .expect("a final proof carries its EVM gas");
    assert!(job_gas > 100_000, "{view}");
    assert_eq!(view["epoch"]["epoch"], 1, "{view}");
    let mut envelopes = Vec::new();
    for id in prove_jobs.iter().chain([&epoch_job]) {
        let response = c
            .get(server.url(&format!("/v1/jobs/{id}/proof")))
            .send()
            .await
            .unwrap();
        let (status, envelope) = json_of(response).await;
        assert_eq!(status.as_u16(), 200, "{envelope}");
        envelopes.push(envelope);
    }
    server.stop().await;
    let write = |name: &str, value: &Value| {
        std::fs::write(path(name), serde_json::to_string(value).unwrap()).unwrap();
        file(&path(name))
    };
    let p1 = [
        write("p1-1.json", &envelopes[0]),
        write("p1-2.json", &envelopes[1]),
    ];
    let e1_file = write("e1.json", &envelopes[2]);
    let e1 = ProofEnvelope::from_json(&std::fs::read_to_string(&e1_file).unwrap()).unwrap();
    let values = EpochValues::from_envelope(&e1).unwrap();
    assert_eq!(view["epoch"], serde_json::to_value(&values).unwrap());
    let state1 = genesis.after(&e1).unwrap();
    for chain in [1, 2] {
        let (claimed, exited) = bridged(&batch(1, chain));
        assert_eq!(
            state1.chains[&chain].balance,
            genesis.chains[&chain].balance + claimed - exited,
            "pessimistic accounting of chain {chain}"
        );
    }
    assert_ne!(state1.global_exit_root, genesis.global_exit_root);
    std::fs::write(path("state1.json"), serde_json::to_string(&state1).unwrap()).unwrap();
    let state1_file = file(&path("state1.json"));

    // Epoch 2 through the CLI.
    let mut p2 = Vec::new();
    for chain in [1, 2] {
        let out = path(&format!("p2-{chain}.json"));
        let input = ex.join(format!("epoch-2/chain-{chain}.json"));
        timed(&format!("prove epoch 2, chain {chain}"), || {
            succeeded(
                "prove",
                &proofmill(&[
                    "prove",
                    "--circuit",
                    CHAIN_CIRCUIT,
                    "--input",
                    &file(&input),
                    "--out",
                    &file(&out),
                ]),
            )
        });
        p2.push(file(&out));
    }
    let genesis_file = file(&ex.join("genesis.json"));
    let scratch = file(&path("refused.json"));
    // Refused before proving, naming the file and what is wrong.
    refused(
        "epoch 2's batches from genesis",
        &proofmill(&[
            "epoch",
            "--state",
            &genesis_file,
            &p2[0],
            &p2[1],
            "--out",
            &scratch,
        ]),
        &[
            "p2-1.json (input 1)",
            "starts at state root",
            "last settled state",
        ],
    );
    refused(
        "two stretches of one chain",
        &proofmill(&[
            "epoch",
            "--state",
            &state1_file,
            &p2[0],
            &p2[0],
            "--out",
            &scratch,
        ]),
        &["both stretches of chain 1"],
    );
    refused(
        "epoch 1's batch again",
        &proofmill(&[
            "epoch",
            "--state",
            &state1_file,
            &p1[0],
            &p2[1],
            "--out",
            &scratch,
        ]),
        &["p1-1.json (input 1)", "starts at state root"],
    );
    let mut tampered: Value = read_json(Path::new(&p2[1]));
    let mut bytes =
        hex::decode(tampered["proof"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    bytes[64] ^= 1;
    tampered["proof"] = format!("0x{}", hex::encode(bytes)).into();
    let tampered_file = write("p2-2-tampered.json", &tampered);
    refused(
        "a tampered batch proof",
        &proofmill(&[
            "epoch",
            "--state",
            &state1_file,
            &p2[0],
            &tampered_file,
            "--out",
            &scratch,
        ]),
        &["p2-2-tampered.json (input 2)", "does not verify"],
    );
    let e2_file = file(&path("e2.json"));
    let state2_file = file(&path("state2.json"));
    let out = timed("epoch 2 through the CLI (final)", || {
        succeeded(
            "epoch 2",
            &proofmill(&[
                "epoch",
                "--state",
                &state1_file,
                &p2[1],
                &p2[0],
                "--out",
                &e2_file,
                "--next-state",
                &state2_file,
                "--final",
            ]),
        )
    });
    assert!(out.contains("EVM verification gas: "), "{out}");
    let e2 = ProofEnvelope::from_json(&std::fs::read_to_string(&e2_file).unwrap()).unwrap();
    let state2 = SettledState::read(Path::new(&state2_file)).unwrap();
    assert_eq!(state2, state1.after(&e2).unwrap());
    for chain in [1, 2] {
        let (claimed, exited) = bridged(&batch(2, chain));
        assert_eq!(
            state2.chains[&chain].balance,
            state1.chains[&chain].balance + claimed - exited
        );
    }

    // The contracts, and the settlement on a real node.
    let contracts = path("contracts");
    let out = timed(
        "proofmill settlement (Solidity verifier and settlement contract)",
        || {
            succeeded(
                "settlement",
                &proofmill(&[
                    "settlement",
                    "--proof",
                    &e1_file,
                    "--state",
                    &genesis_file,
                    "--out-dir",
                    &file(&contracts),
                ]),
            )
        },
    );
    assert!(
        out.contains(&format!("{job_gas} gas")),
        "the job's gas is the verifier's: {out}"
    );
    let hex_file = |name: &str| {
        format!(
            "0x{}",
            std::fs::read_to_string(contracts.join(name))
                .unwrap()
                .trim()
        )
    };
    let node = Node::start(&tools);
    let verifier = node.deploy("deploy the verifier", &hex_file("Verifier.bin"));
    let args = read_json(&contracts.join("constructor.json"));
    let list = |key: &str| {
        format!(
            "[{}]",
            args[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let encoded = succeeded(
        "cast abi-encode",
        &node.cast(&[
            "abi-encode",
            "constructor(address,uint256,uint256[],uint256[],uint256[],uint256[])",
            &verifier,
            args["globalExitRoot"].as_str().unwrap(),
            &list("chainIds"),
            &list("stateRoots"),
            &list("exitRoots"),
            &list("balances"),
        ]),
    );
    let settlement = node.deploy(
        "deploy the settlement",
        &format!(
            "{}{}",
            hex_file("Settlement.bin"),
            encoded.trim().trim_start_matches("0x")
        ),
    );
    let verifier_size = node.code_size(&verifier);
    let settlement_size = node.code_size(&settlement);
    assert!(
        verifier_size > 0 && verifier_size <= EIP170_LIMIT,
        "verifier {verifier_size} bytes"
    );
    assert!(
        settlement_size > 0 && settlement_size <= EIP170_LIMIT,
        "settlement {settlement_size} bytes"
    );
    let calldata1 = hex_file("settle.calldata.hex");
    assert_eq!(calldata1, calldata_of(&e1));
    let calldata2 = calldata_of(&e2);

    // Epoch 2 cannot come first; epoch 1 settles; replaying it reverts.
    node.reverts(
        "epoch 2 before epoch 1",
        &[&settlement, "settle(bytes)", &calldata2],
        "StaleEpoch(uint256,uint256)",
    );
    let settled1 = node.send(
        "settle epoch 1",
        &[&settlement, "settle(bytes)", &calldata1],
    );
    assert_eq!(node.call(&settlement, "epoch()(uint256)", &[]), "1");
    for chain in [1, 2] {
        assert_eq!(
            node.call(&settlement, "chain(uint256)", &[&chain.to_string()]),
            settled_words(&state1, chain)
        );
    }
    assert_eq!(
        node.call(&settlement, "globalExitRoot()", &[]),
        proofmill_circuits::field::to_hex(&state1.global_exit_root)
    );
    node.reverts(
        "replayed epoch 1",
        &[&settlement, "settle(bytes)", &calldata1],
        "StaleEpoch(uint256,uint256)",
    );
    // A tampered proof of epoch 2 (one byte of the proof, after the public inputs).
    let mut bytes = hex::decode(calldata2.trim_start_matches("0x")).unwrap();
    let position = 32 * e2.instances[0].len() + 100;
    bytes[position] ^= 1;
    node.reverts(
        "a tampered epoch 2 proof",
        &[
            &settlement,
            "settle(bytes)",
            &format!("0x{}", hex::encode(bytes)),
        ],
        "InvalidProof()",
    );
    let settled2 = node.send(
        "settle epoch 2",
        &[&settlement, "settle(bytes)", &calldata2],
    );
    assert_eq!(node.call(&settlement, "epoch()(uint256)", &[]), "2");
    for chain in [1, 2] {
        assert_eq!(
            node.call(&settlement, "chain(uint256)", &[&chain.to_string()]),
            settled_words(&state2, chain)
        );
    }
    eprintln!(
        "[epoch test] 2 chains: settle gas epoch 1 {}, epoch 2 {}; the verifier alone (revm) {job_gas}; runtime code: verifier {verifier_size} bytes, settlement {settlement_size} bytes; epoch proof {} bytes, {} public inputs",
        gas(&settled1),
        gas(&settled2),
        e2.proof_bytes().unwrap().len(),
        e2.instances[0].len()
    );
}
