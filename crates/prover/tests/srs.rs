//! SRS store: files, downsizing, the development SRS, corruption, and KZG sanity.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::poly::commitment::{Blind, Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::poly::EvaluationDomain;
use halo2_base::halo2_proofs::SerdeFormat;
use proofmill_prover::srs::{read_srs_file, Provenance, Srs, SrsError, SrsStore};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn bytes(params: &ParamsKZG<Bn256>) -> Vec<u8> {
    let mut out = Vec::new();
    params
        .write_custom(&mut out, SerdeFormat::RawBytes)
        .expect("write to memory");
    out
}

/// A non-development SRS written as `{dir}/kzg_bn254_{k}.srs`, like a ceremony file.
fn write_other_srs(dir: &Path, k: u32, seed: u64) -> ParamsKZG<Bn256> {
    let params = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(seed));
    let mut file = std::fs::File::create(dir.join(format!("kzg_bn254_{k}.srs"))).expect("create");
    params.write(&mut file).expect("write");
    params
}

#[test]
fn generates_saves_and_recognises_the_development_srs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SrsStore::new(dir.path().join("params"));
    let srs = store.load(5).expect("generate");
    assert!(srs.is_insecure());
    assert_eq!(srs.k(), 5);
    assert_eq!(srs.params().k(), 5);
    let path = store.file_path(5);
    assert_eq!(
        srs.provenance(),
        &Provenance::Development {
            path: Some(path.clone())
        }
    );
    assert!(path.is_file());
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(store.dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("kzg_bn254_5.srs")]);

    // The file is the standard format: stock halo2 reads it.
    let stock = ParamsKZG::<Bn256>::read(&mut std::fs::File::open(&path).expect("open"))
        .expect("stock read");
    assert_eq!(bytes(&stock), bytes(srs.params()));

    // A fresh store (a later process) recognises it as the insecure development SRS.
    let again = SrsStore::new(store.dir()).load(5).expect("reload");
    assert!(again.is_insecure());
    assert_eq!(again.srs_id(), srs.srs_id());
    assert_eq!(bytes(again.params()), bytes(srs.params()));

    // Same as the in-memory development SRS, on every machine.
    let mem = Srs::development(5).expect("in memory");
    assert_eq!(mem.srs_id(), srs.srs_id());
    assert_eq!(mem.provenance(), &Provenance::Development { path: None });
}

#[test]
fn cache_returns_the_same_arc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SrsStore::new(dir.path());
    let a = store.load(4).expect("first");
    std::fs::remove_file(store.file_path(4)).expect("remove");
    let b = store.load(4).expect("cached");
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn loads_an_exact_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = write_other_srs(dir.path(), 5, 1);
    write_other_srs(dir.path(), 6, 2);
    let srs = SrsStore::new(dir.path()).load(5).expect("load");
    assert!(!srs.is_insecure());
    assert_eq!(
        srs.provenance(),
        &Provenance::File {
            path: dir.path().join("kzg_bn254_5.srs"),
            file_k: 5
        }
    );
    assert_eq!(bytes(srs.params()), bytes(&expected));
    assert_eq!(srs.srs_id().len(), 64);
    assert_ne!(srs.srs_id(), Srs::development(5).expect("dev").srs_id());
}

#[test]
fn downsizes_the_smallest_larger_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_other_srs(dir.path(), 8, 3);
    let mut expected = write_other_srs(dir.path(), 6, 4);
    let srs = SrsStore::new(dir.path()).load(4).expect("load");
    assert!(!srs.is_insecure());
    assert_eq!(
        srs.provenance(),
        &Provenance::File {
            path: dir.path().join("kzg_bn254_6.srs"),
            file_k: 6
        }
    );
    expected.downsize(4);
    assert_eq!(bytes(srs.params()), bytes(&expected));
    // The id names tau and k: the same as an exact k=4 file with that tau would give.
    let exact = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(exact.path().join("kzg_bn254_4.srs")).expect("create");
    expected.write(&mut file).expect("write");
    drop(file);
    let exact = SrsStore::new(exact.path()).load(4).expect("exact");
    assert_eq!(exact.srs_id(), srs.srs_id());
}

#[test]
fn downsized_development_srs_equals_generated() {
    let big = tempfile::tempdir().expect("tempdir");
    SrsStore::new(big.path()).load(7).expect("generate k=7");
    let downsized = SrsStore::new(big.path()).load(5).expect("downsize");
    assert!(downsized.is_insecure());
    assert!(!big.path().join("kzg_bn254_5.srs").exists());
    let fresh = Srs::development(5).expect("generate k=5");
    assert_eq!(bytes(downsized.params()), bytes(fresh.params()));
    assert_eq!(downsized.srs_id(), fresh.srs_id());
}

#[test]
fn truncated_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_other_srs(dir.path(), 4, 5);
    let path = dir.path().join("kzg_bn254_4.srs");
    let data = std::fs::read(&path).expect("read");
    for len in [0, 3, 4, 100, data.len() - 1] {
        std::fs::write(&path, &data[..len]).expect("truncate");
        let err = SrsStore::new(dir.path()).load(4).expect_err("truncated");
        assert!(matches!(err, SrsError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("kzg_bn254_4.srs"), "{msg}");
        assert!(msg.contains("truncated or corrupt"), "{msg}");
    }
}

