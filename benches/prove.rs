//! Proving `transfer_batch` end to end (witness layout, halo2 `create_proof` with SHPLONK, and
//! the stock-verifier self-check) at two batch sizes on the same depth-16 tree.
//!
//! Keys and the development SRS are generated before timing starts and cached under
//! `target/bench-data`. Run: `cargo bench --bench prove`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, Criterion};
use proofmill_circuits::{transfer_batch::TransferBatchConfig, CatalogCircuit};
use proofmill_prover::{Prover, Transcript};

fn prove(c: &mut Criterion) {
    let prover = Prover::new(std::path::Path::new("target/bench-data"));
    let mut group = c.benchmark_group("prove_transfer_batch");
    group.sample_size(10);
    for config in [
        TransferBatchConfig::new(16, 2),
        TransferBatchConfig::new(16, 8),
    ] {
        let circuit = CatalogCircuit::new(config);
        let input = circuit.example_input(1);
        prover
            .keys(&circuit, proofmill_prover::KeySource::Generate, &|_| {})
            .expect("keygen");
        let label = format!(
            "d{}-b{} (k={})",
            config.depth,
            config.batch_size,
            circuit.shape().k
        );
        group.bench_function(label, |b| {
            b.iter(|| {
                prover
                    .prove(&circuit, &input, Transcript::Poseidon, &|_| {})
                    .expect("proves")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, prove);
criterion_main!(benches);
