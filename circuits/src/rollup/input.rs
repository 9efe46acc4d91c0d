//! The JSON a `rollup` prove job carries (docs/rollup.md): the state header before the batch,
//! the global exit root, and the claims, transfers and exits with the witnesses of every leaf
//! and slot they touch.
//!
//! Encodings: tree roots and Merkle siblings are `0x` + 64 hex digits (as in every proofmill
//! document); amounts, balances, nonces and ids are 64-bit unsigned integers, as JSON numbers
//! or decimal strings; public keys and signatures are written as circomlibjs's `BigInt`s print
//! — decimal strings — and `0x`-hex is accepted too.

use serde::{Deserialize, Serialize};

use super::RollupError;

/// A batch as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupInput {
    /// The chain the batch is for.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub chain_id: u64,
    /// The chain's state before the batch (its hash is the public `old_state_root`).
    pub old_state: StateHeaderInput,
    /// The global exit root the claims are proven against (`0x` + 64 hex digits). Optional
    /// when the batch has no claims (then 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_exit_root: Option<String>,
    /// Claims of other chains' exits, applied first.
    #[serde(default)]
    pub claims: Vec<ClaimInput>,
    /// Transfers, applied after the claims.
    #[serde(default)]
    pub transfers: Vec<TransferInput>,
    /// Exits to other chains, applied last.
    #[serde(default)]
    pub exits: Vec<ExitInput>,
}

/// The parts of a chain's state root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateHeaderInput {
    /// Root of the account tree.
    pub accounts_root: String,
    /// Root of the nullifier tree.
    pub nullifier_root: String,
    /// Root of the local exit tree.
    pub exit_root: String,
    /// Exits made so far: the next free slot of the exit tree.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub exit_count: u64,
}

/// A signature as circomlibjs's `signPoseidon` returns it: `R8` as `[x, y]` and `S`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureInput {
    /// The nonce point, `[x, y]`, decimal (or `0x`-hex) strings.
    #[serde(rename = "R8")]
    pub r8: [String; 2],
    /// The scalar, a decimal (or `0x`-hex) string.
    #[serde(rename = "S")]
    pub s: String,
}

/// An account leaf's pre-state and its Merkle path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafInput {
    /// The owner's Baby Jubjub public key `[Ax, Ay]`, decimal (or `0x`-hex) strings.
    pub public_key: [String; 2],
    /// Balance before the step.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub balance: u64,
    /// Nonce before the step.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub nonce: u64,
    /// Sibling hashes, leaf level first.
    pub path: Vec<String>,
}

/// A signed transfer within the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// Sender account.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub from: u64,
    /// Receiver account (existing; may equal `from`).
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub to: u64,
    /// Amount moved.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub amount: u64,
    /// The sender's nonce this transfer consumes.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub nonce: u64,
    /// The sender's signature of the transfer message.
    pub signature: SignatureInput,
    /// The sender leaf before the transfer.
    pub sender: LeafInput,
    /// The receiver leaf after the sender's update.
    pub receiver: LeafInput,
}

/// A signed exit to another chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitInput {
    /// Sender account.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub from: u64,
    /// Destination chain (not this one).
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub dest_chain: u64,
    /// Destination account on the destination chain.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub to: u64,
    /// Amount moved.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub amount: u64,
    /// The sender's nonce this exit consumes.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub nonce: u64,
    /// The sender's signature of the exit message.
    pub signature: SignatureInput,
    /// The sender leaf before the exit.
    pub sender: LeafInput,
    /// Siblings of exit-tree slot `exit_count` (empty before this exit), leaf level first.
    pub exit_path: Vec<String>,
}

/// An exit as its origin chain recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitRecordInput {
    /// The chain the exit was made on.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub origin_chain: u64,
    /// Its slot in the origin chain's exit tree.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub index: u64,
    /// The sender account on the origin chain.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub from: u64,
    /// The destination chain.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub dest_chain: u64,
    /// The destination account.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub to: u64,
    /// The amount.
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub amount: u64,
}

/// A claim of another chain's exit (no signature needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    /// The exit claimed.
    pub exit: ExitRecordInput,
    /// The account credited (must be the exit's `to`).
    #[serde(deserialize_with = "crate::json::u64_number_or_string")]
    pub account: u64,
    /// Siblings of the exit's leaf in the origin chain's exit tree.
    pub exit_path: Vec<String>,
    /// Siblings of the origin chain's exit root in the global exit tree.
    pub global_path: Vec<String>,
    /// Siblings of the exit's nullifier (unset) in this chain's nullifier tree.
    pub nullifier_path: Vec<String>,
    /// The credited account's leaf before the claim.
    pub receiver: LeafInput,
}

impl RollupInput {
    /// Parses a batch from JSON text, naming the exact place of a shape error.
    pub fn from_json(text: &str) -> Result<Self, RollupError> {
        crate::json::from_json(text).map_err(|(path, message)| RollupError::Json { path, message })
    }

    /// Parses a batch from an already-parsed JSON value (the `input` of a prove job).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, RollupError> {
        crate::json::from_value(value)
            .map_err(|(path, message)| RollupError::Json { path, message })
    }
}
