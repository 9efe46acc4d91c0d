//! One generic conformance check per primitive, run against every backend: `check_msm` and
//! `check_ntt` compare a backend with independent references (halo2curves' `msm_best` and
//! `best_fft`) on seeded random inputs that include the awkward cases (zero scalars,
//! identity and duplicate bases, sizes that are not powers of two, cosets, batches).
//!
//! It also provides the seeded input generators the tests and benches share. Nothing here
//! runs on its own; `cargo test -p proofmill-accel` drives it.

use ff::{Field, FromUniformBytes};
use group::{prime::PrimeCurveAffine, Curve};
use halo2curves::bn256::{Fr, G1Affine, G1};
use rayon::prelude::*;

use crate::backend::omega_for;
use crate::{Backend, MsmConfig, NttConfig, NttDirection};

/// A conformance failure: which case, and what differed.
#[derive(Debug, thiserror::Error)]
#[error("{backend} {case}: {detail}")]
pub struct Mismatch {
    /// Backend description.
    pub backend: String,
    /// The case, e.g. `msm n=1000 seed=3 scalars=zeros`.
    pub case: String,
    /// What differed, or the error the backend returned.
    pub detail: String,
}

/// Deterministic, dependency-free generator (splitmix64) so that every backend and bench sees
/// the same inputs for the same seed.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly random scalar.
    pub fn scalar(&mut self) -> Fr {
        let mut bytes = [0u8; 64];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        Fr::from_uniform_bytes(&bytes)
    }
}

/// `n` random scalars for `seed`, generated in parallel.
pub fn random_scalars(n: usize, seed: u64) -> Vec<Fr> {
    (0..n)
        .into_par_iter()
        .map(|i| SeededRng::new(seed.wrapping_mul(0x1000_0000_01b3) ^ i as u64).scalar())
        .collect()
}

/// `n` pseudo-random bases for `seed`: runs of `P + i*D` with random `P`, `D` per run of 4096
/// (cheap to generate, no structure an MSM could exploit).
pub fn random_bases(n: usize, seed: u64) -> Vec<G1Affine> {
    const RUN: usize = 4096;
    let proj: Vec<G1> = (0..n.div_ceil(RUN))
        .into_par_iter()
        .flat_map_iter(|r| {
            let mut rng = SeededRng::new(seed ^ 0xbead_0000 ^ ((r as u64) << 20));
            let mut p = G1::generator() * rng.scalar();
            let d = G1::generator() * rng.scalar();
            let len = RUN.min(n - r * RUN);
            (0..len).map(move |_| {
                let out = p;
                p += d;
                out
            })
        })
        .collect();
    let mut out = vec![G1Affine::identity(); n];
    G1::batch_normalize(&proj, &mut out);
    out
}

/// The scalar patterns every MSM check covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarPattern {
    /// Uniformly random.
    Random,
    /// Random with every third scalar zero.
    SomeZeros,
    /// All zero (result: identity).
    AllZero,
    /// Small values, one, minus one and repeats: skewed buckets and cancellations.
    Edgy,
}

fn scalars_for(n: usize, seed: u64, pattern: ScalarPattern) -> Vec<Fr> {
    let mut s = random_scalars(n, seed);
    match pattern {
        ScalarPattern::Random => {}
        ScalarPattern::SomeZeros => s.iter_mut().step_by(3).for_each(|v| *v = Fr::ZERO),
        ScalarPattern::AllZero => s.iter_mut().for_each(|v| *v = Fr::ZERO),
        ScalarPattern::Edgy => {
            for (i, v) in s.iter_mut().enumerate() {
                *v = match i % 6 {
                    0 => Fr::ONE,
                    1 => -Fr::ONE,
                    2 => Fr::from((i % 37) as u64),
                    3 => Fr::from(1u64 << 20),
                    4 => -Fr::from(12345u64),
                    _ => *v,
                };
            }
        }
    }
    s
}

/// Bases with identities and duplicates (including `P` and `-P`) sprinkled in.
fn awkward_bases(n: usize, seed: u64) -> Vec<G1Affine> {
    let mut b = random_bases(n, seed);
    for i in (0..n).step_by(17) {
        b[i] = G1Affine::identity();
    }
    for i in (5..n).step_by(23) {
        b[i] = b[i / 2];
    }
    for i in (7..n).step_by(29) {
        b[i] = -b[i - 1];
    }
    b
}

