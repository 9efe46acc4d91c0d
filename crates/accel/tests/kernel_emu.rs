//! The MSM, NTT and gate kernels run without a GPU: `kernels/test/kernel_emu.cpp` compiles
//! `kernels/msm.cu`, `kernels/ntt.cu` and `kernels/gates.cu` as host C++ under a small CUDA
//! emulation (real threads and barriers for the kernels that synchronise) and runs the same
//! kernel sequence as the CUDA backend, on words laid out by `proofmill_accel::cuda::layout`.
//! Results are compared with halo2curves (the gate kernel with the reference interpreter).
//! This checks the kernels' logic (Booth digits, the counting sort, bucket and window
//! reduction, the NTT stages and scaling, the gate program's decoding, rotations and slots);
//! what only a GPU does is left to `proofmill selftest` on a GPU machine. Skips loudly when
//! g++ is missing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use ff::Field;
use group::Group;
use group::{prime::PrimeCurveAffine, Curve};
use halo2curves::bn256::{Fr, G1Affine, G1};
use proofmill_accel::conformance::{
    random_bases, random_gate_program, random_scalars, reference_gates, reference_ntt, SeededRng,
};
use proofmill_accel::cuda::layout::{self, MsmShape};
use proofmill_accel::gates::{GateInputs, GateProgram};
use proofmill_accel::{NttConfig, NttDirection};
use rayon::prelude::*;

mod common;

/// A scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proofmill-kemu-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the emulator, or returns None (after a loud message) when g++ is missing.
fn build_emulator(dir: &Path) -> Option<PathBuf> {
    common::build_host_program("kernel_emu.cpp", "c++20", dir, "kernel_emu")
}

