//! Field elements' stored limbs (halo2curves' Montgomery form) read and written without
//! going through `to_raw_bytes`, which allocates a `Vec` per element.
//!
//! halo2curves stores `Fr` and `Fq` as four little-endian `u64` limbs but does not promise
//! it through `repr`; the first use checks that the memory of a few elements is exactly
//! what `to_raw_bytes` reports, and falls back to `to_raw_bytes` where it is not.

#![allow(unsafe_code)] // the checked reinterpretation below

use std::sync::OnceLock;

use ff::{Field, PrimeField};
use halo2curves::bn256::{Fq, Fr};
use halo2curves::serde::SerdeObject;

const _: () = assert!(
    std::mem::size_of::<Fr>() == 32
        && std::mem::align_of::<Fr>() == 8
        && std::mem::size_of::<Fq>() == 32
        && std::mem::align_of::<Fq>() == 8
);

/// Whether `T`'s memory is its `to_raw_bytes` for a few sample values.
fn memory_is_raw_bytes<T: SerdeObject + Copy>(samples: &[T]) -> bool {
    samples.iter().all(|x| {
        // SAFETY: T is 32 bytes of initialised memory (asserted above for Fr and Fq, the
        // only types this is called with); reading them as bytes is a plain copy.
        let mem: [u8; 32] = unsafe { std::ptr::read((x as *const T).cast()) };
        x.to_raw_bytes().as_slice() == mem.as_slice()
    })
}

/// Whether an `Fr` and an `Fq` are, in memory, exactly their four little-endian limbs.
pub(crate) fn stored_as_limbs() -> bool {
    static CHECKED: OnceLock<bool> = OnceLock::new();
    *CHECKED.get_or_init(|| {
        memory_is_raw_bytes(&[Fr::ONE, Fr::from(5), -Fr::ONE, Fr::ROOT_OF_UNITY])
            && memory_is_raw_bytes(&[Fq::ONE, Fq::from(5), -Fq::ONE])
    })
}

/// The field types whose limbs are read here (Fr and Fq only: the size and the layout
/// check above cover exactly these).
pub(crate) trait StoredField: SerdeObject + Copy {}
impl StoredField for Fr {}
impl StoredField for Fq {}

/// `x`'s stored limbs (its Montgomery form), little-endian.
fn stored_limbs<T: StoredField>(x: &T) -> [u64; 4] {
    if stored_as_limbs() {
        // SAFETY: stored_as_limbs checked that an Fr's and an Fq's memory is their four
        // limbs (T is one of the two); this copies 32 initialised bytes.
        unsafe { std::ptr::read((x as *const T).cast::<[u64; 4]>()) }
    } else {
        let bytes = x.to_raw_bytes();
        std::array::from_fn(|i| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            u64::from_le_bytes(b)
        })
    }
}

/// `x`'s stored limbs (its Montgomery form), little-endian.
pub(crate) fn fr_limbs(x: &Fr) -> [u64; 4] {
    stored_limbs(x)
}

/// `x`'s stored limbs (its Montgomery form), little-endian.
pub(crate) fn fq_limbs(x: &Fq) -> [u64; 4] {
    stored_limbs(x)
}

/// The Fr modulus, little-endian 64-bit limbs.
pub(crate) const FR_MODULUS: [u64; 4] = [
    0x43e1_f593_f000_0001,
    0x2833_e848_79b9_7091,
    0xb850_45b6_8181_585d,
    0x3064_4e72_e131_a029,
];

/// The Fr whose stored limbs are `limbs`, or `None` when they are not below the modulus
/// (not a valid element).
pub(crate) fn fr_from_limbs(limbs: [u64; 4]) -> Option<Fr> {
    // Little-endian limbs: compare from the top.
    let below = limbs
        .iter()
        .rev()
        .zip(FR_MODULUS.iter().rev())
        .find(|(a, b)| a != b)
        .is_some_and(|(a, b)| a < b);
    if !below {
        return None;
    }
    if stored_as_limbs() {
        // SAFETY: stored_as_limbs checked that an Fr's memory is its four limbs, and these
        // are below the modulus, i.e. a valid Fr.
        Some(unsafe { std::ptr::read((&limbs as *const [u64; 4]).cast::<Fr>()) })
    } else {
        let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        Fr::from_raw_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modulus_is_frs_and_validity_is_checked() {
        let hex: String = FR_MODULUS
            .iter()
            .rev()
            .map(|l| format!("{l:016x}"))
            .collect();
        assert_eq!(format!("0x{hex}"), Fr::MODULUS);
        let minus_one = fr_limbs(&-Fr::ONE);
        assert_eq!(fr_from_limbs(minus_one), Some(-Fr::ONE));
        assert_eq!(fr_from_limbs(FR_MODULUS), None);
        assert_eq!(fr_from_limbs([u64::MAX; 4]), None);
        let mut just_below = FR_MODULUS;
        just_below[0] -= 1;
        assert!(fr_from_limbs(just_below).is_some());
        assert_eq!(fr_from_limbs([0; 4]), Some(Fr::ZERO));
    }

    #[test]
    fn limbs_are_the_raw_bytes() {
        for x in [Fr::ZERO, Fr::ONE, Fr::from(12345).square(), -Fr::from(3)] {
            let limbs = fr_limbs(&x);
            let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
            assert_eq!(bytes, x.to_raw_bytes());
        }
        for x in [Fq::ZERO, Fq::ONE, Fq::from(777).square(), -Fq::from(3)] {
            let limbs = fq_limbs(&x);
            let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
            assert_eq!(bytes, x.to_raw_bytes());
        }
    }
}
