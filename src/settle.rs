//! The epoch commands: `example-epoch`, `epoch` and `settlement`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use proofmill_prover::{
    aggregate::{compile_solidity, evm_calldata, evm_verify, ProofCircuit},
    epoch::{self, EpochValues, SettledState},
    KeySource, Prover, Transcript,
};

use crate::{
    output::{write_output, Spinner},
    proving::{circuit_of, read_envelope},
};

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `proofmill example-epoch`: genesis.json and, per epoch, one batch per chain.
pub fn example_epoch(
    circuit: &str,
    chains: &[u64],
    epochs: usize,
    seed: u64,
    out_dir: &Path,
) -> Result<ExitCode> {
    let catalog = proofmill_circuits::lookup(circuit)?;
    let Some(config) = catalog.config::<proofmill_circuits::rollup::RollupConfig>() else {
        bail!("{circuit} is not a bridged chain's circuit: example-epoch writes rollup/… batches");
    };
    let mut distinct = chains.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != chains.len() {
        bail!("--chains: each chain id once, e.g. 1,2,3");
    }
    if let Some(id) = chains.iter().find(|id| **id >= epoch::MAX_CHAINS as u64) {
        bail!(
            "--chains: chain id {id} is out of range (0 to {})",
            epoch::MAX_CHAINS - 1
        );
    }
    let example = epoch::example_epochs(config, chains, seed, epochs)?;
    let genesis = out_dir.join("genesis.json");
    write(
        &genesis,
        &format!("{}\n", serde_json::to_string_pretty(&example.genesis)?),
    )?;
    println!("{} (the settled state at genesis)", genesis.display());
    for (n, batches) in example.epochs.iter().enumerate() {
        for (chain, batch) in batches {
            let path = out_dir
                .join(format!("epoch-{}", n + 1))
                .join(format!("chain-{chain}.json"));
            write(
                &path,
                &format!("{}\n", serde_json::to_string_pretty(batch)?),
            )?;
            println!("{}", path.display());
        }
    }
    println!(
        "prove each batch with `proofmill prove --circuit {circuit} --input FILE --out FILE.proof`, then settle epoch 1 with `proofmill epoch --state {} PROOFS... --out epoch-1.proof --next-state epoch-1.state.json --final`",
        genesis.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `proofmill epoch`.
pub fn epoch(
    prover: &Prover,
    paths: &[PathBuf],
    state: &Path,
    out: &Path,
    next_state: Option<&Path>,
    final_proof: bool,
) -> Result<ExitCode> {
    let settled = SettledState::read(state)?;
    let inputs = paths
        .iter()
        .map(|p| read_envelope(p))
        .collect::<Result<Vec<_>>>()?;
    let spinner = Spinner::new(&format!(
        "epoch {} of {} chains",
        settled.epoch + 1,
        inputs.len()
    ));
    let start = Instant::now();
    let envelope = prover
        .epoch(&inputs, &settled, final_proof, KeySource::Generate, &|s| {
            spinner.stage(s)
        })
        // Name the file, not just the position, of the input at fault.
        .map_err(|e| crate::proving::name_inputs(e, paths))
        .context("cannot prove the epoch")?;
    write_output(Some(out), &envelope.to_json())?;
    spinner.finish(&format!(
        "{} ({} transcript) written to {} ({:.1}s, verified)",
        envelope.circuit,
        envelope.transcript,
        out.display(),
        start.elapsed().as_secs_f64()
    ));
    let next = settled.after(&envelope)?;
    if let Some(path) = next_state {
        write(path, &format!("{}\n", serde_json::to_string_pretty(&next)?))?;
        println!(
            "{} (the settled state after epoch {})",
            path.display(),
            next.epoch
        );
    }
    if final_proof {
        match prover.evm_gas(&envelope)? {
            Some(gas) => println!("EVM verification gas: {gas}"),
            None => eprintln!(
                "no solc on PATH: the EVM verification gas was not measured (scripts/solc-setup.sh DIR puts one in DIR)"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `proofmill settlement`: the verifier and the settlement contract of an epoch circuit.
pub fn settlement(
    prover: &Prover,
    out_dir: &Path,
    circuit: Option<&str>,
    proof: Option<&Path>,
    state: Option<&Path>,
) -> Result<ExitCode> {
    let envelope = proof.map(read_envelope).transpose()?;
    let name = circuit_of(envelope.as_ref(), circuit)?;
    let ProofCircuit::Epoch(children) = ProofCircuit::parse(&name)? else {
        bail!("{name} is not an epoch circuit (epoch(…)); `proofmill verifier` writes an aggregation's verifier");
    };
    if let Some(e) = &envelope {
        if e.transcript != Transcript::Keccak {
            bail!(
                "{}: a {} transcript proof cannot be settled on Ethereum; make it with `proofmill epoch --final`",
                proof.map(|p| p.display().to_string()).unwrap_or_default(),
                e.transcript
            );
        }
    }
    // The genesis is checked before minutes of key and verifier work, not after.
    let genesis = state
        .map(|path| -> Result<(&Path, SettledState)> {
            let genesis = SettledState::read(path)?;
            if genesis.epoch != 0 {
                bail!(
                    "{}: the settlement contract starts at genesis (epoch 0); this state is at epoch {}",
                    path.display(),
                    genesis.epoch
                );
            }
            if genesis.chains.len() < children.len() {
                bail!(
                    "{}: the state registers {} chains, but every proof of {name} settles {}: the contract could never settle",
                    path.display(),
                    genesis.chains.len(),
                    children.len()
                );
            }
            Ok((path, genesis))
        })
        .transpose()?;
    let circuit = ProofCircuit::Epoch(children.clone());
    let spinner = Spinner::new(&name);
    let generated = prover.evm_verifier(&circuit, KeySource::Generate, &|s| spinner.stage(s))?;
    spinner.clear();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let sol = out_dir.join("Verifier.sol");
    write(&sol, &generated.solidity)?;
    println!("{} ({} bytes)", sol.display(), generated.solidity.len());
    let settlement = epoch::settlement_solidity(children.len());
    let settlement_sol = out_dir.join("Settlement.sol");
    write(&settlement_sol, &settlement)?;
    println!(
        "{} ({} bytes, {} chains per epoch)",
        settlement_sol.display(),
        settlement.len(),
        children.len()
    );
    let Some(verifier) = generated.bytecode else {
        eprintln!("no solc on PATH: wrote the Solidity sources only (install solc, or `scripts/solc-setup.sh DIR` and add DIR to PATH, for the bytecode)");
        return Ok(ExitCode::SUCCESS);
    };
    let bin = out_dir.join("Verifier.bin");
    write(&bin, &hex::encode(&verifier))?;
    println!(
        "{} (deployment bytecode, {} bytes)",
        bin.display(),
        verifier.len()
    );
    let settlement_bin =
        compile_solidity(&settlement)?.context("solc printed no bytecode for Settlement.sol")?;
    let bin = out_dir.join("Settlement.bin");
    write(&bin, &hex::encode(&settlement_bin))?;
    println!(
        "{} (deployment bytecode, {} bytes; constructor(address verifier, uint256 globalExitRoot, uint256[] chainIds, uint256[] stateRoots, uint256[] exitRoots, uint256[] balances))",
        bin.display(),
        settlement_bin.len()
    );
    if let Some((path, genesis)) = genesis {
        let args = out_dir.join("constructor.json");
        let values = serde_json::json!({
            "globalExitRoot": proofmill_circuits::field::to_hex(&genesis.global_exit_root),
            "chainIds": genesis.chains.keys().map(|id| id.to_string()).collect::<Vec<_>>(),
            "stateRoots": genesis.chains.values().map(|c| proofmill_circuits::field::to_hex(&c.state_root)).collect::<Vec<_>>(),
            "exitRoots": genesis.chains.values().map(|c| proofmill_circuits::field::to_hex(&c.exit_root)).collect::<Vec<_>>(),
            "balances": genesis.chains.values().map(|c| c.balance.to_string()).collect::<Vec<_>>(),
        });
        write(
            &args,
            &format!("{}\n", serde_json::to_string_pretty(&values)?),
        )?;
        println!(
            "{} (the settlement's constructor arguments after the verifier's address, from {})",
            args.display(),
            path.display()
        );
    }
    if let (Some(envelope), Some(path)) = (&envelope, proof) {
        let values = EpochValues::from_envelope(envelope)?;
        let calldata = out_dir.join("settle.calldata.hex");
        write(&calldata, &hex::encode(evm_calldata(envelope)?))?;
        println!(
            "{} (the `bytes` argument of settle() for epoch {} from {})",
            calldata.display(),
            values.epoch,
            path.display()
        );
        // The bytecode just compiled, not a second compilation through `Prover::evm_gas`.
        match evm_verify(&verifier, envelope) {
            Ok(gas) => println!("the verifier accepts it in an EVM: {gas} gas"),
            Err(reason) => {
                println!(
                    "INVALID: the verifier rejects {} in an EVM: {reason}",
                    path.display()
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
