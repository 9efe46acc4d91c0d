//! Integers beyond 64 bits on the wire: decimal or `0x`-hex text, as JavaScript's `BigInt`
//! prints them (`toString()`, `"0x" + toString(16)`), converted to field elements.

use halo2_base::{
    halo2_proofs::halo2curves::bn256::Fr,
    utils::{biguint_to_fe, fe_to_biguint, modulus},
};
use num_bigint::BigUint;

/// Why a text is not an acceptable integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegerError {
    /// Not decimal digits, nor `0x` and hex digits.
    #[error("{value:?} is not a decimal integer nor 0x-prefixed hex")]
    Malformed {
        /// The offending text.
        value: String,
    },
    /// Not below the BN254 scalar field modulus.
    #[error("{value} is not below the BN254 scalar field modulus (21888242871839275222246405745257275088548364400416034343698204186575808495617)")]
    OutOfRange {
        /// The offending text.
        value: String,
    },
}

/// Parses decimal digits, or `0x` followed by 1 to 64 hex digits.
pub fn parse(text: &str) -> Result<BigUint, IntegerError> {
    let malformed = || IntegerError::Malformed {
        value: text.to_owned(),
    };
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.len() <= 64 => (hex, 16),
        Some(_) => return Err(malformed()),
        None if !text.is_empty() && text.len() <= 78 => (text, 10),
        None => return Err(malformed()),
    };
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(malformed());
    }
    BigUint::parse_bytes(digits.as_bytes(), radix).ok_or_else(malformed)
}

/// Parses a field element from decimal or `0x`-hex text, refusing values not below the modulus.
pub fn parse_field(text: &str) -> Result<Fr, IntegerError> {
    let value = parse(text)?;
    if value >= modulus::<Fr>() {
        return Err(IntegerError::OutOfRange {
            value: text.to_owned(),
        });
    }
    Ok(biguint_to_fe(&value))
}

/// The canonical integer of a field element.
pub fn to_biguint(value: &Fr) -> BigUint {
    fe_to_biguint(value)
}

/// The field element of an integer below the modulus (callers reduce first).
pub fn to_field(value: &BigUint) -> Fr {
    biguint_to_fe(value)
}

/// Decimal text of a field element (what circomlibjs's `F.toObject(x).toString()` prints).
pub fn to_decimal(value: &Fr) -> String {
    fe_to_biguint(value).to_str_radix(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex_agree_and_bad_text_is_refused() {
        assert_eq!(parse_field("255"), Ok(Fr::from(255)));
        assert_eq!(parse_field("0xff"), Ok(Fr::from(255)));
        assert_eq!(parse_field("0x00ff"), Ok(Fr::from(255)));
        let p = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
        assert!(matches!(
            parse_field(p),
            Err(IntegerError::OutOfRange { .. })
        ));
        let p_minus_1 =
            "21888242871839275222246405745257275088548364400416034343698204186575808495616";
        assert_eq!(parse_field(p_minus_1), Ok(-Fr::from(1)));
        for bad in ["", "0x", "-1", "1.5", "0xg", "12a", " 1"] {
            assert!(
                matches!(parse(bad), Err(IntegerError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(to_decimal(&Fr::from(1234)), "1234");
    }
}
