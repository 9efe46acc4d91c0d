//! The wire format of BN254 scalar field elements: `0x`-prefixed, 32-byte, big-endian hex.
//!
//! Every JSON document proofmill reads or writes (batch inputs, proof envelopes) uses this
//! one encoding, so parsing lives here once and says precisely what is wrong with a value.

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr};

/// Why a string is not a field element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldElementError {
    /// The string does not start with `0x`.
    #[error("{value:?} is not 0x-prefixed hex")]
    MissingPrefix {
        /// The offending text.
        value: String,
    },
    /// The hex digits are malformed or the wrong length.
    #[error("{value:?} is not 32 bytes of hex (expected 64 hex digits after 0x, got {digits})")]
    Malformed {
        /// The offending text.
        value: String,
        /// How many characters followed the prefix.
        digits: usize,
    },
    /// The number is not below the BN254 scalar field modulus.
    #[error("{value} is not below the BN254 scalar field modulus (r = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001)")]
    OutOfRange {
        /// The offending text.
        value: String,
    },
}

/// Encodes a field element as `0x` + 64 hex digits, big-endian.
pub fn to_hex(value: &Fr) -> String {
    let mut bytes = value.to_repr();
    bytes.reverse();
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x` + 64 hex digits, big-endian, refusing values not below the modulus.
pub fn from_hex(text: &str) -> Result<Fr, FieldElementError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| FieldElementError::MissingPrefix {
            value: text.to_owned(),
        })?;
    let malformed = || FieldElementError::Malformed {
        value: text.to_owned(),
        digits: digits.len(),
    };
    if digits.len() != 64 {
        return Err(malformed());
    }
    let mut bytes: [u8; 32] = hex::decode(digits)
        .map_err(|_| malformed())?
        .try_into()
        .map_err(|_| malformed())?;
    bytes.reverse();
    Option::from(Fr::from_repr(bytes)).ok_or_else(|| FieldElementError::OutOfRange {
        value: text.to_owned(),
    })
}

/// A field element from a `u64`.
pub fn from_u64(value: u64) -> Fr {
    Fr::from(value)
}

/// The zero element (an empty leaf, the start of the commitment chain).
pub fn zero() -> Fr {
    Fr::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let x = Fr::from(0x1234_5678_9abc_def0u64);
        let text = to_hex(&x);
        assert_eq!(
            text,
            "0x000000000000000000000000000000000000000000000000123456789abcdef0"
        );
        assert_eq!(from_hex(&text), Ok(x));
        assert!(matches!(
            from_hex("1234"),
            Err(FieldElementError::MissingPrefix { .. })
        ));
        assert!(matches!(
            from_hex("0x12"),
            Err(FieldElementError::Malformed { digits: 2, .. })
        ));
        let bad_digit = format!("0x{}", "g".repeat(64));
        assert!(matches!(
            from_hex(&bad_digit),
            Err(FieldElementError::Malformed { .. })
        ));
        let modulus = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert!(matches!(
            from_hex(modulus),
            Err(FieldElementError::OutOfRange { .. })
        ));
        let max = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000";
        assert_eq!(from_hex(max), Ok(-Fr::ONE));
    }
}
