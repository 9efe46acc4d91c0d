//! The SRS file format (halo2's `ParamsKZG` raw bytes; see [`super::SrsStore`]): reading a
//! file for some `k` (downsizing a larger one), checking every point and the pairing that ties
//! G1 to G2, and writing a file atomically. Nothing here decides which file to use.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use halo2_base::halo2_proofs::arithmetic::g_to_lagrange;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine, G2Affine, G1};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_base::halo2_proofs::halo2curves::pairing::Engine;
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::poly::commitment::Params;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rayon::prelude::*;

use super::{
    check_k,
    dev::{dev_g1_tau, dev_tau, fixed_base_g1, lagrange_scalars, params_from_parts},
    parse_file_name, Provenance, Srs, SrsError, G1_BYTES, G2_BYTES, HEADER_BYTES, MAX_K,
    READ_CHUNK_POINTS,
};

/// Reads the SRS for `k` from `path`, which may hold a larger SRS (it is then downsized).
///
/// Recognises the development SRS (its `g[1]` is the development `tau` times G1) and
/// marks it insecure. See [`SrsStore`] for the format and the checks.
pub fn read_srs_file(path: &Path, k: u32) -> Result<Srs, SrsError> {
    check_k(k)?;
    let io_err = |source| SrsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |reason: String| SrsError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();

    let mut header = [0u8; HEADER_BYTES];
    file.read_exact(&mut header).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt(format!("{len} bytes is shorter than the 4-byte header"))
        } else {
            io_err(e)
        }
    })?;
    let file_k = u32::from_le_bytes(header);
    if let Some(name_k) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_file_name)
    {
        if name_k != file_k {
            return Err(SrsError::KMismatch {
                path: path.to_path_buf(),
                expected: name_k,
                found: file_k,
            });
        }
    }
    if file_k > MAX_K {
        return Err(corrupt(format!(
            "header says k={file_k}, more than BN254's maximum {MAX_K}"
        )));
    }
    if file_k < k {
        return Err(corrupt(format!(
            "holds k={file_k}, smaller than the k={k} asked for"
        )));
    }
    let file_n = 1usize << file_k;
    let expected_len = (HEADER_BYTES + 2 * file_n * G1_BYTES + 2 * G2_BYTES) as u64;
    if len != expected_len {
        return Err(corrupt(format!(
            "{len} bytes, but an SRS with k={file_k} has exactly {expected_len} bytes"
        )));
    }

    let n = 1usize << k;
    let read_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt("ended early while reading".to_owned())
        } else {
            io_err(e)
        }
    };
    let g = read_g1_points(&mut file, n, "g").map_err(|e| e.into_srs_error(read_err, corrupt))?;
    let g_lagrange = if file_k == k {
        Some(
            read_g1_points(&mut file, n, "g_lagrange")
                .map_err(|e| e.into_srs_error(read_err, corrupt))?,
        )
    } else {
        None
    };
    file.seek(SeekFrom::Start(expected_len - 2 * G2_BYTES as u64))
        .map_err(io_err)?;
    let mut g2_bytes = [0u8; 2 * G2_BYTES];
    file.read_exact(&mut g2_bytes).map_err(read_err)?;
    let g2 = G2Affine::from_raw_bytes(&g2_bytes[..G2_BYTES])
        .ok_or_else(|| corrupt("g2 is not a valid G2 point".to_owned()))?;
    let s_g2 = G2Affine::from_raw_bytes(&g2_bytes[G2_BYTES..])
        .ok_or_else(|| corrupt("s_g2 is not a valid G2 point".to_owned()))?;

    // Consistency: g[0] is a generator, and g[1] and s_g2 carry the same tau.
    let (g0, g1) = match (g.first(), g.get(1)) {
        (Some(g0), Some(g1)) => (*g0, *g1),
        _ => return Err(corrupt("fewer than two powers".to_owned())),
    };
    if bool::from(g0.is_identity()) || bool::from(g2.is_identity()) {
        return Err(corrupt("g[0] or g2 is the identity".to_owned()));
    }
    if Bn256::pairing(&g1, &g2) != Bn256::pairing(&g0, &s_g2) {
        return Err(corrupt(
            "e(g[1], g2) != e(g[0], s_g2): the G1 and G2 powers do not share one tau".to_owned(),
        ));
    }
    let insecure = g0 == G1Affine::generator() && g1 == dev_g1_tau();

    let g_lagrange = match g_lagrange {
        Some(g_lagrange) => {
            // sum_i L_i(tau) = 1, so the Lagrange points must sum to g[0].
            let sum = g_lagrange
                .par_chunks(4096)
                .map(|c| c.iter().fold(G1::identity(), |acc, p| acc + p))
                .reduce(G1::identity, |a, b| a + b);
            if sum.to_affine() != g0 {
                return Err(corrupt("the Lagrange points do not sum to g[0]".to_owned()));
            }
            g_lagrange
        }
        None if insecure => fixed_base_g1(&lagrange_scalars(k, dev_tau())),
        None => {
            if k >= 16 {
                tracing::warn!(
                    k,
                    file_k,
                    path = %path.display(),
                    "downsizing recomputes the Lagrange basis with a group FFT, which takes \
                     minutes at this size (about 2 minutes at k=16 on 2 cores, growing like \
                     k·2^k); put kzg_bn254_{k}.srs in the SRS directory to skip it"
                );
            }
            let start = Instant::now();
            let g_lagrange = g_to_lagrange(g.iter().map(PrimeCurveAffine::to_curve).collect(), k);
            tracing::info!(
                k,
                file_k,
                seconds = start.elapsed().as_secs_f64(),
                "Lagrange basis recomputed for the downsized SRS"
            );
            g_lagrange
        }
    };

    let params = params_from_parts(k, g, g_lagrange, g2, s_g2);
    let provenance = if insecure {
        Provenance::Development {
            path: Some(path.to_path_buf()),
        }
    } else {
        Provenance::File {
            path: path.to_path_buf(),
            file_k,
        }
    };
    Ok(Srs::from_params(params, provenance))
}

