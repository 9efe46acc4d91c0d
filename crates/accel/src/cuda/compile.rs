//! Kernel compilation: NVRTC located (a `libnvrtc` directory named by
//! [`super::NVRTC_LIB_DIR_ENV`], or the system's) and guarded so that a missing library is an
//! error, never a panic; our kernels compiled for a card's exact architecture, in the portable
//! or the inline-PTX arithmetic variant; and the on-disk cache of compiled kernels.
//!
//! It compiles source to PTX/CUBIN and knows nothing of devices, memory or launches.
#![allow(unsafe_code)] // probing libnvrtc with dlopen is FFI

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cudarc::nvrtc::CompileOptions;

use super::{ptx_carry_chains, KERNEL_CACHE_ENV, NVRTC_LIB_DIR_ENV};
use crate::kernels::{self, KernelSource};
use crate::AccelError;

/// Makes NVRTC loadable and says whether it is: pre-loads `libnvrtc*` from
/// [`NVRTC_LIB_DIR_ENV`] when set (dlopen by soname then finds the loaded copy), then probes
/// the names cudarc will try. `Err` carries the reason in words. Never panics.
pub fn nvrtc_available() -> Result<(), String> {
    static PRELOAD: OnceLock<Result<(), String>> = OnceLock::new();
    PRELOAD.get_or_init(preload_nvrtc).clone()?;
    // SAFETY: only tries to dlopen the library; no symbol is called.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(format!(
            "libnvrtc not found: install the CUDA toolkit's NVRTC or run scripts/nvrtc-setup.sh DIR \
             and set {NVRTC_LIB_DIR_ENV}=<printed dir> (or LD_LIBRARY_PATH)"
        ))
    }
}

fn preload_nvrtc() -> Result<(), String> {
    let Some(dir) = std::env::var_os(NVRTC_LIB_DIR_ENV) else {
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| format!("{NVRTC_LIB_DIR_ENV}={}: {e}", dir.display()))?;
    let mut libs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libnvrtc") && n.contains(".so") && !n.contains(".alt.")
            })
        })
        .collect();
    // builtins first: libnvrtc loads it by soname when it compiles.
    libs.sort_by_key(|p| !p.to_string_lossy().contains("builtins"));
    if libs.is_empty() {
        return Err(format!(
            "{NVRTC_LIB_DIR_ENV}={}: no libnvrtc*.so* there",
            dir.display()
        ));
    }
    for lib in libs {
        // SAFETY: loading NVIDIA's NVRTC libraries runs their (trusted) initialisers only.
        match unsafe { libloading::Library::new(&lib) } {
            // Kept loaded for the life of the process so cudarc's dlopen by soname finds it.
            Ok(l) => std::mem::forget(l),
            Err(e) => return Err(format!("loading {}: {e}", lib.display())),
        }
    }
    Ok(())
}

/// NVRTC's version as (major, minor), when it is loadable.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    nvrtc_available().ok()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loadable (checked above); the out-pointers are valid locals.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// Compiles one kernel translation unit to PTX for `arch` (e.g. `sm_90`) with NVRTC, in the
/// variant [`ptx_carry_chains`] selects.
pub fn compile_kernel(src: &KernelSource, arch: &str) -> Result<String, AccelError> {
    compile_kernel_variant(src, arch, ptx_carry_chains())
}

/// NVRTC options for `arch`, with or without the inline PTX carry chains.
fn nvrtc_options(arch: &str, ptx: bool) -> Vec<String> {
    let mut options = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        "-default-device".to_string(),
    ];
    if ptx {
        options.push("-DPM_ENABLE_PTX=1".to_string());
    }
    options
}

/// [`compile_kernel`] for an explicit variant: `ptx` selects the inline PTX carry chains.
/// With a real `sm_XY` target NVRTC also runs ptxas, so bad inline PTX is rejected here.
pub fn compile_kernel_variant(
    src: &KernelSource,
    arch: &str,
    ptx: bool,
) -> Result<String, AccelError> {
    let fail = |log: String| AccelError::KernelCompile {
        kernel: src.name.to_string(),
        arch: arch.to_string(),
        log,
    };
    nvrtc_available().map_err(fail)?;
    let text = kernels::preprocess(src).map_err(|e| fail(e.to_string()))?;
    let opts = CompileOptions {
        options: nvrtc_options(arch, ptx),
        name: Some(src.name.to_string()),
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(text, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => {
            fail(log.to_string_lossy().into_owned())
        }
        other => fail(format!("{other:?}")),
    })?;
    let bytes = ptx
        .as_bytes()
        .ok_or_else(|| fail("NVRTC returned no image".into()))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// FNV-1a: a stable hash for cache keys (std's hasher may change between toolchains).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Directory of compiled kernels: [`KERNEL_CACHE_ENV`], else `$XDG_CACHE_HOME/proofmill/kernels`,
/// else `~/.cache/proofmill/kernels`, else the temp dir.
pub fn kernel_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(KERNEL_CACHE_ENV) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("proofmill/kernels");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache/proofmill/kernels");
    }
    std::env::temp_dir().join("proofmill-kernels")
}

/// [`compile_kernel`] through the on-disk cache keyed by source, NVRTC options and version.
pub fn compile_kernel_cached(
    src: &KernelSource,
    arch: &str,
    cache_dir: &Path,
) -> Result<String, AccelError> {
    let text = kernels::preprocess(src).map_err(|e| AccelError::KernelCompile {
        kernel: src.name.to_string(),
        arch: arch.to_string(),
        log: e.to_string(),
    })?;
    let version = format!("{:?}", nvrtc_version());
    let with_ptx = ptx_carry_chains();
    let options = nvrtc_options(arch, with_ptx).join(" ");
    let key = fnv1a(&[text.as_bytes(), options.as_bytes(), version.as_bytes()]);
    let path = cache_dir.join(format!(
        "{}-{arch}-{key:016x}.ptx",
        src.name.trim_end_matches(".cu")
    ));
    if let Ok(ptx) = std::fs::read_to_string(&path) {
        return Ok(ptx);
    }
    let ptx = compile_kernel_variant(src, arch, with_ptx)?;
    let cache_err = |source| AccelError::Cache {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(cache_dir).map_err(|source| AccelError::Cache {
        path: cache_dir.display().to_string(),
        source,
    })?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &ptx).map_err(cache_err)?;
    std::fs::rename(&tmp, &path).map_err(cache_err)?;
    Ok(ptx)
}
