//! The quotient's coset parts (custom gates, permutation and lookup terms), the engine's
//! evaluation against halo2's own, side by side on the same parts of a real proof: every part
//! the prover offers is evaluated by the CPU engine and by halo2's code
//! (`accel::stock_quotient_part`), each timed, and the results compared. MSMs and FFTs go to
//! the CPU engine as usual.
//!
//! `cargo run --release -p proofmill-prover --example quotient_timing [CIRCUIT]`
//! (default `transfer_batch/d16-b8`; keys come from `PROOFMILL_DATA_DIR`, or are made in a
//! temporary directory).
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement tool

use std::sync::{Arc, Mutex};
use std::time::Instant;

use halo2_base::halo2_proofs::accel::{
    set_accelerator, stock_quotient_part, Accelerator, QuotientPart,
};
use halo2_base::halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use proofmill_prover::engine::EngineAccelerator;
use proofmill_prover::{Prover, Transcript};

/// One coset part: rows, lookups, engine seconds, halo2 seconds, equal results.
type Part = (usize, usize, f64, f64, bool);

#[derive(Debug)]
struct Timing {
    engine: EngineAccelerator,
    parts: Mutex<Vec<Part>>,
}

impl Accelerator for Timing {
    fn msm(&self, coeffs: &[Fr], bases: &[G1Affine]) -> Option<G1> {
        self.engine.msm(coeffs, bases)
    }
    fn fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) -> bool {
        self.engine.fft(a, omega, log_n, inverse)
    }
    fn coset_fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, shift: Fr) -> bool {
        self.engine.coset_fft(a, omega, log_n, shift)
    }
    fn ifft(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32, divisor: Fr) -> bool {
        self.engine.ifft(a, omega_inv, log_n, divisor)
    }
    fn quotient_part(&self, part: &QuotientPart<'_>, values: &mut [Fr]) -> bool {
        let mut stock = values.to_vec();
        let start = Instant::now();
        stock_quotient_part(part, &mut stock);
        let stock_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        if !self.engine.quotient_part(part, values) {
            values.copy_from_slice(&stock);
            return true;
        }
        let engine_s = start.elapsed().as_secs_f64();
        let equal = stock == *values;
        self.parts.lock().unwrap().push((
            values.len(),
            part.lookup_cosets.len(),
            engine_s,
            stock_s,
            equal,
        ));
        true
    }
}

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "transfer_batch/d16-b8".to_owned());
    let circuit = proofmill_circuits::lookup(&name).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("PROOFMILL_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_owned());
    let prover = Prover::new(&dir);
    let timing = Arc::new(Timing {
        engine: EngineAccelerator::new(Arc::new(proofmill_accel::CpuBackend::new())),
        parts: Mutex::new(Vec::new()),
    });
    set_accelerator(Some(timing.clone()));
    let start = Instant::now();
    prover
        .prove(
            &circuit,
            &circuit.example_input(1),
            Transcript::Poseidon,
            &|_| {},
        )
        .unwrap();
    set_accelerator(None);
    println!(
        "{name}: proof verified in {:.2} s (each coset part evaluated twice)",
        start.elapsed().as_secs_f64()
    );
    let parts = timing.parts.lock().unwrap();
    let (mut ours, mut stock) = (0.0, 0.0);
    for (i, (rows, lookups, e, s, equal)) in parts.iter().enumerate() {
        println!(
            "  part {i}: {rows} rows, {lookups} lookups: engine {:.1} ms, halo2 {:.1} ms ({:.2}x){}",
            e * 1e3,
            s * 1e3,
            s / e,
            if *equal { "" } else { "  MISMATCH" }
        );
        ours += e;
        stock += s;
    }
    println!(
        "  total: engine {:.1} ms, halo2 {:.1} ms: {:.2}x",
        ours * 1e3,
        stock * 1e3,
        stock / ours
    );
    assert!(
        parts.iter().all(|p| p.4),
        "the engine's quotient parts differ from halo2's"
    );
}
