//! The generic conformance checks run against every backend available on this machine, and
//! the inventory/selection behaviour without a GPU. GPU checks print a loud skip when there
//! is no usable GPU, unless `PROOFMILL_REQUIRE_GPU=1`, which makes that a failure.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proofmill_accel::conformance::{check_gates, check_msm, check_msm_random, check_ntt};
use proofmill_accel::{
    select, AccelError, Backend, BackendKind, CpuBackend, CudaBackend, DeviceInventory, Engine,
};

fn available_backends() -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
    match CudaBackend::new(0) {
        Ok(gpu) => v.push(Box::new(gpu)),
        Err(e) => {
            if std::env::var("PROOFMILL_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("PROOFMILL_REQUIRE_GPU=1 but the CUDA backend is unavailable: {e}");
            }
            loud(&format!(
                "\n!!!!!!!! SKIPPED CUDA conformance: no GPU ({e}) !!!!!!!!\n"
            ));
        }
    }
    v
}

#[test]
fn msm_conformance_on_every_backend() {
    for b in available_backends() {
        for (n, seed) in [(1usize, 1u64), (3, 2), (64, 3), (1000, 4), (4097, 5)] {
            check_msm(b.as_ref(), n, seed, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
        if b.kind() == BackendKind::Cuda {
            for (n, seed) in [(1 << 16, 16u64), (1 << 20, 20)] {
                check_msm_random(b.as_ref(), n, seed).unwrap_or_else(|e| panic!("{e}"));
            }
            check_msm(b.as_ref(), 1 << 14, 14, &[4, 8, 16]).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn ntt_conformance_on_every_backend() {
    for b in available_backends() {
        for log_n in [0u32, 1, 2, 5, 9, 10, 11, 13] {
            check_ntt(b.as_ref(), log_n, 2, log_n as u64).unwrap_or_else(|e| panic!("{e}"));
        }
        if b.kind() == BackendKind::Cuda {
            check_ntt(b.as_ref(), 20, 1, 20).unwrap_or_else(|e| panic!("{e}"));
            check_ntt(b.as_ref(), 12, 16, 12).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn gate_conformance_on_every_backend() {
    for b in available_backends() {
        for (rows, steps, seed) in [
            (1usize, 0usize, 1u64),
            (7, 12, 2),
            (64, 40, 3),
            (65, 40, 4),
            (1000, 200, 5),
            (4096, 120, 6),
        ] {
            check_gates(b.as_ref(), rows, steps, seed).unwrap_or_else(|e| panic!("{e}"));
        }
        if b.kind() == BackendKind::Cuda {
            // More rows than one launch has threads: the kernel strides.
            check_gates(b.as_ref(), (1 << 17) + 3, 300, 17).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn inventory_and_selection_never_panic() {
    let inv = DeviceInventory::probe();
    eprintln!("{inv}");
    assert!(inv.cpu_threads >= 1);
    let cpu = select(Engine::Cpu)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("cpu has a backend");
    assert_eq!(cpu.backend.kind(), BackendKind::Cpu);
    assert!(cpu.fallback_reason.is_none());
    let auto = select(Engine::Auto)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("auto has a backend");
    assert!(select(Engine::Stock)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    match inv.first_usable_gpu() {
        None => {
            let reason = inv
                .cuda_unavailable_reason()
                .expect("a reason when no GPU is usable");
            assert!(!reason.is_empty());
            assert_eq!(auto.backend.kind(), BackendKind::Cpu);
            assert!(
                auto.fallback_reason.is_some(),
                "Auto must say why it fell back"
            );
            match select(Engine::Cuda) {
                Err(AccelError::Unavailable {
                    backend: BackendKind::Cuda,
                    reason,
                }) => {
                    assert!(!reason.is_empty())
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
            loud(&format!(
                "\n!!!!!!!! SKIPPED GPU selection: no GPU ({reason}) !!!!!!!!\n"
            ));
        }
        Some(_) => assert_eq!(auto.backend.kind(), BackendKind::Cuda),
    }
    assert_eq!("CUDA".parse::<Engine>().ok(), Some(Engine::Cuda));
    for engine in Engine::ALL {
        assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
    }
    assert!("tpu".parse::<Engine>().is_err());
}

/// Prints past the test harness's output capture, so skips are seen even when tests pass.
fn loud(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
