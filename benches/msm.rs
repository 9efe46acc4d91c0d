//! MSM: proofmill-accel's CPU Pippenger against halo2curves' `best_multiexp` (what halo2
//! commits with), 2^12..2^20, same inputs, side by side. Bases are loaded once (as the
//! prover does with its SRS); only the MSM is timed.
//!
//! `cargo bench -p proofmill --bench msm` (add `-- --quick` for a fast pass).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halo2_proofs::arithmetic::best_multiexp;
use proofmill_accel::conformance::{random_bases, random_scalars};
use proofmill_accel::{Backend, CpuBackend, MsmConfig};

fn msm(c: &mut Criterion) {
    let cpu = CpuBackend::new();
    let max_log = 20;
    let bases = random_bases(1 << max_log, 1);
    let scalars = random_scalars(1 << max_log, 2);
    let handle = cpu.load_bases(&bases).expect("load bases");
    let mut group = c.benchmark_group("msm");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for log_n in (12..=max_log).step_by(2) {
        let n = 1usize << log_n;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("proofmill_cpu", log_n), &n, |b, &n| {
            b.iter(|| {
                cpu.msm(&handle, &scalars[..n], &MsmConfig::default())
                    .expect("msm")
            })
        });
        group.bench_with_input(
            BenchmarkId::new("halo2curves_best_multiexp", log_n),
            &n,
            |b, &n| b.iter(|| best_multiexp(&scalars[..n], &bases[..n])),
        );
    }
    group.finish();
}

criterion_group!(benches, msm);
criterion_main!(benches);