#[test]
fn corrupt_points_are_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_other_srs(dir.path(), 4, 6);
    let path = dir.path().join("kzg_bn254_4.srs");
    let good = std::fs::read(&path).expect("read");
    let n = 16;
    // Offsets inside: g[3].x, g_lagrange[2].y, s_g2.
    for offset in [4 + 3 * 64 + 5, 4 + n * 64 + 2 * 64 + 40, good.len() - 10] {
        let mut bad = good.clone();
        bad[offset] ^= 0x01;
        std::fs::write(&path, &bad).expect("write");
        let err = read_srs_file(&path, 4).expect_err("corrupt");
        assert!(matches!(err, SrsError::Corrupt { .. }), "{err:?}");
    }
    // A valid point in the wrong place: swap g[1] and g[2].
    let mut swapped = good.clone();
    let (a, b) = (4 + 64, 4 + 128);
    let g1: Vec<u8> = swapped[a..a + 64].to_vec();
    swapped.copy_within(b..b + 64, a);
    swapped[b..b + 64].copy_from_slice(&g1);
    std::fs::write(&path, &swapped).expect("write");
    let err = read_srs_file(&path, 4).expect_err("swapped");
    assert!(err.to_string().contains("tau"), "{err}");
}

#[test]
fn header_k_must_match_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_other_srs(dir.path(), 4, 7);
    std::fs::rename(
        dir.path().join("kzg_bn254_4.srs"),
        dir.path().join("kzg_bn254_5.srs"),
    )
    .expect("rename");
    let err = SrsStore::new(dir.path()).load(5).expect_err("mismatch");
    assert!(
        matches!(
            err,
            SrsError::KMismatch {
                expected: 5,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn out_of_range_k_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SrsStore::new(dir.path());
    for k in [0, 29, u32::MAX] {
        assert!(matches!(store.load(k), Err(SrsError::InvalidK { .. })));
    }
}

#[test]
fn kzg_commitments_agree_across_bases() {
    let k = 6;
    let srs = Srs::development(k).expect("dev");
    let params = srs.params();
    let domain = EvaluationDomain::<Fr>::new(1, k);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut evals = domain.empty_lagrange();
    for v in evals.iter_mut() {
        *v = Fr::random(&mut rng);
    }
    let coeffs = domain.lagrange_to_coeff(evals.clone());
    let blind = Blind(Fr::ZERO);
    assert_eq!(
        params.commit(&coeffs, blind),
        params.commit_lagrange(&evals, blind)
    );
}

#[test]
fn development_srs_verifies_a_kzg_opening() {
    use halo2_base::halo2_proofs::halo2curves::group::{prime::PrimeCurveAffine, Curve};
    use halo2_base::halo2_proofs::halo2curves::pairing::Engine;
    // Open p at z: q = (p - p(z)) / (X - z); check e(C - p(z)·G, g2) = e(Q, s_g2 - z·g2).
    let k = 5;
    let srs = Srs::development(k).expect("dev");
    let params = srs.params();
    let domain = EvaluationDomain::<Fr>::new(1, k);
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut p = domain.empty_coeff();
    for c in p.iter_mut() {
        *c = Fr::random(&mut rng);
    }
    let z = Fr::random(&mut rng);
    let pz = p.values().iter().rev().fold(Fr::ZERO, |acc, c| acc * z + c);
    // Synthetic division by (X - z).
    let mut q = domain.empty_coeff();
    let mut carry = Fr::ZERO;
    for i in (1..p.values().len()).rev() {
        carry = p[i] + carry * z;
        q[i - 1] = carry;
    }
    let c = params.commit(&p, Blind(Fr::ZERO));
    let w = params.commit(&q, Blind(Fr::ZERO)).to_affine();
    let g = params.get_g()[0];
    let lhs = Bn256::pairing(&(c - g * pz).to_affine(), &params.g2());
    let rhs = Bn256::pairing(
        &w,
        &(params.s_g2().to_curve() - params.g2() * z).to_affine(),
    );
    assert_eq!(lhs, rhs);
    assert_eq!(g, PrimeCurveAffine::generator());
}

/// Generation speed; run in release:
/// `cargo test --release -p proofmill-prover --test srs -- --ignored --nocapture`
/// (`PROOFMILL_SRS_BENCH_K=18,21` by default).
#[test]
#[ignore = "timing; run in release"]
fn development_generation_timing() {
    let ks = std::env::var("PROOFMILL_SRS_BENCH_K").unwrap_or_else(|_| "18,21".to_owned());
    for k in ks.split(',').filter_map(|k| k.trim().parse::<u32>().ok()) {
        let start = Instant::now();
        let srs = Srs::development(k).expect("generate");
        let gen = start.elapsed();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SrsStore::new(dir.path());
        let start = Instant::now();
        store.load(k).expect("generate and save");
        let gen_save = start.elapsed();
        let start = Instant::now();
        let reread = SrsStore::new(dir.path()).load(k).expect("read");
        let read = start.elapsed();
        assert_eq!(reread.srs_id(), srs.srs_id());
        println!(
            "k={k}: generate {:.2} s, generate+save {:.2} s, read back {:.2} s",
            gen.as_secs_f64(),
            gen_save.as_secs_f64(),
            read.as_secs_f64()
        );
    }
}