/// Checks `backend.msm` for size `n` against halo2curves: `msm_best` (what halo2's
/// `best_multiexp` calls) on random bases with every [`ScalarPattern`], and `msm_parallel`
/// on bases with identities, duplicates and negations (`msm_best`'s batch-affine path
/// panics on those from about 8k points on: its batch inversion hits a zero). Also checks a
/// prefix MSM (fewer scalars than bases). `windows` lists window sizes to force in addition
/// to the backend's own choice.
pub fn check_msm<B: Backend + ?Sized>(
    backend: &B,
    n: usize,
    seed: u64,
    windows: &[u32],
) -> Result<(), Mismatch> {
    let fail = |case: String, detail: String| Mismatch {
        backend: backend.description(),
        case,
        detail,
    };
    let patterns = [
        ScalarPattern::Random,
        ScalarPattern::SomeZeros,
        ScalarPattern::AllZero,
        ScalarPattern::Edgy,
    ];
    let mut configs = vec![MsmConfig::default()];
    configs.extend(windows.iter().map(|&c| MsmConfig {
        window_bits: Some(c),
    }));
    for awkward in [false, true] {
        let bases = if awkward {
            awkward_bases(n, seed)
        } else {
            random_bases(n, seed)
        };
        let handle = backend
            .load_bases(&bases)
            .map_err(|e| fail(format!("load_bases n={n}"), e.to_string()))?;
        for pattern in patterns {
            let scalars = scalars_for(n, seed + 1, pattern);
            let expected = if awkward {
                halo2curves::msm::msm_parallel(&scalars, &bases).to_affine()
            } else {
                halo2curves::msm::msm_best(&scalars, &bases).to_affine()
            };
            for cfg in &configs {
                let case = format!(
                    "msm n={n} seed={seed} awkward_bases={awkward} scalars={pattern:?} window={:?}",
                    cfg.window_bits
                );
                let got = backend
                    .msm(&handle, &scalars, cfg)
                    .map_err(|e| fail(case.clone(), e.to_string()))?;
                if got.to_affine() != expected {
                    return Err(fail(
                        case,
                        format!("got {:?}, expected {:?}", got.to_affine(), expected),
                    ));
                }
            }
        }
        if n > 1 {
            let m = n / 2 + 1;
            let scalars = scalars_for(m, seed + 2, ScalarPattern::Random);
            let expected = halo2curves::msm::msm_parallel(&scalars, &bases[..m]).to_affine();
            let case = format!("msm prefix m={m} of n={n} seed={seed} awkward_bases={awkward}");
            let got = backend
                .msm(&handle, &scalars, &MsmConfig::default())
                .map_err(|e| fail(case.clone(), e.to_string()))?;
            if got.to_affine() != expected {
                return Err(fail(case, "prefix MSM differs from halo2curves".into()));
            }
        }
    }
    Ok(())
}

/// The cheap check for large sizes: one MSM of random scalars over random bases against
/// halo2curves' `msm_best` (halo2's `best_multiexp`).
pub fn check_msm_random<B: Backend + ?Sized>(
    backend: &B,
    n: usize,
    seed: u64,
) -> Result<(), Mismatch> {
    let case = format!("msm random n={n} seed={seed}");
    let fail = |detail: String| Mismatch {
        backend: backend.description(),
        case: case.clone(),
        detail,
    };
    let bases = random_bases(n, seed);
    let scalars = random_scalars(n, seed + 1);
    let handle = backend
        .load_bases(&bases)
        .map_err(|e| fail(e.to_string()))?;
    let got = backend
        .msm(&handle, &scalars, &MsmConfig::default())
        .map_err(|e| fail(e.to_string()))?;
    let expected = halo2curves::msm::msm_best(&scalars, &bases).to_affine();
    if got.to_affine() != expected {
        return Err(fail("differs from halo2curves msm_best".into()));
    }
    Ok(())
}

