//! The SRS store: KZG structured reference strings (halo2 `ParamsKZG<Bn256>`) by size `k`.
//!
//! A KZG SRS is the list `[tau^i]·G1` (and its Lagrange-basis twin) for a secret `tau` that
//! nobody may know; proofs made with an SRS whose `tau` is known can be forged. Production
//! deployments therefore load files converted from the perpetual powers-of-tau ceremony,
//! named `kzg_bn254_{k}.srs`, in the byte format that halo2's `ParamsKZG::read` reads
//! (see [`SrsStore`] for the exact layout).
//!
//! When no such file exists, the store generates a **development** SRS from a public,
//! fixed `tau` (derived from [`DEV_SRS_SEED`]) so that a fresh checkout proves and verifies
//! without downloads, with the same keys on every machine. Such an SRS is insecure: it is
//! marked [`Srs::is_insecure`], it is recognised again when read back from disk, and every
//! load logs a loud `tracing::warn!`.
//!
//! Generation is fast (about 10 s at `k = 21` and 1.3 s at `k = 18` on 2 cores, where
//! halo2's `ParamsKZG::setup` takes minutes): the powers of `tau` and the Lagrange values `L_i(tau)` are
//! computed in the scalar field, then all `2·2^k` points come from one fixed-base
//! multiplication of the G1 generator with a precomputed window table and batched affine
//! additions. The result is byte-for-byte what `ParamsKZG::setup` would produce for the
//! same `tau` (checked by the tests).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use sha2::{Digest, Sha256};

/// The seed the development `tau` is hashed from. Changing it changes every development
/// key, so it carries a version.
pub const DEV_SRS_SEED: &[u8] = b"proofmill insecure development SRS v1";

/// Largest supported `k`: BN254's scalar field has 2^28-th roots of unity and no larger
/// power-of-two ones, so halo2 cannot build a bigger evaluation domain.
pub const MAX_K: u32 = Fr::S;

/// Bytes of one G1 point in the file format (x, y as 32-byte Montgomery limbs).
const G1_BYTES: usize = 64;
/// Bytes of one G2 point in the file format.
const G2_BYTES: usize = 128;
/// Bytes of the `k` header (little-endian u32).
const HEADER_BYTES: usize = 4;
/// Points parsed per read while streaming a file (4 MiB of G1 points).
const READ_CHUNK_POINTS: usize = 1 << 16;

mod dev;
mod file;

use dev::{dev_g1_tau, dev_tau, generate_params};
pub use file::read_srs_file;
use file::{read_g1_points, write_atomically};

/// Why an SRS could not be loaded. Every message names the file or value at fault and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SrsError {
    /// The requested size is outside what BN254 supports.
    #[error("SRS size k={k} is out of range: k must be between 1 and {MAX_K}")]
    InvalidK {
        /// The requested k.
        k: u32,
    },
    /// Reading, writing or listing a file failed.
    #[error("SRS I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file's header says another size than its name.
    #[error(
        "SRS file {} holds k={found} but its name says k={expected}; \
         rename it to kzg_bn254_{found}.srs or replace it with a real kzg_bn254_{expected}.srs",
        path.display()
    )]
    KMismatch {
        /// The file.
        path: PathBuf,
        /// The k in the file name.
        expected: u32,
        /// The k in the file header.
        found: u32,
    },
    /// The file is not a well-formed SRS (wrong length, bad points, inconsistent powers).
    #[error(
        "SRS file {} is truncated or corrupt: {reason}; delete it (a development SRS is \
         regenerated) or replace it with a good copy",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What exactly is wrong.
        reason: String,
    },
}

/// Where an [`Srs`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
    /// Read from a parameters file whose `tau` is not the development one, e.g. a file
    /// converted from the perpetual powers-of-tau ceremony. proofmill cannot prove that a
    /// file came from a ceremony; pin [`Srs::srs_id`] in operations to be sure.
    File {
        /// The file read.
        path: PathBuf,
        /// The file's own k; larger than the loaded k when the SRS was downsized.
        file_k: u32,
    },
    /// The development SRS, whose `tau` is public: insecure, for development and tests only.
    Development {
        /// The file it was read from or saved to, if any.
        path: Option<PathBuf>,
    },
}

