//! CPU backend against halo2curves and halo2_proofs, bit for bit.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use ff::{Field, WithSmallOrderMulGroup};
use group::{prime::PrimeCurveAffine, Curve};
use halo2_proofs::arithmetic::best_fft;
use halo2_proofs::fft::recursive::FFTData;
use halo2_proofs::poly::EvaluationDomain;
use halo2curves::bn256::{Fr, G1Affine};
use proofmill_accel::conformance::{
    check_msm, check_msm_random, check_ntt, random_bases, random_scalars,
};
use proofmill_accel::{
    omega_for, AccelError, Backend, CpuBackend, MsmConfig, NttConfig, NttDirection,
};

#[test]
fn msm_matches_halo2curves_small_sizes() {
    let cpu = CpuBackend::new();
    for n in [1usize, 2, 3, 5, 7, 8, 9, 16, 31, 100, 257, 1000] {
        check_msm(&cpu, n, n as u64, &[1, 2, 5]).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn msm_matches_halo2curves_medium_sizes() {
    let cpu = CpuBackend::new();
    for (n, seed) in [(1023usize, 1u64), (1024, 2), (1025, 3), (5000, 4)] {
        check_msm(&cpu, n, seed, &[9]).unwrap_or_else(|e| panic!("{e}"));
    }
    check_msm(&cpu, (1 << 14) + 1, 5, &[]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn msm_matches_halo2curves_2_pow_20() {
    let cpu = CpuBackend::new();
    check_msm_random(&cpu, (1 << 20) - 3, 20).unwrap_or_else(|e| panic!("{e}"));
    check_msm_random(&cpu, 1 << 16, 16).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn msm_all_same_base_and_scalar() {
    // One giant bucket: exercises the doubling path and long trees.
    let cpu = CpuBackend::new();
    let p = random_bases(1, 9)[0];
    let bases = vec![p; 5000];
    let scalars = vec![Fr::from(77u64); 5000];
    let h = cpu.load_bases(&bases).unwrap();
    let got = cpu.msm(&h, &scalars, &MsmConfig::default()).unwrap();
    assert_eq!(got.to_affine(), (p * Fr::from(77u64 * 5000)).to_affine());
}

#[test]
fn msm_rejects_bad_sizes_and_foreign_handles() {
    let a = CpuBackend::new();
    let b = CpuBackend::new();
    let bases = random_bases(4, 1);
    let h = a.load_bases(&bases).unwrap();
    let err = a
        .msm(&h, &random_scalars(5, 1), &MsmConfig::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            AccelError::MsmSizeMismatch {
                bases: 4,
                scalars: 5
            }
        ),
        "{err}"
    );
    let err = b
        .msm(&h, &random_scalars(4, 1), &MsmConfig::default())
        .unwrap_err();
    assert!(matches!(err, AccelError::ForeignHandle { .. }), "{err}");
    let err = a
        .msm(
            &h,
            &random_scalars(4, 1),
            &MsmConfig {
                window_bits: Some(0),
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, AccelError::WindowOutOfRange { got: 0, .. }),
        "{err}"
    );
    let empty = a.msm(&h, &[], &MsmConfig::default()).unwrap();
    assert_eq!(empty.to_affine(), G1Affine::identity());
}

#[test]
fn ntt_matches_halo2curves_all_sizes() {
    let cpu = CpuBackend::new();
    for log_n in 0..=14 {
        check_ntt(&cpu, log_n, if log_n < 8 { 3 } else { 1 }, log_n as u64)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn ntt_matches_halo2_proofs_fft_and_domain() {
    let cpu = CpuBackend::new();
    for log_n in [1u32, 2, 5, 10, 13, 16, 20] {
        let n = 1usize << log_n;
        let omega = omega_for(log_n);
        let omega_inv = omega.invert().unwrap();
        let data = FFTData::<Fr>::new(n, omega, omega_inv);
        let input = random_scalars(n, 100 + log_n as u64);

        let mut expected = input.clone();
        best_fft(&mut expected, omega, log_n, &data, false);
        let mut got = input.clone();
        cpu.ntt(&mut got, log_n, &NttConfig::forward()).unwrap();
        assert!(got == expected, "forward log_n={log_n}");

        let mut expected = input.clone();
        best_fft(&mut expected, omega_inv, log_n, &data, true);
        let n_inv = Fr::from(n as u64).invert().unwrap();
        expected.iter_mut().for_each(|v| *v *= n_inv);
        let mut got = input.clone();
        cpu.ntt(&mut got, log_n, &NttConfig::inverse()).unwrap();
        assert!(got == expected, "inverse log_n={log_n}");
    }
}

#[test]
fn coset_ntt_matches_halo2_evaluation_domain() {
    let cpu = CpuBackend::new();
    for (j, k) in [(3u32, 4u32), (5, 10), (9, 12)] {
        let domain = EvaluationDomain::<Fr>::new(j, k);
        let n = 1usize << k;
        let ext_k = domain.extended_k();
        let coeffs = random_scalars(n, 7 + k as u64);
        let expected = domain.coeff_to_extended(&domain.coeff_from_vec(coeffs.clone()));
        let mut got = coeffs.clone();
        got.resize(1 << ext_k, Fr::ZERO);
        cpu.ntt(
            &mut got,
            ext_k,
            &NttConfig::halo2_coset(NttDirection::Forward),
        )
        .unwrap();
        assert!(
            got[..] == expected.values()[..],
            "coeff_to_extended j={j} k={k}"
        );

        let back = domain.extended_to_coeff(expected);
        let mut ours = got;
        cpu.ntt(
            &mut ours,
            ext_k,
            &NttConfig::halo2_coset(NttDirection::Inverse),
        )
        .unwrap();
        assert!(
            ours[..back.len()] == back[..],
            "extended_to_coeff j={j} k={k}"
        );
        assert!(ours[..n] == coeffs[..], "round trip j={j} k={k}");
        assert_eq!(
            Fr::ZETA,
            NttConfig::halo2_coset(NttDirection::Forward).coset.unwrap()
        );
    }
}

#[test]
fn ntt_batched_and_large() {
    let cpu = CpuBackend::new();
    check_ntt(&cpu, 10, 8, 1).unwrap_or_else(|e| panic!("{e}"));
    check_ntt(&cpu, 20, 1, 2).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn ntt_rejects_bad_sizes() {
    let cpu = CpuBackend::new();
    let mut v = random_scalars(12, 1);
    let err = cpu.ntt(&mut v, 3, &NttConfig::forward()).unwrap_err();
    assert!(
        matches!(
            err,
            AccelError::NttSizeMismatch {
                expected_multiple_of: 8,
                log_n: 3,
                got: 12
            }
        ),
        "{err}"
    );
    let err = cpu.ntt(&mut v, 29, &NttConfig::forward()).unwrap_err();
    assert!(
        matches!(err, AccelError::NttTooLarge { log_n: 29, max: 28 }),
        "{err}"
    );
    let err = cpu.ntt(&mut [], 0, &NttConfig::forward()).unwrap_err();
    assert!(
        matches!(err, AccelError::NttSizeMismatch { got: 0, .. }),
        "{err}"
    );
    let mut v = random_scalars(8, 1);
    let cfg = NttConfig {
        direction: NttDirection::Forward,
        coset: Some(Fr::ZERO),
    };
    assert!(matches!(
        cpu.ntt(&mut v, 3, &cfg).unwrap_err(),
        AccelError::ZeroCosetGenerator
    ));
}
