//! Field elements' stored limbs (halo2curves' Montgomery form) read and written without
//! going through `to_raw_bytes`, which allocates a `Vec` per element.
//!
//! halo2curves stores `Fr` and `Fq` as four little-endian `u64` limbs but does not promise
//! it through `repr`; the first use checks that the memory of a few elements is exactly
//! what `to_raw_bytes` reports, and falls back to the byte functions where it is not.

#![allow(unsafe_code)] // the checked reinterpretation below

use std::sync::OnceLock;

use ff::Field;
use halo2curves::bn256::{Fq, Fr};
use halo2curves::serde::SerdeObject;

const _: () = assert!(
    std::mem::size_of::<Fr>() == 32
        && std::mem::align_of::<Fr>() == 8
        && std::mem::size_of::<Fq>() == 32
        && std::mem::align_of::<Fq>() == 8
);

/// The field types whose limbs are read and written here: Fr and Fq only (the size
/// assertion and the layout check cover exactly these).
pub(crate) trait StoredField: SerdeObject + Field {
    /// The modulus, little-endian 64-bit limbs.
    const MODULUS_LIMBS: [u64; 4];
}

impl StoredField for Fr {
    const MODULUS_LIMBS: [u64; 4] = [
        0x43e1_f593_f000_0001,
        0x2833_e848_79b9_7091,
        0xb850_45b6_8181_585d,
        0x3064_4e72_e131_a029,
    ];
}

impl StoredField for Fq {
    const MODULUS_LIMBS: [u64; 4] = [
        0x3c20_8c16_d87c_fd47,
        0x9781_6a91_6871_ca8d,
        0xb850_45b6_8181_585d,
        0x3064_4e72_e131_a029,
    ];
}

/// Whether `T`'s memory is its `to_raw_bytes` for a few sample values.
fn memory_is_raw_bytes<T: StoredField>() -> bool {
    let five = T::ONE.double().double() + T::ONE;
    [T::ONE, five, -T::ONE, five.square()].iter().all(|x| {
        // SAFETY: T is Fr or Fq, 32 bytes of initialised memory (asserted above);
        // reading them as bytes is a plain copy.
        let mem: [u8; 32] = unsafe { std::ptr::read((x as *const T).cast()) };
        x.to_raw_bytes().as_slice() == mem.as_slice()
    })
}

/// Whether an `Fr` and an `Fq` are, in memory, exactly their four little-endian limbs.
pub(crate) fn stored_as_limbs() -> bool {
    static CHECKED: OnceLock<bool> = OnceLock::new();
    *CHECKED.get_or_init(|| memory_is_raw_bytes::<Fr>() && memory_is_raw_bytes::<Fq>())
}

/// `x`'s stored limbs (its Montgomery form), little-endian.
pub(crate) fn limbs<T: StoredField>(x: &T) -> [u64; 4] {
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

/// The element whose stored limbs are `limbs`, or `None` when they are not below the
/// modulus (not a valid element).
pub(crate) fn from_limbs<T: StoredField>(limbs: [u64; 4]) -> Option<T> {
    // Little-endian limbs: compare from the top.
    let below = limbs
        .iter()
        .rev()
        .zip(T::MODULUS_LIMBS.iter().rev())
        .find(|(a, b)| a != b)
        .is_some_and(|(a, b)| a < b);
    if !below {
        return None;
    }
    if stored_as_limbs() {
        // SAFETY: stored_as_limbs checked that T's memory is its four limbs, and these
        // are below the modulus, i.e. a valid element.
        Some(unsafe { std::ptr::read((&limbs as *const [u64; 4]).cast::<T>()) })
    } else {
        let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        T::from_raw_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use ff::PrimeField;

    use super::*;

    fn check<T: StoredField + PrimeField + std::fmt::Debug>(samples: &[T]) {
        let hex: String = T::MODULUS_LIMBS
            .iter()
            .rev()
            .map(|l| format!("{l:016x}"))
            .collect();
        assert_eq!(format!("0x{hex}"), <T as PrimeField>::MODULUS);
        for x in samples {
            let l = limbs(x);
            let bytes: Vec<u8> = l.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(bytes, x.to_raw_bytes());
            assert_eq!(from_limbs::<T>(l), Some(*x));
        }
        assert_eq!(from_limbs::<T>(T::MODULUS_LIMBS), None);
        assert_eq!(from_limbs::<T>([u64::MAX; 4]), None);
        let mut just_below = T::MODULUS_LIMBS;
        just_below[0] -= 1;
        assert!(from_limbs::<T>(just_below).is_some());
        assert_eq!(from_limbs::<T>([0; 4]), Some(T::ZERO));
    }

    #[test]
    fn limbs_round_trip_and_validity_is_checked() {
        check(&[Fr::ZERO, Fr::ONE, Fr::from(12345).square(), -Fr::from(3)]);
        check(&[Fq::ZERO, Fq::ONE, Fq::from(777).square(), -Fq::from(3)]);
    }
}
