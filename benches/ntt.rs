//! NTT: proofmill-accel's CPU NTT against halo2's `best_fft` (what `EvaluationDomain` runs),
//! forward transforms of 2^12..2^22, same inputs, side by side. Twiddle tables are built
//! outside the timed loop for both (ours cached in the backend, halo2's `FFTData`).
//!
//! `cargo bench -p proofmill --bench ntt` (add `-- --quick` for a fast pass).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ff::Field;
use halo2_proofs::arithmetic::best_fft;
use halo2_proofs::fft::recursive::FFTData;
use halo2curves::bn256::Fr;
use proofmill_accel::conformance::random_scalars;
use proofmill_accel::{omega_for, Backend, CpuBackend, NttConfig};

fn ntt(c: &mut Criterion) {
    let cpu = CpuBackend::new();
    let mut group = c.benchmark_group("ntt");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for log_n in (12..=22u32).step_by(2) {
        let n = 1usize << log_n;
        let input = random_scalars(n, log_n as u64);
        let omega = omega_for(log_n);
        let data = FFTData::<Fr>::new(n, omega, omega.invert().unwrap_or(Fr::ONE));
        let mut warm = input.clone();
        cpu.ntt(&mut warm, log_n, &NttConfig::forward())
            .expect("ntt");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("proofmill_cpu", log_n),
            &log_n,
            |b, &log_n| {
                b.iter_batched_ref(
                    || input.clone(),
                    |v| cpu.ntt(v, log_n, &NttConfig::forward()).expect("ntt"),
                    BatchSize::LargeInput,
                )
            },
        );
        group.bench_with_input(
            BenchmarkId::new("halo2_best_fft", log_n),
            &log_n,
            |b, &log_n| {
                b.iter_batched_ref(
                    || input.clone(),
                    |v| best_fft(v, omega, log_n, &data, false),
                    BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ntt);
criterion_main!(benches);
