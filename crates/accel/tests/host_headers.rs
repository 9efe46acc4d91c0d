//! The CUDA field and curve headers (`kernels/include`) compiled as host C++ with g++ and
//! checked against halo2curves on random values: Fp/Fr add, sub, mul, square, negation,
//! inverse, Montgomery conversions; G1 Jacobian and XYZZ add, mixed add and double,
//! including identities and P = +-Q. Skips loudly when g++ is missing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ff::{Field, PrimeField};
use group::{prime::PrimeCurveAffine, Curve, Group};
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2curves::serde::SerdeObject;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod common;

fn be_hex(le: &[u8]) -> String {
    le.iter().rev().map(|b| format!("{b:02x}")).collect()
}

fn h<F: PrimeField>(f: &F) -> String {
    be_hex(f.to_repr().as_ref())
}

fn raw<F: SerdeObject>(f: &F) -> String {
    be_hex(&f.to_raw_bytes())
}

fn point(p: &G1Affine) -> String {
    if bool::from(p.is_identity()) {
        format!("{} {}", "0".repeat(64), "0".repeat(64))
    } else {
        format!("{} {}", h(&p.x), h(&p.y))
    }
}

/// Builds the host checker, or returns None (after a loud message) when g++ is missing.
fn build_checker() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("proofmill-host-check-{}", std::process::id()));
    common::build_host_program("host_check.cpp", "c++17", &dir, "host_check")
}

fn run(exe: &PathBuf, ops: &[String]) -> Vec<String> {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn host checker");
    // Feed stdin from another thread: the answers fill the stdout pipe meanwhile.
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = ops.iter().map(|op| format!("{op}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("host checker output");
    writer.join().expect("writer thread").expect("write ops");
    assert!(
        out.status.success(),
        "host checker failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), ops.len(), "one answer per operation");
    lines
}

#[test]
fn field_and_curve_headers_match_halo2curves() {
    let Some(exe) = build_checker() else { return };
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let mut ops = Vec::new();
    let mut expected = Vec::new();

    let mut fq: Vec<Fq> = (0..200).map(|_| Fq::random(&mut rng)).collect();
    fq.extend([Fq::ZERO, Fq::ONE, -Fq::ONE, Fq::from(2)]);
    let mut fr: Vec<Fr> = (0..200).map(|_| Fr::random(&mut rng)).collect();
    fr.extend([Fr::ZERO, Fr::ONE, -Fr::ONE, Fr::from(2)]);
    for i in 0..fq.len() {
        let (a, b) = (fq[i], fq[(i * 7 + 3) % fq.len()]);
        ops.push(format!("fp_mul {} {}", h(&a), h(&b)));
        expected.push(h(&(a * b)));
        ops.push(format!("fp_add {} {}", h(&a), h(&b)));
        expected.push(h(&(a + b)));
        ops.push(format!("fp_sub {} {}", h(&a), h(&b)));
        expected.push(h(&(a - b)));
        ops.push(format!("fp_sqr {}", h(&a)));
        expected.push(h(&a.square()));
        ops.push(format!("fp_neg {}", h(&a)));
        expected.push(h(&-a));
        ops.push(format!("fp_inv {}", h(&a)));
        expected.push(h(&a.invert().unwrap_or(Fq::ZERO)));
        ops.push(format!("fp_to_mont {}", h(&a)));
        expected.push(raw(&a));
        ops.push(format!("fp_from_mont {}", raw(&a)));
        expected.push(h(&a));
    }
    for i in 0..fr.len() {
        let (a, b) = (fr[i], fr[(i * 5 + 1) % fr.len()]);
        ops.push(format!("fr_mul {} {}", h(&a), h(&b)));
        expected.push(h(&(a * b)));
        ops.push(format!("fr_add {} {}", h(&a), h(&b)));
        expected.push(h(&(a + b)));
        ops.push(format!("fr_sub {} {}", h(&a), h(&b)));
        expected.push(h(&(a - b)));
        ops.push(format!("fr_inv {}", h(&a)));
        expected.push(h(&a.invert().unwrap_or(Fr::ZERO)));
        ops.push(format!("fr_to_mont {}", h(&a)));
        expected.push(raw(&a));
        ops.push(format!("fr_from_mont {}", raw(&a)));
        expected.push(h(&a));
    }

    let mut pts: Vec<G1Affine> = (0..60).map(|_| G1::random(&mut rng).to_affine()).collect();
    pts.push(G1Affine::identity());
    let nz = |rng: &mut ChaCha20Rng| loop {
        let z = Fq::random(&mut *rng);
        if !bool::from(z.is_zero()) {
            return z;
        }
    };
    for i in 0..pts.len() {
        let p = pts[i];
        let mut qs = vec![pts[(i * 13 + 5) % pts.len()], p, -p, G1Affine::identity()];
        if i % 2 == 0 {
            qs.truncate(2);
        }
        for q in qs {
            let (zp, zq) = (nz(&mut rng), nz(&mut rng));
            let sum = (p + q).to_affine();
            for kind in ["jac", "xyzz"] {
                ops.push(format!(
                    "{kind}_add {} {} {} {}",
                    point(&p),
                    h(&zp),
                    point(&q),
                    h(&zq)
                ));
                expected.push(point(&sum));
                ops.push(format!(
                    "{kind}_madd {} {} {}",
                    point(&p),
                    h(&zp),
                    point(&q)
                ));
                expected.push(point(&sum));
            }
        }
        let zp = nz(&mut rng);
        let dbl = G1::from(p).double().to_affine();
        for kind in ["jac", "xyzz"] {
            ops.push(format!("{kind}_dbl {} {}", point(&p), h(&zp)));
            expected.push(point(&dbl));
        }
    }

    let got = run(&exe, &ops);
    let mut failures = 0;
    for ((op, e), g) in ops.iter().zip(&expected).zip(&got) {
        if e != g {
            failures += 1;
            if failures < 5 {
                eprintln!("MISMATCH {op}\n  expected {e}\n  got      {g}");
            }
        }
    }
    assert_eq!(
        failures,
        0,
        "{failures} of {} header operations differ from halo2curves",
        ops.len()
    );
    if let Some(dir) = exe.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
