//! What a job is, as the store keeps it and the API shows it: its kind, its status, the stage
//! it has reached, how each attempt ended, and the validated request itself as one serde type.
//! Every value read back from the database goes through these types, so a row this version
//! does not understand is an error that names the job, never a silent default.
//!
//! This module owns the vocabulary only; it reads and writes nothing.

use std::{fmt, str::FromStr};

use proofmill_prover::{epoch::SettledState, Transcript};
use serde::{Deserialize, Serialize};

/// A value that is not one of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}: expected {}", expected.join(", "))]
pub struct UnknownWord {
    /// The vocabulary (`status`, `stage`, ...).
    pub what: &'static str,
    /// The word found.
    pub got: String,
    /// The words there are.
    pub expected: Vec<&'static str>,
}

/// A closed vocabulary stored as text: each word's name, and parsing that refuses others.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and displayed word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord {
                        what: $what,
                        got: s.to_owned(),
                        expected: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

vocabulary!(
    /// Where a job is in its life.
    JobStatus, "status", {
        /// Accepted, waiting for a device (or for its input jobs).
        Queued => "queued",
        /// On a device.
        Running => "running",
        /// Done: the proof (or, for a keygen job, the keys) can be used.
        Succeeded => "succeeded",
        /// Could not be done; `error` says why.
        Failed => "failed",
        /// Cancelled by its owner.
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    /// True once the job will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

vocabulary!(
    /// What a job does.
    JobKind, "job type", {
        /// Prove one batch of a catalog circuit.
        Prove => "prove",
        /// Fold proofs into one.
        Aggregate => "aggregate",
        /// Settle one epoch: one proof per bridged chain, from the settled state.
        Epoch => "epoch",
        /// Make (or fetch) a circuit's keys, so that proofs of it can be verified here.
        Keygen => "keygen",
    }
);

vocabulary!(
    /// The step a running job has reached.
    JobStage, "stage", {
        /// Its input is parsed and validated into a witness.
        Witness => "witness",
        /// Its witness is ready; the device is still busy with the job before.
        WaitingForDevice => "waiting_for_device",
        /// The SRS is loaded (or generated).
        Srs => "srs",
        /// The proving key is loaded.
        Keys => "keys",
        /// The proving key is generated (first use of a circuit under an SRS).
        Keygen => "keygen",
        /// The prover runs.
        Proving => "proving",
        /// The stock verifier checks the proof.
        Verifying => "verifying",
    }
);

impl JobStage {
    /// The rough completed fraction at the start of the stage.
    pub fn progress(self) -> f64 {
        match self {
            Self::Witness => 0.02,
            Self::WaitingForDevice => 0.05,
            Self::Srs => 0.08,
            Self::Keys => 0.12,
            Self::Keygen => 0.15,
            Self::Proving => 0.35,
            Self::Verifying => 0.9,
        }
    }
}

impl From<proofmill_prover::Stage> for JobStage {
    fn from(stage: proofmill_prover::Stage) -> Self {
        use proofmill_prover::Stage;
        match stage {
            Stage::Witness => Self::Witness,
            Stage::Srs => Self::Srs,
            Stage::Keys => Self::Keys,
            Stage::Keygen => Self::Keygen,
            Stage::Proving => Self::Proving,
            Stage::Verifying => Self::Verifying,
        }
    }
}

vocabulary!(
    /// How one attempt of a job ended.
    AttemptOutcome, "attempt outcome", {
        /// It produced the job's result.
        Succeeded => "succeeded",
        /// It failed, and the job with it.
        Failed => "failed",
        /// It failed for a reason worth retrying; the job went back to the queue.
        Retry => "retry",
        /// Its owner cancelled the job.
        Cancelled => "cancelled",
        /// Its node stopped renewing the lease (died or lost the database).
        LeaseExpired => "lease_expired",
        /// It was put back in the queue without a failure (shutdown, restart, no worker).
        Requeued => "requeued",
        /// Its result came after the job already had one.
        Superseded => "superseded",
    }
);

/// One input of an aggregate or epoch job, as stored: one of the owner's jobs, or a proof
/// envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredInput {
    /// A job whose proof is the input; the aggregate or epoch waits for it.
    Job(String),
    /// A proof envelope (already checked for shape at submission).
    Proof(serde_json::Value),
}

/// A settled state inside [`StoredRequest`] is read through a JSON value: the tagged enum
/// buffers its fields, and serde's buffer cannot read the state's chain-id map keys (JSON
/// strings) as integers; a JSON value can.
mod via_json_value {
    use proofmill_prover::epoch::SettledState;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(state: &SettledState, s: S) -> Result<S::Ok, S::Error> {
        state.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SettledState, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        serde_json::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// A validated request as the job store keeps it (JSON in the `request` column): read only
/// when the job is about to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredRequest {
    /// Prove one batch.
    Prove {
        /// Catalog name.
        circuit: String,
        /// The batch, as validated at submission.
        input: serde_json::Value,
        /// Order among the owner's own jobs.
        priority: i32,
        /// The proof's transcript.
        transcript: Transcript,
    },
    /// Fold proofs into one.
    Aggregate {
        /// The inputs, in rollup order.
        inputs: Vec<StoredInput>,
        /// Final (keccak) rather than poseidon.
        #[serde(rename = "final")]
        final_: bool,
        /// Order among the owner's own jobs.
        priority: i32,
        /// The aggregation's circuit, `aggregate(…)` of its inputs' circuits, when all of
        /// them were known at submission (an input job's circuit, an input proof's
        /// envelope): placement sizes the job by it, and by whether its keys exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        circuit: Option<String>,
    },
    /// Settle one epoch.
    Epoch {
        /// The inputs: one proof per chain.
        inputs: Vec<StoredInput>,
        /// What L1 held before the epoch (validated at submission).
        #[serde(with = "via_json_value")]
        state: SettledState,
        /// Final (keccak) rather than poseidon.
        #[serde(rename = "final")]
        final_: bool,
        /// Order among the owner's own jobs.
        priority: i32,
    },
    /// Make a circuit's keys.
    Keygen {
        /// A catalog name, an `aggregate(…)` or an `epoch(…)` name.
        circuit: String,
        /// Order among the owner's own jobs.
        priority: i32,
    },
}

impl StoredRequest {
    /// What the job does.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Prove { .. } => JobKind::Prove,
            Self::Aggregate { .. } => JobKind::Aggregate,
            Self::Epoch { .. } => JobKind::Epoch,
            Self::Keygen { .. } => JobKind::Keygen,
        }
    }

    /// The circuit of the job's proof or keys: the one a prove or keygen request names, an
    /// aggregate's when its inputs' circuits were known at submission, none for an epoch
    /// (its circuit orders the inputs by chain id, known only from the proofs).
    pub fn circuit(&self) -> Option<&str> {
        match self {
            Self::Prove { circuit, .. } | Self::Keygen { circuit, .. } => Some(circuit),
            Self::Aggregate { circuit, .. } => circuit.as_deref(),
            Self::Epoch { .. } => None,
        }
    }

    /// The transcript of the result (a keygen job makes no proof: none).
    pub fn transcript(&self) -> Option<Transcript> {
        match self {
            Self::Prove { transcript, .. } => Some(*transcript),
            Self::Aggregate { final_: true, .. } | Self::Epoch { final_: true, .. } => {
                Some(Transcript::Keccak)
            }
            Self::Aggregate { final_: false, .. } | Self::Epoch { final_: false, .. } => {
                Some(Transcript::Poseidon)
            }
            Self::Keygen { .. } => None,
        }
    }

    /// The jobs an aggregate or epoch waits for, in input order.
    pub fn input_jobs(&self) -> Vec<String> {
        match self {
            Self::Aggregate { inputs, .. } | Self::Epoch { inputs, .. } => inputs
                .iter()
                .filter_map(|i| match i {
                    StoredInput::Job(id) => Some(id.clone()),
                    StoredInput::Proof(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Its priority.
    pub fn priority(&self) -> i32 {
        match self {
            Self::Prove { priority, .. }
            | Self::Aggregate { priority, .. }
            | Self::Epoch { priority, .. }
            | Self::Keygen { priority, .. } => *priority,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_named() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(*s));
        }
        for s in JobStage::ALL {
            assert_eq!(s.as_str().parse::<JobStage>(), Ok(*s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.as_str().into())
            );
        }
        let err = "provng".parse::<JobStage>().unwrap_err().to_string();
        assert!(err.contains("provng") && err.contains("proving"), "{err}");
        assert!("lease_expired".parse::<AttemptOutcome>().is_ok());
    }

    #[test]
    fn stored_requests_keep_the_format_of_earlier_rows() {
        let aggregate: StoredRequest = serde_json::from_str(
            r#"{"type":"aggregate","inputs":[{"job":"job_a"},{"proof":{"format":"x"}}],"final":true,"priority":0}"#,
        )
        .unwrap();
        assert_eq!(aggregate.input_jobs(), ["job_a"]);
        assert_eq!(aggregate.transcript(), Some(Transcript::Keccak));
        let prove: StoredRequest = serde_json::from_str(
            r#"{"type":"prove","circuit":"c","input":{},"priority":3,"transcript":"keccak"}"#,
        )
        .unwrap();
        assert_eq!(prove.kind(), JobKind::Prove);
        assert_eq!(prove.priority(), 3);
        assert!(
            serde_json::from_str::<StoredRequest>(r#"{"type":"prove","circuit":"c"}"#).is_err()
        );
    }

    #[test]
    fn stored_epoch_requests_round_trip() {
        use proofmill_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fr;
        let state = SettledState::genesis([(3, Fr::from(1), Fr::from(2), u128::MAX)]);
        let epoch = StoredRequest::Epoch {
            inputs: vec![
                StoredInput::Job("job_a".into()),
                StoredInput::Proof(serde_json::json!({"format": "x"})),
                StoredInput::Job("job_b".into()),
            ],
            state: state.clone(),
            final_: true,
            priority: -2,
        };
        let text = serde_json::to_string(&epoch).unwrap();
        assert!(
            text.starts_with(r#"{"type":"epoch","inputs":"#) && text.contains(r#""final":true"#),
            "{text}"
        );
        let back: StoredRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, epoch);
        assert_eq!(back.kind(), JobKind::Epoch);
        assert_eq!(back.kind().as_str().parse::<JobKind>(), Ok(JobKind::Epoch));
        assert_eq!(back.input_jobs(), ["job_a", "job_b"]);
        assert_eq!(back.transcript(), Some(Transcript::Keccak));
        assert_eq!(back.circuit(), None);
        assert_eq!(back.priority(), -2);
        let StoredRequest::Epoch { state: read, .. } = &back else {
            unreachable!()
        };
        assert_eq!(read.chains[&3].balance, u128::MAX);
        let poseidon = StoredRequest::Epoch {
            inputs: vec![StoredInput::Job("job_a".into())],
            state,
            final_: false,
            priority: 0,
        };
        assert_eq!(poseidon.transcript(), Some(Transcript::Poseidon));
        let mut value = serde_json::to_value(&poseidon).unwrap();
        value["state"]["extra"] = 1.into();
        assert!(serde_json::from_value::<StoredRequest>(value).is_err());
    }
}
