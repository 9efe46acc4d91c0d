//! The key cache: proving keys per circuit configuration, generated once and kept on disk,
//! keyed by circuit name and SRS id (a key made under one SRS is useless under another).
//!
//! On disk, `{dir}/{readable name}-{name hash}/{srs id prefix}/` (see [`KeyStore::key_dir`])
//! holds `pk.bin` (halo2's raw format) and `meta.json` (the circuit layout parameters, break
//! points, vk hash and a checksum of `pk.bin`). A file that fails its checksum is regenerated,
//! not trusted. A key directory another node made (fetched from a cluster's bucket) carries
//! a [`FETCHED_MARKER`] file until this node has checked its verifying key against one it
//! computed itself from the circuit; a key that does not match is never used.
//!
//! Coordination is per key: callers asking for the same key wait for one load or generation;
//! keys of other circuits proceed meanwhile, so an aggregation's keygen, which needs its
//! children's keys, never waits on itself.
//!
//! Where keys may come from is the caller's choice ([`KeySource`]): verifying a proof that
//! arrived from outside uses only keys this appliance has; work admitted as a job, or asked
//! for by the operator, may generate them.

use std::{
    collections::HashMap,
    fs,
    io::{BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
    gates::flex_gate::MultiPhaseThreadBreakPoints,
    halo2_proofs::{
        halo2curves::bn256::{Fr, G1Affine},
        plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
        SerdeFormat,
    },
};
use proofmill_circuits::{builder_for, CatalogCircuit, BLINDING_ROWS};

/// The file in a key directory that says it was fetched from another node and its verifying
/// key has not been checked here yet.
pub const FETCHED_MARKER: &str = "fetched";

/// Where keys may come from when neither memory nor disk has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Only keys this appliance already has: for verifying proofs that arrive from outside
    /// (`POST /v1/verify`, an aggregate job's input proofs), which must never start a keygen
    /// (minutes and gigabytes for an aggregation) on their own.
    Existing,
    /// Generate missing keys: for work admitted as a job (its own circuit) and for the
    /// operator's commands.
    Generate,
}
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{srs::Srs, ProverError};

/// Everything needed to prove and verify one circuit configuration under one SRS.
pub struct CircuitKeys {
    /// Name of the circuit (a catalog name or an aggregation's name).
    pub circuit: String,
    /// The proving key (its verifying key inside).
    pub pk: ProvingKey<G1Affine>,
    /// The halo2-base layout the key was made with.
    pub config_params: BaseCircuitParams,
    /// Where witness generation must break rows into columns to match the key.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// SHA-256 of the verifying key, `0x` + 64 hex digits.
    pub vk_hash: String,
    /// The SRS the key was made under.
    pub srs_id: String,
}

impl CircuitKeys {
    /// The verifying key.
    pub fn vk(&self) -> &VerifyingKey<G1Affine> {
        self.pk.get_vk()
    }
}

/// A key on disk, as listed by [`KeyStore::cached`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedKey {
    /// The SRS it was made under.
    pub srs_id: String,
    /// SHA-256 of its verifying key.
    pub vk_hash: String,
}

#[derive(Serialize, Deserialize)]
struct KeyMeta {
    circuit: String,
    srs_id: String,
    config_params: BaseCircuitParams,
    break_points: MultiPhaseThreadBreakPoints,
    vk_hash: String,
    pk_sha256: String,
}

/// SHA-256 of a verifying key's canonical bytes.
pub fn vk_hash(vk: &VerifyingKey<G1Affine>) -> String {
    format!(
        "0x{}",
        hex::encode(Sha256::digest(vk.to_bytes(SerdeFormat::RawBytes)))
    )
}

/// One key's place in memory: `None` until loaded or generated. Its mutex is what callers
/// for the same key wait on.
type Slot = Arc<Mutex<Option<Arc<CircuitKeys>>>>;

/// Proving keys on disk and in memory.
pub struct KeyStore {
    dir: PathBuf,
    loaded: Mutex<HashMap<(String, String), Slot>>,
}

impl KeyStore {
    /// A store under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Directory of one circuit's keys, under every SRS. Names of deep aggregation trees are
    /// long, so the directory is a readable prefix plus a hash of the full name.
    fn circuit_dir(&self, circuit: &str) -> PathBuf {
        let readable: String = circuit
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        let digest = hex::encode(&Sha256::digest(circuit.as_bytes())[..6]);
        self.dir.join(format!("{readable}-{digest}"))
    }

    /// Directory of one circuit's keys under one SRS: the circuit's directory, then the first
    /// 16 hex digits of the SRS id.
    pub fn key_dir(&self, circuit: &str, srs_id: &str) -> PathBuf {
        let id = srs_id.trim_start_matches("0x");
        self.circuit_dir(circuit).join(&id[..id.len().min(16)])
    }