/// A loaded SRS for exactly one `k`, with where it came from and a stable identifier.
#[derive(Debug)]
pub struct Srs {
    params: ParamsKZG<Bn256>,
    k: u32,
    provenance: Provenance,
    id: String,
}

impl Srs {
    /// The halo2 parameters, for keygen, proving and verification.
    pub fn params(&self) -> &ParamsKZG<Bn256> {
        &self.params
    }

    /// The size: the parameters hold `2^k` powers.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Where these parameters came from.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// True for the development SRS, whose `tau` is public: proofs made with it prove
    /// nothing, because anyone can forge them.
    pub fn is_insecure(&self) -> bool {
        matches!(self.provenance, Provenance::Development { .. })
    }

    /// A stable identifier of these parameters: lowercase hex of SHA-256 over a domain tag,
    /// `k`, `g[0]`, `g[1]`, `g2` and `s_g2`.
    ///
    /// That suffices because a well-formed SRS is a function of the generators, `tau` and
    /// `k` alone (`g[i] = tau^i·g[0]`, the Lagrange points follow from `tau` and `k`,
    /// `s_g2 = tau·g2`), and `g[1]` pins `tau`. Keys made with equal ids are
    /// interchangeable, and downsizing the same ceremony file gives the same id as the
    /// exact file. It is not a checksum of a file: load-time checks catch corruption.
    pub fn srs_id(&self) -> &str {
        &self.id
    }

    /// Generates the development SRS for `k` in memory (no file is read or written).
    /// Insecure: see [`DEV_SRS_SEED`].
    pub fn development(k: u32) -> Result<Self, SrsError> {
        check_k(k)?;
        let params = generate_params(k, dev_tau());
        Ok(Self::from_params(
            params,
            Provenance::Development { path: None },
        ))
    }

    fn from_params(params: ParamsKZG<Bn256>, provenance: Provenance) -> Self {
        let k = params.k();
        let id = srs_id_of(&params);
        Self {
            params,
            k,
            provenance,
            id,
        }
    }
}

/// One cache slot per k; its own lock serialises loaders of that k without blocking others.
type Slot = Arc<Mutex<Option<Arc<Srs>>>>;

/// A directory of `kzg_bn254_{k}.srs` files with an in-memory cache.
///
/// File format (halo2's `ParamsKZG::write`, i.e. `SerdeFormat::RawBytesUnchecked`, the
/// format of the converted perpetual powers-of-tau files): `k` as a little-endian `u32`,
/// then `2^k` G1 points `g[i] = tau^i·G1`, then `2^k` G1 points `g_lagrange[i] =
/// L_i(tau)·G1`, then `g2` and `s_g2 = tau·g2`; each point as its affine coordinates in
/// Montgomery form (64 bytes per G1 point, 128 per G2 point).
///
/// Files are validated as they are read (exact length, coordinates in range, points on
/// the curve, `e(g[1], g2) = e(g[0], s_g2)`, and the Lagrange points summing to `g[0]`),
/// so a damaged file gives [`SrsError::Corrupt`] instead of a panic or wrong proofs.
#[derive(Debug)]
pub struct SrsStore {
    dir: PathBuf,
    cache: Mutex<HashMap<u32, Slot>>,
}

impl SrsStore {
    /// A store over `dir`. Nothing is read until [`SrsStore::load`]; the directory need not
    /// exist yet (it is created when a development SRS is saved).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The directory searched for files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The SRS files in the directory, by k, each with whether it is the insecure development
    /// SRS (or why it cannot be read). Reads every file: for reports, not for hot paths.
    pub fn list(&self) -> Vec<(u32, PathBuf, Result<bool, String>)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let k = name
                    .strip_prefix("kzg_bn254_")?
                    .strip_suffix(".srs")?
                    .parse()
                    .ok()?;
                Some((k, e.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(k, path)| {
                let status = read_srs_file(&path, k)
                    .map(|srs| srs.is_insecure())
                    .map_err(|e| e.to_string());
                (k, path, status)
            })
            .collect()
    }

