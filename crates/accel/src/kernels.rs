//! The CUDA sources of `kernels/`, embedded in the binary so a deployed appliance needs no
//! source tree, and the include resolution NVRTC needs (it has no file system access to our
//! headers, and no standard headers at all).
//!
//! This module only handles text; compiling and loading live in [`crate::cuda`].

/// A kernel translation unit: file name and source text.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// File name under `kernels/`, e.g. `msm.cu`.
    pub name: &'static str,
    /// Source text (with `#include "…"` lines still in it).
    pub source: &'static str,
}

/// Headers under `kernels/include/`, by include path.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "common.cuh",
        include_str!("../../../kernels/include/common.cuh"),
    ),
    (
        "field/bn254.cuh",
        include_str!("../../../kernels/include/field/bn254.cuh"),
    ),
    (
        "curve/g1.cuh",
        include_str!("../../../kernels/include/curve/g1.cuh"),
    ),
];

/// The MSM kernels.
pub const MSM: KernelSource = KernelSource {
    name: "msm.cu",
    source: include_str!("../../../kernels/msm.cu"),
};

/// The NTT kernels.
pub const NTT: KernelSource = KernelSource {
    name: "ntt.cu",
    source: include_str!("../../../kernels/ntt.cu"),
};

/// The quotient's gate interpreter.
pub const GATES: KernelSource = KernelSource {
    name: "gates.cu",
    source: include_str!("../../../kernels/gates.cu"),
};

/// Every kernel translation unit.
pub const ALL: &[KernelSource] = &[MSM, NTT, GATES];

/// Error of [`preprocess`]: an include we do not ship.
#[derive(Debug, thiserror::Error)]
#[error("{file}: unknown include \"{include}\"")]
pub struct UnknownInclude {
    /// The including file.
    pub file: String,
    /// The include path.
    pub include: String,
}

/// Inlines every `#include "x"` of our own headers, each once (the headers use
/// `#pragma once` semantics), so the result is a single self-contained source.
pub fn preprocess(src: &KernelSource) -> Result<String, UnknownInclude> {
    let mut out = String::with_capacity(64 * 1024);
    let mut seen = Vec::new();
    inline(src.name, src.source, &mut out, &mut seen)?;
    Ok(out)
}

fn inline(
    file: &str,
    text: &str,
    out: &mut String,
    seen: &mut Vec<&'static str>,
) -> Result<(), UnknownInclude> {
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("#include") {
            let rest = rest.trim();
            if let Some(path) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                let (name, body) =
                    HEADERS
                        .iter()
                        .find(|(n, _)| *n == path)
                        .ok_or_else(|| UnknownInclude {
                            file: file.to_string(),
                            include: path.to_string(),
                        })?;
                if !seen.contains(name) {
                    seen.push(name);
                    out.push_str(&format!("// ---- begin {name}\n"));
                    inline(name, body, out, seen)?;
                    out.push_str(&format!("// ---- end {name}\n"));
                }
                continue;
            }
        }
        if trimmed.starts_with("#pragma once") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(())
}
