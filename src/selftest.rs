//! `proofmill selftest`: does the engine compute exactly what halo2 computes on this machine?
//!
//! Every backend (the CPU engine, and each usable GPU) runs MSMs and NTTs on fresh random
//! inputs at 2^10..2^max and is compared with the reference (halo2curves' MSM, halo2's FFT);
//! then a `transfer_batch` proof is made through each kind of backend and checked by the
//! stock verifier. Exit 0 when everything matched, 1 when anything did not.

use std::{process::ExitCode, sync::Arc, time::Instant};

use anyhow::Result;
use proofmill_accel::{
    conformance::{check_msm_random, check_ntt},
    Backend, CpuBackend, CudaBackend, DeviceInventory,
};
use proofmill_prover::{
    engine::{install, Engine},
    Prover, Transcript,
};

/// Largest CPU check: the reference MSM at 2^20 already takes seconds on a small machine.
const CPU_MAX_LOG: u32 = 20;

/// Runs the self-test; `max_log` bounds the GPU sizes, `prove` adds the proofs.
pub fn run(prover: &Prover, max_log: u32, prove: bool, seed: u64) -> Result<ExitCode> {
    let inventory = DeviceInventory::probe();
    let mut backends: Vec<(Arc<dyn Backend>, u32)> =
        vec![(Arc::new(CpuBackend::new()), max_log.min(CPU_MAX_LOG))];
    let mut failures = 0usize;
    for gpu in &inventory.gpus {
        if !gpu.usable() {
            println!(
                "GPU {} ({}): not usable: {}",
                gpu.index,
                gpu.name,
                gpu.unusable_reason.as_deref().unwrap_or("unknown reason")
            );
            continue;
        }
        match CudaBackend::new(gpu.index as usize) {
            Ok(b) => backends.push((Arc::new(b), max_log)),
            Err(e) => {
                println!("GPU {} ({}): FAILED to open: {e}", gpu.index, gpu.name);
                failures += 1;
            }
        }
    }
    let no_gpu = backends.len() == 1;
    if no_gpu {
        println!(
            "!!!!!!!! GPU checks SKIPPED: no usable GPU ({}) — only the CPU engine is tested !!!!!!!!",
            inventory
                .no_gpu_reason
                .as_deref()
                .unwrap_or("none found")
        );
    }

    for (backend, top) in &backends {
        println!("{}", backend.description());
        for log_n in 10..=*top {
            let case_seed = seed ^ u64::from(log_n);
            let start = Instant::now();
            let msm = check_msm_random(backend.as_ref(), 1 << log_n, case_seed);
            let msm_time = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let ntt = check_ntt(backend.as_ref(), log_n, 1, case_seed);
            let ntt_time = start.elapsed().as_secs_f64();
            println!(
                "  2^{log_n:<2}  MSM {:<8} ({msm_time:.2}s)  NTT {:<8} ({ntt_time:.2}s)",
                verdict(&msm),
                verdict(&ntt)
            );
            for e in [msm.err(), ntt.err()].into_iter().flatten() {
                println!("        {e}");
                failures += 1;
            }
        }
    }

    if prove {
        let circuit = proofmill_circuits::lookup("transfer_batch/d16-b8")?;
        let input = circuit.example_input(seed);
        let mut engines = vec![Engine::Cpu];
        if !no_gpu {
            engines.push(Engine::Cuda);
        }
        for engine in engines {
            let installed = match install(engine) {
                Ok(i) => i,
                Err(e) => {
                    println!("proof with the {engine} engine: FAILED: {e}");
                    failures += 1;
                    continue;
                }
            };
            let start = Instant::now();
            match prover.prove(&circuit, &input, Transcript::Poseidon, &|_| {}) {
                Ok(_) => {
                    let stats = installed
                        .accelerator
                        .as_ref()
                        .map(|a| a.stats())
                        .unwrap_or_default();
                    println!(
                        "proof of {} with {}: verified ({:.1}s; {} MSMs, {} FFTs on the engine)",
                        circuit.name(),
                        installed.description,
                        start.elapsed().as_secs_f64(),
                        stats.msm_calls,
                        stats.fft_calls
                    );
                }
                Err(e) => {
                    println!("proof with {}: FAILED: {e}", installed.description);
                    failures += 1;
                }
            }
        }
    }

    if failures == 0 {
        println!("selftest passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("selftest FAILED: {failures} problem(s) above");
        Ok(ExitCode::from(1))
    }
}

fn verdict<E>(result: &Result<(), E>) -> &'static str {
    if result.is_ok() {
        "ok"
    } else {
        "MISMATCH"
    }
}
