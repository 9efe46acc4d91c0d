//! The proof envelope: the JSON form in which a proof leaves the appliance
//! (`proofmill-proof/1`, see docs/api.md). It carries everything a verifier needs besides the
//! verifying key, which it names by hash.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use proofmill_circuits::field::{self, FieldElementError};
use serde::{Deserialize, Serialize};

/// The only envelope format this version reads and writes.
pub const FORMAT: &str = "proofmill-proof/1";
/// The largest proof an envelope may carry, in bytes (an aggregation proof is ~5-20 KB).
pub const MAX_PROOF_BYTES: usize = 256 * 1024;
/// The most public inputs an envelope may carry (an aggregate of rollup proofs has ~20).
pub const MAX_PUBLIC_INPUTS: usize = 4096;

/// The Fiat-Shamir transcript a proof was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transcript {
    /// Poseidon: cheap to verify inside an aggregation circuit.
    #[default]
    Poseidon,
    /// Keccak-256: verifiable on Ethereum.
    Keccak,
}

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transcript::Poseidon => "poseidon",
            Transcript::Keccak => "keccak",
        })
    }
}

impl std::str::FromStr for Transcript {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "poseidon" => Ok(Self::Poseidon),
            "keccak" => Ok(Self::Keccak),
            other => Err(format!(
                "unknown transcript {other:?}: expected poseidon or keccak"
            )),
        }
    }
}

/// A proof with its public inputs and the names of what it proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofEnvelope {
    /// Always [`FORMAT`].
    pub format: String,
    /// Catalog name of the circuit.
    pub circuit: String,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// SHA-256 of the verifying key, `0x` + 64 hex digits.
    pub vk_hash: String,
    /// Transcript the proof was made with.
    pub transcript: Transcript,
    /// Public inputs per instance column, as field elements.
    pub instances: Vec<Vec<String>>,
    /// The proof bytes, `0x`-prefixed hex.
    pub proof: String,
    /// The SRS the proof was made with (absent in envelopes of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srs: Option<SrsLabel>,
}

/// Which SRS a proof was made or checked with: development (public tau, anyone can forge
/// proofs under it) or a ceremony file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsLabel {
    /// The SRS id (see `Srs::srs_id`): equal ids, interchangeable keys.
    pub id: String,
    /// `development` or `ceremony`.
    pub kind: String,
    /// True for the development SRS: proofs under it prove nothing.
    pub insecure: bool,
    /// The ceremony file's name (`kzg_bn254_22.srs`); absent for the development SRS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl SrsLabel {
    /// The label of a loaded SRS (a file's name, never its directory).
    pub fn of(srs: &crate::Srs) -> Self {
        match srs.provenance() {
            crate::srs::Provenance::File { path, .. } => Self {
                id: srs.srs_id().to_owned(),
                kind: "ceremony".to_owned(),
                insecure: false,
                file: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            },
            _ => Self {
                id: srs.srs_id().to_owned(),
                kind: "development".to_owned(),
                insecure: true,
                file: None,
            },
        }
    }
}

/// Why an envelope cannot be used at all (as opposed to a proof that is merely invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not JSON of the envelope's shape.
    #[error("not a proof envelope: {0}")]
    Json(String),
    /// Another format version.
    #[error("envelope format is {found:?}; this proofmill reads {FORMAT:?}")]
    Format {
        /// The format found.
        found: String,
    },
    /// A public input is not a field element.
    #[error("instances[{column}][{row}]: {source}")]
    Instance {
        /// Instance column.
        column: usize,
        /// Row in that column.
        row: usize,
        /// What is wrong with the value.
        source: FieldElementError,
    },
    /// The proof is not hex.
    #[error("proof is not 0x-prefixed hex: {0}")]
    ProofHex(String),
    /// The envelope is larger than any proof this appliance makes.
    #[error("{what} is {got}; the limit is {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        got: usize,
        /// The limit.
        limit: usize,
    },
}

impl ProofEnvelope {
    /// Parses and checks the shape of an envelope.
    pub fn from_json(text: &str) -> Result<Self, EnvelopeError> {
        let envelope: Self =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        envelope.check_format()?;
        Ok(envelope)
    }

    /// Parses an envelope from an already-parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, EnvelopeError> {
        let envelope: Self =
            serde_json::from_value(value).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        envelope.check_format()?;
        Ok(envelope)
    }

    fn check_format(&self) -> Result<(), EnvelopeError> {
        if self.format != FORMAT {
            return Err(EnvelopeError::Format {
                found: self.format.clone(),
            });
        }
        let hex_digits = self.proof.len().saturating_sub(2);
        if hex_digits > 2 * MAX_PROOF_BYTES {
            return Err(EnvelopeError::TooLarge {
                what: "the proof (bytes)",
                got: hex_digits / 2,
                limit: MAX_PROOF_BYTES,
            });
        }
        let inputs: usize = self.instances.iter().map(Vec::len).sum();
        if inputs > MAX_PUBLIC_INPUTS || self.instances.len() > MAX_PUBLIC_INPUTS {
            return Err(EnvelopeError::TooLarge {
                what: "the number of public inputs",
                got: inputs.max(self.instances.len()),
                limit: MAX_PUBLIC_INPUTS,
            });
        }
        Ok(())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an envelope serializes")
    }

    /// The public inputs as field elements.
    pub fn instance_values(&self) -> Result<Vec<Vec<Fr>>, EnvelopeError> {
        self.instances
            .iter()
            .enumerate()
            .map(|(column, values)| {
                values
                    .iter()
                    .enumerate()
                    .map(|(row, v)| {
                        field::from_hex(v).map_err(|source| EnvelopeError::Instance {
                            column,
                            row,
                            source,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// The proof bytes.
    pub fn proof_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        let digits = self
            .proof
            .strip_prefix("0x")
            .ok_or_else(|| EnvelopeError::ProofHex("missing 0x prefix".into()))?;
        hex::decode(digits).map_err(|e| EnvelopeError::ProofHex(e.to_string()))
    }

    /// Encodes public inputs for the envelope.
    pub fn encode_instances(instances: &[Vec<Fr>]) -> Vec<Vec<String>> {
        instances
            .iter()
            .map(|col| col.iter().map(field::to_hex).collect())
            .collect()
    }
}
