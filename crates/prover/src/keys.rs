//! The key cache: proving keys per circuit configuration, generated once and kept on disk,
//! keyed by circuit name and SRS id (a key made under one SRS is useless under another).
//!
//! On disk, `{dir}/{circuit}/{srs-id}/` holds `pk.bin` (halo2's raw format) and `meta.json`
//! (the circuit layout parameters, break points, vk hash and a checksum of `pk.bin`). A file
//! that fails its checksum is regenerated, not trusted.

use std::{
    collections::HashMap,
    fs,
    io::{BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{srs::Srs, ProverError};

/// Everything needed to prove and verify one circuit configuration under one SRS.
pub struct CircuitKeys {
    /// The circuit.
    pub circuit: CatalogCircuit,
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

type Slot = Arc<OnceLock<Arc<CircuitKeys>>>;

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

    /// Directory of one circuit's keys under one SRS.
    pub fn key_dir(&self, circuit: &CatalogCircuit, srs_id: &str) -> PathBuf {
        let id = srs_id.trim_start_matches("0x");
        self.dir
            .join(circuit.name().replace('/', "__"))
            .join(&id[..id.len().min(16)])
    }

    /// The keys for `circuit` under `srs`: from memory, else from disk, else generated (and
    /// saved). Concurrent callers for the same key wait for one generation.
    pub fn get(
        &self,
        circuit: &CatalogCircuit,
        srs: &Srs,
        on_keygen: &dyn Fn(),
    ) -> Result<Arc<CircuitKeys>, ProverError> {
        let slot = {
            let mut loaded = self
                .loaded
                .lock()
                .map_err(|_| ProverError::Internal("key cache lock poisoned".into()))?;
            loaded
                .entry((circuit.name(), srs.srs_id().to_owned()))
                .or_default()
                .clone()
        };
        if let Some(keys) = slot.get() {
            return Ok(keys.clone());
        }
        // Serialise generation per key: the OnceLock holds the first successful result.
        static GENERATION: Mutex<()> = Mutex::new(());
        let _guard = GENERATION
            .lock()
            .map_err(|_| ProverError::Internal("keygen lock poisoned".into()))?;
        if let Some(keys) = slot.get() {
            return Ok(keys.clone());
        }
        let dir = self.key_dir(circuit, srs.srs_id());
        let keys = match self.read(circuit, srs, &dir) {
            Ok(keys) => keys,
            Err(reason) => {
                if dir.join("meta.json").exists() {
                    tracing::warn!(dir = %dir.display(), %reason, "cached key unusable; regenerating");
                }
                on_keygen();
                let keys = generate(circuit, srs)?;
                write(&keys, &dir)?;
                keys
            }
        };
        let keys = Arc::new(keys);
        let _ = slot.set(keys.clone());
        Ok(keys)
    }

    fn read(&self, circuit: &CatalogCircuit, srs: &Srs, dir: &Path) -> Result<CircuitKeys, String> {
        let meta: KeyMeta =
            serde_json::from_slice(&fs::read(dir.join("meta.json")).map_err(|e| e.to_string())?)
                .map_err(|e| format!("meta.json: {e}"))?;
        if meta.circuit != circuit.name() || meta.srs_id != srs.srs_id() {
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
        Ok(CircuitKeys {
            circuit: *circuit,
            vk_hash: vk_hash(pk.get_vk()),
            pk,
            config_params: meta.config_params,
            break_points: meta.break_points,
            srs_id: meta.srs_id,
        })
    }
}

/// Runs keygen for a circuit: lays out its keygen witness, fixes the column layout, and
/// generates the verifying and proving keys.
pub fn generate(circuit: &CatalogCircuit, srs: &Srs) -> Result<CircuitKeys, ProverError> {
    let shape = circuit.shape();
    if srs.k() != shape.k {
        return Err(ProverError::Internal(format!(
            "SRS has k={} but {} needs k={}",
            srs.k(),
            circuit.name(),
            shape.k
        )));
    }
    let mut builder = builder_for(circuit, CircuitBuilderStage::Keygen);
    circuit.synthesize(&mut builder, &circuit.keygen_witness())?;
    let config_params = builder.calculate_params(Some(BLINDING_ROWS));
    let vk = keygen_vk(srs.params(), &builder).map_err(|e| ProverError::Keygen(e.to_string()))?;
    let pk =
        keygen_pk(srs.params(), vk, &builder).map_err(|e| ProverError::Keygen(e.to_string()))?;
    let break_points = builder.break_points();
    Ok(CircuitKeys {
        circuit: *circuit,
        vk_hash: vk_hash(pk.get_vk()),
        pk,
        config_params,
        break_points,
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
        circuit: keys.circuit.name(),
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
