//! The JSON witness a prove job carries: the old root, the transfers, and for each touched leaf
//! its pre-state and Merkle path. Amounts, balances and nonces are 64-bit unsigned integers,
//! written as JSON numbers or as decimal strings (for clients whose numbers are doubles).

use serde::{Deserialize, Serialize};

use super::BatchError;

/// A batch as submitted: what a sequencer sends to be proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// State root before the batch, `0x` + 64 hex digits.
    pub old_root: String,
    /// The transfers, in order (1 to B of them; the circuit pads the rest).
    pub transfers: Vec<TransferInput>,
}

/// One transfer with the witnesses of the two leaves it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// Sender account id (leaf index).
    pub from: u64,
    /// Receiver account id (leaf index); may equal `from`.
    pub to: u64,
    /// Amount moved.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub amount: u64,
    /// The sender's nonce this transfer consumes.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub nonce: u64,
    /// The sender leaf before the transfer, in the root before it.
    pub sender: LeafInput,
    /// The receiver leaf after the sender's update, in the intermediate root.
    pub receiver: LeafInput,
}

/// A leaf's pre-state and its Merkle path (siblings from the leaf level up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafInput {
    /// Balance before the step.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub balance: u64,
    /// Nonce before the step.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub nonce: u64,
    /// True when the leaf is empty (an account that does not exist yet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty: bool,
    /// Sibling hashes, leaf level first, each `0x` + 64 hex digits.
    pub path: Vec<String>,
}

impl BatchInput {
    /// Parses a batch from JSON, naming the exact place of a shape error.
    pub fn from_json(text: &str) -> Result<Self, BatchError> {
        crate::json::from_json(text).map_err(|(path, message)| BatchError::Json { path, message })
    }

    /// Parses a batch from an already-parsed JSON value (the `input` of a prove job).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, BatchError> {
        crate::json::from_value(value).map_err(|(path, message)| BatchError::Json { path, message })
    }
}