    /// A ceremony (not development) SRS file that can serve `k`: `kzg_bn254_{j}.srs` with
    /// `j >= k` whose tau is not the development one. Reads only each file's header and
    /// first two points, so it is cheap at any `k`; the full checks happen when it is loaded.
    pub fn ceremony_file(&self, k: u32) -> Option<PathBuf> {
        let entries = fs::read_dir(&self.dir).ok()?;
        let mut candidates: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let k = e.file_name().to_str().and_then(parse_file_name)?;
                Some((k, e.path()))
            })
            .filter(|(file_k, _)| *file_k >= k && *file_k <= MAX_K)
            .collect();
        candidates.sort();
        candidates.into_iter().map(|(_, p)| p).find(|path| {
            let Ok(mut file) = File::open(path) else {
                return false;
            };
            let mut header = [0u8; HEADER_BYTES];
            if file.read_exact(&mut header).is_err() {
                return false;
            }
            match read_g1_points(&mut file, 2, "g") {
                Ok(points) => !(points[0] == G1Affine::generator() && points[1] == dev_g1_tau()),
                Err(_) => false,
            }
        })
    }

    /// The path where the file for `k` lives: `{dir}/kzg_bn254_{k}.srs`.
    pub fn file_path(&self, k: u32) -> PathBuf {
        self.dir.join(file_name(k))
    }

    /// The SRS for exactly `k`.
    ///
    /// In order: the in-memory cache; the exact file `kzg_bn254_{k}.srs`; the smallest
    /// larger file, downsized (slow for ceremony files at large k, as halo2 recomputes the
    /// Lagrange basis with a group FFT: place the exact file to avoid it); otherwise the
    /// development SRS is generated and saved as `kzg_bn254_{k}.srs` (atomically). A
    /// corrupt file is an error, never skipped silently. Loading an insecure SRS from disk
    /// or generating one logs a warning each time.
    pub fn load(&self, k: u32) -> Result<Arc<Srs>, SrsError> {
        check_k(k)?;
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cache.entry(k).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(srs) = slot.as_ref() {
            tracing::debug!(k, srs_id = srs.srs_id(), "SRS served from memory");
            return Ok(Arc::clone(srs));
        }
        let srs = Arc::new(self.load_uncached(k)?);
        *slot = Some(Arc::clone(&srs));
        Ok(srs)
    }

    fn load_uncached(&self, k: u32) -> Result<Srs, SrsError> {
        let exact = self.file_path(k);
        let srs = if exact.is_file() {
            read_srs_file(&exact, k)?
        } else if let Some((file_k, path)) = self.smallest_larger_file(k)? {
            tracing::info!(k, file_k, path = %path.display(), "downsizing a larger SRS file");
            read_srs_file(&path, k)?
        } else {
            self.generate_and_save(k)
        };
        if srs.is_insecure() {
            warn_insecure(&srs);
        } else {
            tracing::info!(k, srs_id = srs.srs_id(), provenance = ?srs.provenance, "SRS loaded");
        }
        Ok(srs)
    }

    /// The smallest `kzg_bn254_{j}.srs` with `j > k` in the directory, if any.
    fn smallest_larger_file(&self, k: u32) -> Result<Option<(u32, PathBuf)>, SrsError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SrsError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut best: Option<(u32, PathBuf)> = None;
        for entry in entries {
            let entry = entry.map_err(|source| SrsError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(file_k) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            if file_k > k
                && file_k <= MAX_K
                && entry.path().is_file()
                && best.as_ref().is_none_or(|(b, _)| file_k < *b)
            {
                best = Some((file_k, entry.path()));
            }
        }
        Ok(best)
    }

    fn generate_and_save(&self, k: u32) -> Srs {
        let path = self.file_path(k);
        tracing::warn!(
            k,
            path = %path.display(),
            "no SRS file for k={k}: generating an INSECURE development SRS (its tau is public)"
        );
        let start = Instant::now();
        let params = generate_params(k, dev_tau());
        tracing::info!(
            k,
            seconds = start.elapsed().as_secs_f64(),
            "development SRS generated"
        );
        let saved = match write_atomically(&self.dir, &path, &params) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!(
                    "could not save the development SRS ({e}); it will be regenerated next run"
                );
                None
            }
        };
        Srs::from_params(params, Provenance::Development { path: saved })
    }
}

fn warn_insecure(srs: &Srs) {
    let path = match &srs.provenance {
        Provenance::Development { path: Some(p) } => p.display().to_string(),
        _ => "(memory)".to_owned(),
    };
    tracing::warn!(
        k = srs.k,
        srs_id = srs.srs_id(),
        path,
        "USING THE INSECURE DEVELOPMENT SRS: its tau is public, so proofs made with it can be \
         FORGED. For production put the ceremony file kzg_bn254_{}.srs in the SRS directory.",
        srs.k
    );
}