    /// The keys for catalog circuit `circuit` under `srs`: from memory, else from disk, else
    /// generated (and saved) when `source` allows.
    pub fn get(
        &self,
        circuit: &CatalogCircuit,
        srs: &Srs,
        source: KeySource,
        on_keygen: &dyn Fn(),
    ) -> Result<Arc<CircuitKeys>, ProverError> {
        self.get_or_generate(&circuit.name(), srs, source, on_keygen, &|| {
            keygen_layout(circuit, srs)
        })
    }

    /// The keys of `name` on disk, under every SRS, as their metadata describes them: what
    /// listing the catalog shows without loading an SRS or a key (a few small files read).
    pub fn cached(&self, name: &str) -> Vec<CachedKey> {
        let mut found: Vec<CachedKey> = self
            .metas(name)
            .into_iter()
            .map(|meta| CachedKey {
                srs_id: meta.srs_id,
                vk_hash: meta.vk_hash,
            })
            .collect();
        found.sort_by(|a, b| a.srs_id.cmp(&b.srs_id));
        found
    }

    /// The halo2-base layout of the keys named `name` (any SRS), from memory or from their
    /// `meta.json`, without loading a key: what sizes a proof's memory before it runs.
    pub fn cached_params(&self, name: &str) -> Option<BaseCircuitParams> {
        let in_memory = self.loaded.lock().ok().and_then(|loaded| {
            loaded
                .iter()
                .filter(|((circuit, _), _)| circuit == name)
                .find_map(|(_, slot)| {
                    slot.try_lock()
                        .ok()
                        .and_then(|s| s.as_ref().map(|k| k.config_params.clone()))
                })
        });
        in_memory.or_else(|| {
            self.metas(name)
                .into_iter()
                .next()
                .map(|meta| meta.config_params)
        })
    }

    /// The readable `meta.json` of every key of `name` on disk, one per SRS.
    fn metas(&self, name: &str) -> Vec<KeyMeta> {
        let Ok(entries) = fs::read_dir(self.circuit_dir(name)) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| fs::read(e.path().join("meta.json")).ok())
            .filter_map(|bytes| serde_json::from_slice::<KeyMeta>(&bytes).ok())
            .filter(|meta| meta.circuit == name)
            .collect()
    }

    /// True when memory or disk holds the keys named `name` under SRS `srs_id` (not checked:
    /// a cheap look before admitting work that needs them).
    pub fn has(&self, name: &str, srs_id: &str) -> bool {
        let in_memory = self
            .loaded
            .lock()
            .ok()
            .and_then(|loaded| loaded.get(&(name.to_owned(), srs_id.to_owned())).cloned())
            .is_some_and(|slot| slot.lock().map(|s| s.is_some()).unwrap_or(false));
        in_memory || self.key_dir(name, srs_id).join("meta.json").is_file()
    }

    /// The keys named `name` under `srs`: from memory, else from disk, else (when `source`
    /// allows) generated from `layout`, the circuit laid out for keygen with its parameters
    /// calculated. `layout` is also what a key fetched from another node is checked against.
    pub fn get_or_generate(
        &self,
        name: &str,
        srs: &Srs,
        source: KeySource,
        on_keygen: &dyn Fn(),
        layout: &dyn Fn() -> Result<BaseCircuitBuilder<Fr>, ProverError>,
    ) -> Result<Arc<CircuitKeys>, ProverError> {
        let slot = {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            loaded
                .entry((name.to_owned(), srs.srs_id().to_owned()))
                .or_default()
                .clone()
        };
        // Held while this key is loaded or generated: callers for the same key wait here, once.
        // A panic in a generation leaves `None`, which the next caller retries.
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = held.as_ref() {
            return Ok(keys.clone());
        }
        let dir = self.key_dir(name, srs.srs_id());
        // Looked at before reading: a read that refuses a key removes it.
        let cached = dir.join("meta.json").exists();
        let keys = match self.read(name, srs, &dir, layout) {
            Ok(keys) => keys,
            Err(reason) => {
                if source == KeySource::Existing {
                    return Err(ProverError::KeysMissing {
                        circuit: name.to_owned(),
                        reason: if cached {
                            reason
                        } else {
                            "this appliance has never made or fetched them".to_owned()
                        },
                    });
                }
                if cached {
                    tracing::warn!(dir = %dir.display(), %reason, "cached key unusable; regenerating");
                }
                on_keygen();
                let builder = layout()?;
                let keys = keygen_builder(name, srs, &builder)?;
                write(&keys, &dir)?;
                keys
            }
        };
        let keys = Arc::new(keys);
        *held = Some(keys.clone());
        Ok(keys)
    }

    fn read(
        &self,
        name: &str,
        srs: &Srs,
        dir: &Path,
        layout: &dyn Fn() -> Result<BaseCircuitBuilder<Fr>, ProverError>,
    ) -> Result<CircuitKeys, String> {
        let meta: KeyMeta =
            serde_json::from_slice(&fs::read(dir.join("meta.json")).map_err(|e| e.to_string())?)
                .map_err(|e| format!("meta.json: {e}"))?;
        if meta.circuit != name || meta.srs_id != srs.srs_id() {
            return Err(format!(
                "meta.json is for {} under SRS {}",
                meta.circuit, meta.srs_id
            ));
        }
        let bytes = fs::read(dir.join("pk.bin")).map_err(|e| e.to_string())?;
        let checksum = hex::encode(Sha256::digest(&bytes));
        if checksum != meta.pk_sha256 {
            return Err(format!(
                "pk.bin checksum {checksum} does not match meta.json"
            ));
        }
        let pk = ProvingKey::<G1Affine>::read::<_, BaseCircuitBuilder<Fr>>(
            &mut BufReader::new(&bytes[..]),
            SerdeFormat::RawBytesUnchecked,
            meta.config_params.clone(),
        )
        .map_err(|e| format!("pk.bin: {e}"))?;
        let marker = dir.join(FETCHED_MARKER);
        if marker.exists() {
            // Made by another node: its checksum sits beside it in the same bucket, so only a
            // verifying key computed here from the circuit says the key is the circuit's.
            tracing::info!(
                circuit = name,
                "checking a fetched proving key against the verifying key computed here"
            );
            let builder = layout()
                .map_err(|e| format!("laying out the circuit to check a fetched key: {e}"))?;
            let expected = keygen_vk(srs.params(), &builder)
                .map_err(|e| format!("computing the verifying key to check a fetched key: {e}"))?;
            if vk_hash(&expected) != vk_hash(pk.get_vk()) {
                let _ = fs::remove_dir_all(dir);
                return Err(format!(
                    "the proving key fetched from the cluster's bucket has vk {} but the circuit's verifying key computed here is {}: it was discarded",
                    vk_hash(pk.get_vk()),
                    vk_hash(&expected)
                ));
            }
            fs::remove_file(&marker).map_err(|e| format!("{}: {e}", marker.display()))?;
        }
        Ok(CircuitKeys {
            circuit: name.to_owned(),
            vk_hash: vk_hash(pk.get_vk()),
            pk,
            config_params: meta.config_params,
            break_points: meta.break_points,
            srs_id: meta.srs_id,
        })
    }
}