/// Reference transform from halo2curves' `best_fft`, with halo2's inverse scaling and coset
/// convention.
pub fn reference_ntt(values: &mut [Fr], log_n: u32, cfg: &NttConfig) {
    let n = 1usize << log_n;
    let omega = omega_for(log_n);
    for a in values.chunks_mut(n) {
        match cfg.direction {
            NttDirection::Forward => {
                if let Some(g) = cfg.coset {
                    let mut p = Fr::ONE;
                    for v in a.iter_mut() {
                        *v *= p;
                        p *= g;
                    }
                }
                halo2curves::fft::best_fft(a, omega, log_n);
            }
            NttDirection::Inverse => {
                let omega_inv = omega.invert().unwrap_or(Fr::ONE);
                halo2curves::fft::best_fft(a, omega_inv, log_n);
                let n_inv = Fr::from(n as u64).invert().unwrap_or(Fr::ONE);
                let g_inv = cfg.coset.map_or(Fr::ONE, |g| g.invert().unwrap_or(Fr::ONE));
                let mut p = n_inv;
                for v in a.iter_mut() {
                    *v *= p;
                    p *= g_inv;
                }
            }
        }
    }
}

/// Checks `backend.ntt` against [`reference_ntt`] for `batch` vectors of size 2^log_n in
/// every direction, with and without halo2's coset, and that inverse(forward(x)) = x.
pub fn check_ntt<B: Backend + ?Sized>(
    backend: &B,
    log_n: u32,
    batch: usize,
    seed: u64,
) -> Result<(), Mismatch> {
    let n = 1usize << log_n;
    let input = random_scalars(n * batch, seed);
    let configs = [
        NttConfig::forward(),
        NttConfig::inverse(),
        NttConfig::halo2_coset(NttDirection::Forward),
        NttConfig::halo2_coset(NttDirection::Inverse),
    ];
    for cfg in &configs {
        let case = format!("ntt log_n={log_n} batch={batch} seed={seed} {cfg:?}");
        let mut expected = input.clone();
        reference_ntt(&mut expected, log_n, cfg);
        let mut got = input.clone();
        backend.ntt(&mut got, log_n, cfg).map_err(|e| Mismatch {
            backend: backend.description(),
            case: case.clone(),
            detail: e.to_string(),
        })?;
        if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
            return Err(Mismatch {
                backend: backend.description(),
                case,
                detail: format!("first difference at index {i}"),
            });
        }
        let mut back = got;
        let inv = NttConfig {
            direction: match cfg.direction {
                NttDirection::Forward => NttDirection::Inverse,
                NttDirection::Inverse => NttDirection::Forward,
            },
            coset: cfg.coset,
        };
        backend.ntt(&mut back, log_n, &inv).map_err(|e| Mismatch {
            backend: backend.description(),
            case: format!("{case} round trip"),
            detail: e.to_string(),
        })?;
        if back != input {
            return Err(Mismatch {
                backend: backend.description(),
                case: format!("{case} round trip"),
                detail: "inverse(transform(x)) != x".into(),
            });
        }
    }
    Ok(())
}

/// A random gate program over `columns` columns and `scalars` scalars, shaped like halo2's
/// compiled gates: reads of columns at a few rotations (some wrapping around the part) and of
/// scalars stored into intermediates, a mix of every operation over earlier intermediates,
/// and a final Horner fold of several of them into the previous value with a scalar factor.
pub fn random_gate_program(
    rng: &mut SeededRng,
    columns: u32,
    scalars: u32,
    steps: usize,
) -> (Vec<crate::gates::Step>, Vec<i32>) {
    use crate::gates::{Op, Operand, Step};
    let rotations = vec![0, 1, -1, 3, -7, 65];
    let mut out: Vec<Step> = Vec::new();
    // Targets are not in step order (halo2 numbers them in order; nothing requires it).
    let target = |i: usize| (i as u32) * 3 + 1;
    let pick = |rng: &mut SeededRng, defined: usize| -> Operand {
        match rng.next_u64() % 8 {
            0 => Operand::Scalar((rng.next_u64() % u64::from(scalars)) as u32),
            1 => Operand::Column {
                column: (rng.next_u64() % u64::from(columns)) as u32,
                rotation: (rng.next_u64() % rotations.len() as u64) as u32,
            },
            _ if defined > 0 => Operand::Intermediate(target((rng.next_u64() as usize) % defined)),
            _ => Operand::Scalar(0),
        }
    };
    for i in 0..steps {
        let op = match rng.next_u64() % 10 {
            0 | 1 => Op::Store(Operand::Column {
                column: (rng.next_u64() % u64::from(columns)) as u32,
                rotation: (rng.next_u64() % rotations.len() as u64) as u32,
            }),
            2 => Op::Store(Operand::Scalar(
                (rng.next_u64() % u64::from(scalars)) as u32,
            )),
            3 => Op::Add(pick(rng, i), pick(rng, i)),
            4 => Op::Sub(pick(rng, i), pick(rng, i)),
            5 | 6 => Op::Mul(pick(rng, i), pick(rng, i)),
            7 => Op::Square(pick(rng, i)),
            8 => Op::Double(pick(rng, i)),
            _ => Op::Negate(pick(rng, i)),
        };
        out.push(Step {
            target: target(i),
            op,
        });
    }
    let parts = (0..5)
        .map(|_| match steps {
            0 => Operand::Scalar(0),
            _ => Operand::Intermediate(target((rng.next_u64() as usize) % steps)),
        })
        .collect();
    out.push(Step {
        target: target(steps),
        op: Op::Horner {
            start: Operand::Previous,
            parts,
            factor: Operand::Scalar(scalars - 1),
        },
    });
    (out, rotations)
}