fn check_k(k: u32) -> Result<(), SrsError> {
    if (1..=MAX_K).contains(&k) {
        Ok(())
    } else {
        Err(SrsError::InvalidK { k })
    }
}

fn file_name(k: u32) -> String {
    format!("kzg_bn254_{k}.srs")
}

/// `kzg_bn254_{k}.srs` -> k (canonical decimal only).
fn parse_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("kzg_bn254_")?.strip_suffix(".srs")?;
    let k: u32 = digits.parse().ok()?;
    (k.to_string() == digits).then_some(k)
}

fn srs_id_of(params: &ParamsKZG<Bn256>) -> String {
    let mut h = Sha256::new();
    h.update(b"proofmill-srs-id/v1");
    h.update(params.k().to_le_bytes());
    for p in params.get_g().iter().take(2) {
        h.update(p.to_raw_bytes());
    }
    h.update(params.g2().to_raw_bytes());
    h.update(params.s_g2().to_raw_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::dev::{fixed_base_g1, fixed_base_g1_with_window};
    use super::*;
    use halo2_base::halo2_proofs::halo2curves::ff::Field;
    use halo2_base::halo2_proofs::halo2curves::group::Curve;
    use halo2_base::halo2_proofs::SerdeFormat;
    use rand::SeedableRng;

    fn bytes(params: &ParamsKZG<Bn256>) -> Vec<u8> {
        let mut out = Vec::new();
        params
            .write_custom(&mut out, SerdeFormat::RawBytes)
            .expect("write to memory");
        out
    }

    #[test]
    fn generation_equals_halo2_setup() {
        for k in 1..=6u32 {
            let rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(k) + 100);
            let tau = Fr::random(rng.clone());
            let ours = generate_params(k, tau);
            let theirs = ParamsKZG::<Bn256>::setup(k, rng);
            assert_eq!(bytes(&ours), bytes(&theirs), "k={k}");
            assert_eq!(srs_id_of(&ours), srs_id_of(&theirs));
        }
    }

    #[test]
    fn fixed_base_matches_naive_on_edge_scalars() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut scalars = vec![
            Fr::ZERO,
            Fr::ONE,
            -Fr::ONE,
            Fr::from(2),
            Fr::from(u64::MAX),
            -Fr::from(2),
            Fr::TWO_INV,
        ];
        scalars.extend((0..40).map(|_| Fr::random(&mut rng)));
        let r = Fr::random(&mut rng);
        scalars.extend([r, r, -r]);
        let naive: Vec<G1Affine> = scalars
            .iter()
            .map(|s| (G1Affine::generator() * s).to_affine())
            .collect();
        for w in [2, 3, 5, 8, 9] {
            assert_eq!(fixed_base_g1_with_window(&scalars, w), naive, "w={w}");
        }
        assert_eq!(fixed_base_g1(&scalars), naive);
    }

    #[test]
    fn dev_tau_is_not_a_root_of_unity() {
        let tau = dev_tau();
        assert_ne!(tau, Fr::ZERO);
        assert_ne!(tau.pow_vartime([1u64 << MAX_K]), Fr::ONE);
    }

    #[test]
    fn development_srs_id_is_pinned() {
        // The development tau must never change by accident: every development proving
        // and verifying key depends on it. Update this only with a new DEV_SRS_SEED.
        let srs = Srs::development(4).expect("generate");
        assert_eq!(
            srs.srs_id(),
            "dcdf2d494686b708bc56dd63200fbf8b0520acfa33ae63f2504a1b596ac9b58c"
        );
    }

    #[test]
    fn srs_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Srs>();
        check::<SrsStore>();
    }

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("kzg_bn254_21.srs"), Some(21));
        assert_eq!(parse_file_name("kzg_bn254_021.srs"), None);
        assert_eq!(parse_file_name("kzg_bn254_x.srs"), None);
        assert_eq!(parse_file_name("kzg_bn254_21.srs.tmp"), None);
        assert_eq!(file_name(7), "kzg_bn254_7.srs");
    }
}