/// Failure while streaming points: either I/O or a bad point at an index.
pub(super) enum PointReadError {
    Io(io::Error),
    BadPoint { what: &'static str, index: usize },
}

impl PointReadError {
    fn into_srs_error(
        self,
        io: impl FnOnce(io::Error) -> SrsError,
        corrupt: impl FnOnce(String) -> SrsError,
    ) -> SrsError {
        match self {
            Self::Io(e) => io(e),
            Self::BadPoint { what, index } => corrupt(format!(
                "{what}[{index}] is not a valid G1 point (coordinate out of range or not on the curve)"
            )),
        }
    }
}

/// Reads `count` raw G1 points, checking each (in parallel, a chunk at a time).
pub(super) fn read_g1_points(
    reader: &mut impl Read,
    count: usize,
    what: &'static str,
) -> Result<Vec<G1Affine>, PointReadError> {
    let mut points = Vec::with_capacity(count);
    let mut buf = vec![0u8; READ_CHUNK_POINTS.min(count) * G1_BYTES];
    while points.len() < count {
        let take = READ_CHUNK_POINTS.min(count - points.len());
        let bytes = &mut buf[..take * G1_BYTES];
        reader.read_exact(bytes).map_err(PointReadError::Io)?;
        let base = points.len();
        let parsed: Vec<Option<G1Affine>> = bytes
            .par_chunks_exact(G1_BYTES)
            .map(G1Affine::from_raw_bytes)
            .collect();
        for (i, p) in parsed.into_iter().enumerate() {
            points.push(p.ok_or(PointReadError::BadPoint {
                what,
                index: base + i,
            })?);
        }
    }
    Ok(points)
}

/// Writes `params` to `path` via a temporary file in `dir` and a rename, so readers never
/// see a half-written file and concurrent writers cannot interleave.
pub(super) fn write_atomically(
    dir: &Path,
    path: &Path,
    params: &ParamsKZG<Bn256>,
) -> Result<(), SrsError> {
    fs::create_dir_all(dir).map_err(|source| SrsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{nanos}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("srs"),
        std::process::id()
    ));
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        params.write(&mut writer)?;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        drop(writer);
        fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        SrsError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