/// The gate program `steps` evaluated row by row, straight from its definition (no slots, no
/// copies folded away): the reference [`check_gates`] compares backends with.
pub fn reference_gates(
    steps: &[crate::gates::Step],
    rotations: &[i32],
    inputs: &crate::gates::GateInputs<'_>,
    values: &mut [Fr],
) {
    use crate::gates::{Op, Operand};
    let n = values.len() as i64;
    values.par_iter_mut().enumerate().for_each(|(row, value)| {
        let mut intermediates = std::collections::HashMap::new();
        let previous = *value;
        let get = |o: &Operand, im: &std::collections::HashMap<u32, Fr>| match *o {
            Operand::Scalar(i) => inputs.scalars[i as usize],
            Operand::Intermediate(t) => im[&t],
            Operand::Column { column, rotation } => {
                let at = (row as i64 + i64::from(rotations[rotation as usize])).rem_euclid(n);
                inputs.columns[column as usize][at as usize]
            }
            Operand::Previous => previous,
        };
        let mut last = Fr::ZERO;
        for step in steps {
            let im = &intermediates;
            last = match &step.op {
                Op::Add(a, b) => get(a, im) + get(b, im),
                Op::Sub(a, b) => get(a, im) - get(b, im),
                Op::Mul(a, b) => get(a, im) * get(b, im),
                Op::Square(a) => get(a, im).square(),
                Op::Double(a) => get(a, im).double(),
                Op::Negate(a) => -get(a, im),
                Op::Store(a) => get(a, im),
                Op::Horner {
                    start,
                    parts,
                    factor,
                } => {
                    let f = get(factor, im);
                    parts
                        .iter()
                        .fold(get(start, im), |acc, p| acc * f + get(p, im))
                }
            };
            intermediates.insert(step.target, last);
        }
        *value = last;
    });
}

/// Random gate programs of `steps` steps on `rows` rows (any number, not only powers of two)
/// against [`reference_gates`].
pub fn check_gates<B: Backend + ?Sized>(
    backend: &B,
    rows: usize,
    steps: usize,
    seed: u64,
) -> Result<(), Mismatch> {
    let case = format!("gates rows={rows} steps={steps} seed={seed}");
    let fail = |detail: String| Mismatch {
        backend: backend.description(),
        case: case.clone(),
        detail,
    };
    let mut rng = SeededRng::new(seed);
    let (columns, scalars) = (5u32, 6u32);
    let (program_steps, rotations) = random_gate_program(&mut rng, columns, scalars, steps);
    let program = crate::gates::GateProgram::new(&program_steps, &rotations)
        .map_err(|e| fail(format!("program refused: {e}")))?;
    let data: Vec<Vec<Fr>> = (0..columns)
        .map(|c| random_scalars(rows, seed ^ (u64::from(c) << 32)))
        .collect();
    let column_refs: Vec<&[Fr]> = data.iter().map(Vec::as_slice).collect();
    let scalar_values = random_scalars(scalars as usize, seed ^ 0x5ca1);
    let inputs = crate::gates::GateInputs {
        scalars: &scalar_values,
        columns: &column_refs,
    };
    let previous = random_scalars(rows, seed ^ 0x9e7);
    let mut expected = previous.clone();
    reference_gates(&program_steps, &rotations, &inputs, &mut expected);
    let mut got = previous;
    backend
        .evaluate_gates(&program, &inputs, &mut got)
        .map_err(|e| fail(format!("backend error: {e}")))?;
    match got.iter().zip(&expected).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(row) => Err(fail(format!(
            "row {row} differs (program of {} steps, {} slots)",
            program.len(),
            program.slots()
        ))),
    }
}