fn write_words(path: &Path, words: &[u32]) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_words(path: &Path) -> Vec<u32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn run(exe: &Path, args: &[String]) {
    let out = Command::new(exe)
        .args(args)
        .output()
        .expect("run kernel_emu");
    assert!(
        out.status.success(),
        "kernel_emu {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn emulated_msm(exe: &Path, dir: &Path, bases: &[G1Affine], scalars: &[Fr], c: u32) -> G1Affine {
    let shape = MsmShape::new(scalars.len(), Some(c));
    let (b, s, o) = (dir.join("bases"), dir.join("scalars"), dir.join("sums"));
    write_words(&b, &layout::bases_to_words(bases));
    write_words(&s, &layout::scalars_to_words(scalars));
    let mut args = vec![
        "msm".to_string(),
        shape.c.to_string(),
        scalars.len().to_string(),
        b.display().to_string(),
        s.display().to_string(),
        o.display().to_string(),
        layout::BUCKET_CHUNK.to_string(),
    ];
    // The emulator also checks that no level makes more chunks than its bound.
    args.extend(
        layout::chunk_levels(scalars.len(), &shape)
            .iter()
            .map(ToString::to_string),
    );
    run(exe, &args);
    layout::combine_window_sums(&read_words(&o), &shape)
        .unwrap_or_else(|e| panic!("msm n={} c={c}: {e}", scalars.len()))
        .to_affine()
}

/// Sum of `s_i * P_i` by plain scalar multiplication (`msm_best` itself cannot take
/// identity or duplicate bases: its batch-affine additions assume distinct points).
fn naive_msm(bases: &[G1Affine], scalars: &[Fr]) -> G1Affine {
    bases
        .par_iter()
        .zip(scalars.par_iter())
        .map(|(p, s)| G1::from(*p) * s)
        .reduce(G1::identity, |a, b| a + b)
        .to_affine()
}

#[test]
fn msm_kernels_match_a_naive_sum() {
    let dir = scratch("msm");
    let Some(exe) = build_emulator(&dir) else {
        return;
    };
    // (n, window bits): tiny and odd sizes, the GPU default window for the size, and widths
    // where 255 is not a multiple of c (a short top window).
    let cases = [
        (1usize, None),
        (3, Some(4)),
        (100, None),
        (1000, Some(7)),
        (4097, None),
        (1 << 13, Some(13)),
        (1 << 14, None),
        // The GPU default's widths at 2^16 and 2^24 points (11 and 15 bits).
        (2048, Some(11)),
        (3000, Some(15)),
    ];
    for (case, &(n, c)) in cases.iter().enumerate() {
        let seed = 100 + case as u64;
        let mut bases = random_bases(n, seed);
        let mut scalars = random_scalars(n, seed + 1);
        // Awkward inputs: an identity base, a duplicate and a negated base, zero, one and
        // minus-one scalars.
        if n >= 8 {
            bases[1] = G1Affine::identity();
            bases[2] = bases[3];
            bases[4] = -bases[5];
            scalars[0] = Fr::ZERO;
            scalars[6] = Fr::ONE;
            scalars[7] = -Fr::ONE;
        }
        let c = c.unwrap_or(MsmShape::new(n, None).c as u32);
        let got = emulated_msm(&exe, &dir, &bases, &scalars, c);
        assert_eq!(
            got,
            naive_msm(&bases, &scalars),
            "emulated MSM n={n} c={c} differs from the naive sum"
        );
    }
    // All-zero scalars give the identity.
    let bases = random_bases(64, 7);
    let got = emulated_msm(&exe, &dir, &bases, &[Fr::ZERO; 64], 6);
    assert_eq!(got, G1Affine::identity());
    // Full buckets, summed over several chunk levels: every scalar equal (one bucket per
    // window holds all n points; n = 4097 takes four levels), and small scalars.
    let n = 4097;
    let bases = random_bases(n, 8);
    for scalars in [
        vec![Fr::ONE; n],
        vec![-Fr::from(5u64); n],
        (0..n as u64).map(|i| Fr::from(i % 16)).collect::<Vec<_>>(),
    ] {
        for c in [4, 8, 13] {
            let got = emulated_msm(&exe, &dir, &bases, &scalars, c);
            assert_eq!(got, naive_msm(&bases, &scalars), "full buckets, c={c}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn emulated_ntt(exe: &Path, dir: &Path, values: &[Fr], log_n: u32, cfg: &NttConfig) -> Vec<Fr> {
    let n = 1usize << log_n;
    let batch = values.len() / n;
    let inverse = cfg.direction == NttDirection::Inverse;
    let path = |name: &str| dir.join(name).display().to_string();
    write_words(&dir.join("data"), &layout::fr_to_words(values));
    write_words(&dir.join("tw"), &layout::twiddle_words(log_n, inverse));
    let mut args = vec![
        "ntt".to_string(),
        log_n.to_string(),
        batch.to_string(),
        u8::from(inverse).to_string(),
        path("data"),
        path("tw"),
        path("out"),
    ];
    let scaling = |args: &mut Vec<String>, which: &str, g: Fr, scale: Fr| {
        let (lo, hi, bits) = layout::scale_tables(log_n, g, scale);
        write_words(&dir.join(format!("{which}-lo")), &lo);
        write_words(&dir.join(format!("{which}-hi")), &hi);
        args.extend([
            path(&format!("{which}-lo")),
            path(&format!("{which}-hi")),
            bits.to_string(),
        ]);
    };
    // The same scalings as CudaBackend::ntt_chunk: g^i before a forward coset transform,
    // n^-1 g^-i after an inverse one.
    match (inverse, cfg.coset) {
        (false, Some(g)) => scaling(&mut args, "pre", g, Fr::ONE),
        (false, None) => {}
        (true, coset) => {
            let (g_inv, n_inv) = layout::inverse_scaling(log_n, coset);
            args.extend(["-".to_string(), "-".to_string(), "0".to_string()]);
            scaling(&mut args, "post", g_inv, n_inv);
        }
    }
    run(exe, &args);
    layout::words_to_fr(&read_words(&dir.join("out")))
        .unwrap_or_else(|e| panic!("ntt log_n={log_n}: {e}"))
}

#[test]
fn ntt_kernels_match_halo2() {
    let dir = scratch("ntt");
    let Some(exe) = build_emulator(&dir) else {
        return;
    };
    let coset = Fr::from(7u64);
    // Sizes below, at and above the shared-memory block (2^10), so both the shared and the
    // global stages run; batches of two.
    for (case, log_n) in [1u32, 2, 5, 10, 11, 13].into_iter().enumerate() {
        for cfg in [
            NttConfig::forward(),
            NttConfig::inverse(),
            NttConfig {
                coset: Some(coset),
                ..NttConfig::forward()
            },
            NttConfig {
                coset: Some(coset),
                ..NttConfig::inverse()
            },
        ] {
            let values = random_scalars(2 << log_n, 300 + case as u64);
            let got = emulated_ntt(&exe, &dir, &values, log_n, &cfg);
            let mut expected = values.clone();
            for chunk in expected.chunks_mut(1 << log_n) {
                reference_ntt(chunk, log_n, &cfg);
            }
            assert!(
                got == expected,
                "emulated NTT log_n={log_n} {cfg:?} differs from halo2"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kernels/gates.cu` over `rows` rows with `grid` blocks, as `CudaBackend::evaluate_gates`
/// launches it.
fn emulated_gates(
    exe: &Path,
    dir: &Path,
    program: &GateProgram,
    inputs: &GateInputs<'_>,
    values: &[Fr],
    grid: u32,
) -> Vec<Fr> {
    let rows = values.len();
    let path = |name: &str| dir.join(name).display().to_string();
    let columns = &inputs.columns[..program.columns()];
    // Column after column, as CudaBackend::evaluate_gates uploads them.
    let column_words: Vec<u32> = columns
        .iter()
        .flat_map(|c| layout::fr_to_words(c))
        .collect();
    write_words(&dir.join("program"), &program.device_words());
    write_words(
        &dir.join("scalars"),
        &layout::fr_to_words(&inputs.scalars[..program.scalars()]),
    );
    write_words(&dir.join("columns"), &column_words);
    let rotations: Vec<u32> = program.rotations().iter().map(|&r| r as u32).collect();
    write_words(&dir.join("rotations"), &rotations);
    write_words(&dir.join("values"), &layout::fr_to_words(values));
    run(
        exe,
        &[
            "gates".to_string(),
            path("program"),
            path("scalars"),
            path("columns"),
            path("rotations"),
            rows.to_string(),
            path("values"),
            path("out"),
            program.slots().to_string(),
            grid.to_string(),
        ],
    );
    layout::words_to_fr(&read_words(&dir.join("out"))).unwrap_or_else(|e| panic!("gates: {e}"))
}

#[test]
fn gate_kernel_matches_the_reference_interpreter() {
    let dir = scratch("gates");
    let Some(exe) = build_emulator(&dir) else {
        return;
    };
    for (rows, steps, seed) in [
        (1usize, 0usize, 1u64),
        (5, 9, 2),
        (300, 60, 3),
        (1000, 250, 4),
    ] {
        let mut rng = SeededRng::new(seed);
        let (program_steps, rotations) = random_gate_program(&mut rng, 4, 5, steps);
        let program = GateProgram::new(&program_steps, &rotations).unwrap();
        let data: Vec<Vec<Fr>> = (0..4)
            .map(|c| random_scalars(rows, seed * 10 + c))
            .collect();
        let columns: Vec<&[Fr]> = data.iter().map(Vec::as_slice).collect();
        let scalars = random_scalars(5, seed + 77);
        let inputs = GateInputs {
            scalars: &scalars,
            columns: &columns,
        };
        let previous = random_scalars(rows, seed + 99);
        let mut expected = previous.clone();
        reference_gates(&program_steps, &rotations, &inputs, &mut expected);
        // The launch the CUDA backend makes, and a single block that strides over the rows.
        for grid in [layout::gate_grid(rows), 1] {
            let got = emulated_gates(&exe, &dir, &program, &inputs, &previous, grid);
            assert!(
                got == expected,
                "emulated gates rows={rows} steps={steps} grid={grid} differ from the reference"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