/// A catalog circuit laid out for keygen (its keygen witness, parameters calculated).
pub fn keygen_layout(
    circuit: &CatalogCircuit,
    srs: &Srs,
) -> Result<BaseCircuitBuilder<Fr>, ProverError> {
    let shape = circuit.shape();
    if srs.k() != shape.k {
        return Err(ProverError::SrsSize {
            circuit: circuit.name(),
            srs_k: srs.k(),
            needed_k: shape.k,
        });
    }
    let mut builder = builder_for(circuit, CircuitBuilderStage::Keygen);
    circuit.synthesize(&mut builder, &circuit.keygen_witness())?;
    builder.calculate_params(Some(BLINDING_ROWS));
    Ok(builder)
}

/// Generates keys for a laid-out builder whose parameters are already calculated.
pub fn keygen_builder(
    name: &str,
    srs: &Srs,
    builder: &BaseCircuitBuilder<Fr>,
) -> Result<CircuitKeys, ProverError> {
    let failed = |e: halo2_base::halo2_proofs::plonk::Error| ProverError::Keygen {
        circuit: name.to_owned(),
        message: e.to_string(),
    };
    let vk = keygen_vk(srs.params(), builder).map_err(failed)?;
    let pk = keygen_pk(srs.params(), vk, builder).map_err(failed)?;
    Ok(CircuitKeys {
        circuit: name.to_owned(),
        vk_hash: vk_hash(pk.get_vk()),
        pk,
        config_params: builder.config_params.clone(),
        break_points: builder.break_points(),
        srs_id: srs.srs_id().to_owned(),
    })
}

fn io_error(path: &Path, e: std::io::Error) -> ProverError {
    ProverError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Writes keys atomically: into a temporary directory, synced, then renamed into place.
fn write(keys: &CircuitKeys, dir: &Path) -> Result<(), ProverError> {
    let parent = dir.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
    let pk_bytes = keys.pk.to_bytes(SerdeFormat::RawBytesUnchecked);
    let meta = KeyMeta {
        circuit: keys.circuit.clone(),
        srs_id: keys.srs_id.clone(),
        config_params: keys.config_params.clone(),
        break_points: keys.break_points.clone(),
        vk_hash: keys.vk_hash.clone(),
        pk_sha256: hex::encode(Sha256::digest(&pk_bytes)),
    };
    for (name, bytes) in [
        ("pk.bin", pk_bytes),
        (
            "meta.json",
            serde_json::to_vec_pretty(&meta).expect("key metadata serializes"),
        ),
    ] {
        let path = tmp.join(name);
        let file = fs::File::create(&path).map_err(|e| io_error(&path, e))?;
        let mut w = BufWriter::new(file);
        w.write_all(&bytes).map_err(|e| io_error(&path, e))?;
        let file = w
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
    }
    let _ = fs::remove_dir_all(dir);
    fs::rename(&tmp, dir).map_err(|e| io_error(dir, e))?;
    Ok(())
}
