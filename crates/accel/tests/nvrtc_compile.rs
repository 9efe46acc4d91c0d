//! Every kernel compiles under NVRTC for sm_80 and sm_90 (a real `sm_XY` target also runs
//! ptxas, so inline PTX is checked). Needs libnvrtc: `scripts/nvrtc-setup.sh DIR` and
//! `PROOFMILL_NVRTC_LIB_DIR=<printed dir>` (or LD_LIBRARY_PATH). Without it the tests skip
//! loudly, unless `PROOFMILL_REQUIRE_NVRTC=1` (CI), which turns the skip into a failure.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proofmill_accel::cuda::{
    compile_kernel, compile_kernel_cached, compile_kernel_variant, nvrtc_available, nvrtc_version,
};
use proofmill_accel::kernels::{self, KernelSource};
use proofmill_accel::AccelError;

const ARCHS: [&str; 2] = ["sm_80", "sm_90"];

/// True when NVRTC can be used; otherwise prints a loud skip, or panics when CI requires it.
fn nvrtc_or_skip(test: &str) -> bool {
    match nvrtc_available() {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var("PROOFMILL_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
                panic!("PROOFMILL_REQUIRE_NVRTC=1 but NVRTC is unavailable: {reason}");
            }
            loud(&format!(
                "\n!!!!!!!! SKIPPED {test}: NVRTC unavailable ({reason}) !!!!!!!!\n\
                 !!!!!!!! run scripts/nvrtc-setup.sh DIR and set PROOFMILL_NVRTC_LIB_DIR !!!!!!!!\n"
            ));
            false
        }
    }
}

#[test]
fn probing_nvrtc_never_panics() {
    // Either way must be an answer, not a panic (cudarc panics if used without the library).
    let available = nvrtc_available();
    let version = nvrtc_version();
    assert_eq!(
        available.is_ok(),
        version.is_some(),
        "{available:?} vs {version:?}"
    );
    if available.is_err() {
        let err = compile_kernel(&kernels::MSM, "sm_80").unwrap_err();
        assert!(matches!(err, AccelError::KernelCompile { .. }), "{err}");
    }
}

#[test]
fn every_kernel_compiles_for_sm80_and_sm90() {
    if !nvrtc_or_skip("every_kernel_compiles_for_sm80_and_sm90") {
        return;
    }
    eprintln!("NVRTC {:?}", nvrtc_version());
    let entries: &[(&str, &[&str])] = &[
        (
            "msm.cu",
            &[
                "msm_histogram",
                "msm_scan",
                "msm_scatter",
                "msm_chunk_counts",
                "msm_sum_chunks_affine",
                "msm_sum_chunks_xyzz",
                "msm_gather_buckets",
                "msm_reduce",
            ],
        ),
        (
            "ntt.cu",
            &[
                "ntt_bit_reverse",
                "ntt_shared_stages",
                "ntt_global_stage",
                "ntt_scale",
            ],
        ),
        ("gates.cu", &["gates_evaluate"]),
    ];
    // Both variants: the portable field arithmetic (the default) and the inline PTX carry
    // chains (PROOFMILL_CUDA_PTX=1), whose asm ptxas checks here.
    for (arch, with_ptx) in ARCHS.iter().flat_map(|a| [(*a, false), (*a, true)]) {
        for src in kernels::ALL {
            let start = std::time::Instant::now();
            let ptx = compile_kernel_variant(src, arch, with_ptx).unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "{} {arch} (PTX carry chains: {with_ptx}): {} bytes of PTX in {:?}",
                src.name,
                ptx.len(),
                start.elapsed()
            );
            if with_ptx {
                assert!(
                    ptx.contains("subc.cc.u32"),
                    "{} for {arch}: the PTX variant lacks its carry chains",
                    src.name
                );
            }
            let target = format!(".target {arch}");
            assert!(
                ptx.contains(&target),
                "{} for {arch}: PTX lacks `{target}`",
                src.name
            );
            let (_, names) = entries
                .iter()
                .find(|(n, _)| *n == src.name)
                .expect("known kernel");
            for name in *names {
                assert!(
                    ptx.contains(&format!(".entry {name}")),
                    "{} for {arch}: no kernel entry {name}",
                    src.name
                );
            }
        }
    }
}

#[test]
fn broken_kernel_reports_nvrtc_log() {
    if !nvrtc_or_skip("broken_kernel_reports_nvrtc_log") {
        return;
    }
    let broken = KernelSource {
        name: "broken.cu",
        source: "#include \"field/bn254.cuh\"\nextern \"C\" __global__ void k() { undefined_thing(); }\n",
    };
    match compile_kernel(&broken, "sm_80") {
        Err(AccelError::KernelCompile { log, arch, .. }) => {
            assert_eq!(arch, "sm_80");
            assert!(
                log.contains("undefined_thing"),
                "log should name the error: {log}"
            );
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn kernel_cache_reuses_compiled_ptx() {
    if !nvrtc_or_skip("kernel_cache_reuses_compiled_ptx") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("proofmill-kcache-{}", std::process::id()));
    let first =
        compile_kernel_cached(&kernels::NTT, "sm_80", &dir).unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<_> = std::fs::read_dir(&dir).expect("cache dir").collect();
    assert_eq!(files.len(), 1, "one cached file");
    let second =
        compile_kernel_cached(&kernels::NTT, "sm_80", &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn preprocess_inlines_each_header_once() {
    for src in kernels::ALL {
        let text = kernels::preprocess(src).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !text.contains("#include"),
            "{}: unresolved include",
            src.name
        );
        assert_eq!(
            text.matches("// ---- begin common.cuh").count(),
            1,
            "{}",
            src.name
        );
        assert_eq!(
            text.matches("// ---- begin field/bn254.cuh").count(),
            1,
            "{}",
            src.name
        );
    }
    let bad = KernelSource {
        name: "x.cu",
        source: "#include \"nope.cuh\"\n",
    };
    let err = kernels::preprocess(&bad).unwrap_err();
    assert_eq!(err.include, "nope.cuh");
}

/// Prints past the test harness's output capture, so skips are seen even when tests pass.
fn loud(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
