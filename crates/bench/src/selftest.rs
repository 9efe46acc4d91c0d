//! `proofmill selftest`: does the engine compute exactly what halo2 computes on this machine?
//!
//! Every backend (the CPU engine, and each usable GPU) runs MSMs and NTTs on fresh random
//! inputs at 2^10..2^max and is compared with the reference (halo2curves' MSM, halo2's FFT),
//! and random gate programs (the quotient's arithmetic) against the reference interpreter;
//! then a `transfer_batch` proof is made through each kind of backend and checked by the
//! stock verifier. Exit 0 when everything matched, 1 when anything did not.

use std::{sync::Arc, time::Instant};

use proofmill_accel::{
    conformance::{check_gates, check_msm_random, check_ntt},
    Backend, CpuBackend, CudaBackend, DeviceInventory,
};
use proofmill_prover::{
    engine::{DevicePool, EngineAccelerator},
    Prover, Transcript,
};

use crate::BenchError;

/// Largest CPU check: the reference MSM at 2^20 already takes seconds on a small machine.
const CPU_MAX_LOG: u32 = 20;

/// Runs the self-test, printing every check; `max_log` bounds the GPU sizes, `prove` adds the
/// proofs. Returns the number of checks that failed (0: the engine is exact here).
pub fn run(prover: &Prover, max_log: u32, prove: bool, seed: u64) -> Result<usize, BenchError> {
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
        // Gate programs: row counts that are and are not multiples of a block, a launch
        // that strides, programs from a few steps to hundreds.
        let start = Instant::now();
        let gates: Vec<_> = [(1000usize, 40usize), (1 << 16, 200), ((1 << 18) + 5, 400)]
            .into_iter()
            .enumerate()
            .filter_map(|(i, (rows, steps))| {
                check_gates(backend.as_ref(), rows, steps, seed ^ (0x6a7e + i as u64)).err()
            })
            .collect();
        println!(
            "  gates  {:<8} ({:.2}s; 3 random programs up to 2^18 rows)",
            if gates.is_empty() { "ok" } else { "MISMATCH" },
            start.elapsed().as_secs_f64()
        );
        for e in gates {
            println!("        {e}");
            failures += 1;
        }
    }

    if prove {
        let circuit = proofmill_circuits::lookup("transfer_batch/d16-b8")?;
        let input = circuit.example_input(seed);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // One proof per backend, each on a pool of threads carrying that backend's engine
        // (as the job server's device workers prove).
        for (backend, _) in &backends {
            let description = backend.description();
            let engine = Arc::new(EngineAccelerator::new(backend.clone()));
            let pool = match DevicePool::new("selftest", engine.clone(), threads) {
                Ok(pool) => pool,
                Err(e) => {
                    println!("proof with {description}: FAILED: {e}");
                    failures += 1;
                    continue;
                }
            };
            let start = Instant::now();
            match pool.run(|| prover.prove(&circuit, &input, Transcript::Poseidon, &|_| {})) {
                Ok(_) => {
                    let stats = engine.stats();
                    println!(
                        "proof of {} with {description}: verified ({:.1}s; {} MSMs, {} FFTs, {} quotient parts on the engine, {} failed over to halo2)",
                        circuit.name(),
                        start.elapsed().as_secs_f64(),
                        stats.msm_calls,
                        stats.fft_calls,
                        stats.quotient_calls,
                        stats.errors
                    );
                    if stats.errors > 0 {
                        failures += 1;
                    }
                }
                Err(e) => {
                    println!("proof with {description}: FAILED: {e}");
                    failures += 1;
                }
            }
        }
    }

    if failures == 0 {
        println!("selftest passed");
    } else {
        println!("selftest FAILED: {failures} problem(s) above");
    }
    Ok(failures)
}

fn verdict<E>(result: &Result<(), E>) -> &'static str {
    if result.is_ok() {
        "ok"
    } else {
        "MISMATCH"
    }
}
