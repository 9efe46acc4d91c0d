//! EdDSA on Baby Jubjub with Poseidon, as circomlib's `verifyPoseidon` and circomlibjs's
//! `prv2pub` / `signPoseidon` define it, natively and in-circuit.
//!
//! - Key derivation: `h = BLAKE-512(prv)` (the original BLAKE, not BLAKE2); the first 32
//!   bytes pruned (`h[0] &= 0xF8`, `h[31] &= 0x7F`, `h[31] |= 0x40`) read little-endian give
//!   `s`; the public key is `A = (s >> 3)·B8`.
//! - Signing `M` (a field element): `r = BLAKE-512(h[32..64] ‖ LE32(M)) mod l`, `R8 = r·B8`,
//!   `c = Poseidon(R8.x, R8.y, A.x, A.y, M)` (circomlib's Poseidon), `S = (r + c·s) mod l`.
//! - Verifying: `R8` and `A` on the curve, `S < l`, and `S·B8 = R8 + (8c)·A`. We also refuse
//!   a low-order `A` (`8A = O`), for which that equation would accept forgeries; a key made
//!   by `prv2pub` is never one.

use blake_hash::{Blake512, Digest};
use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr},
    utils::modulus,
    AssignedValue, Context,
    QuantumCell::Constant,
};
use num_bigint::BigUint;

use super::{
    babyjubjub::{self, subgroup_order, AssignedPoint, Point, SUBGROUP_ORDER_BITS},
    poseidon, uint,
};

/// A circomlibjs private key: 32 bytes (what `eddsa.prv2pub(Buffer)` takes).
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// A signature `(R8, S)`, as `signPoseidon` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The nonce point `R8 = r·B8`.
    pub r8: Point,
    /// The scalar `S` (below the subgroup order in a valid signature).
    pub s: Fr,
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// `R8` is not a point of Baby Jubjub.
    #[error("R8 is not on the Baby Jubjub curve")]
    NonceNotOnCurve,
    /// The public key is not a point of Baby Jubjub.
    #[error("the public key is not on the Baby Jubjub curve")]
    KeyNotOnCurve,
    /// The public key has small order (8·A is the identity): it would accept forgeries.
    #[error("the public key has small order (8·A is the identity)")]
    LowOrderKey,
    /// `S` is not below the subgroup order `l`.
    #[error("S is not below the Baby Jubjub subgroup order")]
    ScalarTooLarge,
    /// `S·B8 ≠ R8 + 8·c·A`: signed by another key, or for another message.
    #[error(
        "S·B8 ≠ R8 + 8·Poseidon(R8, A, M)·A: the signature is not by this key for this message"
    )]
    Mismatch,
}

fn blake512(parts: &[&[u8]]) -> [u8; 64] {
    let mut hasher = Blake512::default();
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// The 64-byte digest of BLAKE-512 (exposed for its test vectors).
pub fn blake512_digest(data: &[u8]) -> [u8; 64] {
    blake512(&[data])
}

impl PrivateKey {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The pruned BLAKE-512 expansion: `(s, nonce prefix)`.
    fn expand(&self) -> (BigUint, [u8; 32]) {
        let mut h = blake512(&[&self.0]);
        h[0] &= 0xF8;
        h[31] &= 0x7F;
        h[31] |= 0x40;
        let s = BigUint::from_bytes_le(&h[..32]);
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        (s, prefix)
    }

    /// The public key `A = (s >> 3)·B8` (circomlibjs's `prv2pub`).
    pub fn public_key(&self) -> Point {
        let (s, _) = self.expand();
        Point::base8().mul(&(s >> 3u32))
    }

    /// Signs the field element `msg` (circomlibjs's `signPoseidon`).
    pub fn sign(&self, msg: Fr) -> Signature {
        let (s, prefix) = self.expand();
        let a = Point::base8().mul(&(&s >> 3u32));
        let mut msg_le = [0u8; 32];
        msg_le.copy_from_slice(
            &uint::to_biguint(&msg)
                .to_bytes_le()
                .iter()
                .copied()
                .chain(std::iter::repeat(0))
                .take(32)
                .collect::<Vec<u8>>(),
        );
        let r = BigUint::from_bytes_le(&blake512(&[&prefix, &msg_le])) % subgroup_order();
        let r8 = Point::base8().mul(&r);
        let c = uint::to_biguint(&challenge(&r8, &a, msg));
        let big_s = (r + c * s) % subgroup_order();
        Signature {
            r8,
            s: uint::to_field(&big_s),
        }
    }
}

/// `Poseidon(R8.x, R8.y, A.x, A.y, M)`, the hash the signature's scalar answers.
pub fn challenge(r8: &Point, key: &Point, msg: Fr) -> Fr {
    poseidon::hash(&[r8.x, r8.y, key.x, key.y, msg])
}

/// circomlib's `verifyPoseidon(msg, sig, A)`, refusing low-order keys as well.
pub fn verify(msg: Fr, sig: &Signature, key: &Point) -> Result<(), SignatureError> {
    if !sig.r8.is_on_curve() {
        return Err(SignatureError::NonceNotOnCurve);
    }
    if !key.is_on_curve() {
        return Err(SignatureError::KeyNotOnCurve);
    }
    if uint::to_biguint(&sig.s) >= *subgroup_order() {
        return Err(SignatureError::ScalarTooLarge);
    }
    let key8 = key.double().double().double();
    if key8 == Point::identity() {
        return Err(SignatureError::LowOrderKey);
    }
    let c = uint::to_biguint(&challenge(&sig.r8, key, msg));
    let left = Point::base8().mul(&uint::to_biguint(&sig.s));
    let right = sig.r8.add(&key8.mul(&c));
    if left == right {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A signature in the circuit.
#[derive(Debug, Clone, Copy)]
pub struct AssignedSignature {
    /// `R8`.
    pub r8: AssignedPoint,
    /// `S`.
    pub s: AssignedValue<Fr>,
}

/// Assigns a signature's values as witnesses.
pub fn load_signature(ctx: &mut Context<Fr>, sig: &Signature) -> AssignedSignature {
    AssignedSignature {
        r8: babyjubjub::load_point(ctx, &sig.r8),
        s: ctx.load_witness(sig.s),
    }
}

/// The 254 bits (least significant first) of `value`'s canonical integer, constrained to be
/// that integer: the bits represent a number below the field modulus, so they are unique.
/// Splits the value as `lo + 2^128·hi` and checks `(hi, lo) < (p_hi, p_lo)` lexicographically.
pub fn num_to_bits_canonical(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    value: AssignedValue<Fr>,
) -> Vec<AssignedValue<Fr>> {
    let integer = uint::to_biguint(value.value());
    bits_of_integer(ctx, range, value, &integer)
}

/// [`num_to_bits_canonical`] with the integer the witness claims for `value` (below 2^254): an
/// honest prover passes the canonical one; tests pass an alias to see it refused.
pub(crate) fn bits_of_integer(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    value: AssignedValue<Fr>,
    big: &BigUint,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    let mask = (BigUint::from(1u8) << 128u32) - 1u32;
    let lo = ctx.load_witness(uint::to_field(&(big & &mask)));
    let hi = ctx.load_witness(uint::to_field(&(big >> 128u32)));
    let mut bits = gate.num_to_bits(ctx, lo, 128);
    bits.extend(gate.num_to_bits(ctx, hi, 126));
    let two_128 = uint::to_field(&(BigUint::from(1u8) << 128u32));
    let recomposed = gate.mul_add(ctx, hi, Constant(two_128), lo);
    ctx.constrain_equal(&recomposed, &value);
    let p = modulus::<Fr>();
    let p_hi = uint::to_field(&(&p >> 128u32));
    let p_lo = uint::to_field(&(&p & &mask));
    let hi_below = range.is_less_than(ctx, hi, Constant(p_hi), 126);
    let hi_equal = gate.is_equal(ctx, hi, Constant(p_hi));
    let lo_below = range.is_less_than(ctx, lo, Constant(p_lo), 128);
    // At most one of hi_below, hi_equal is 1.
    let canonical = gate.mul_add(ctx, hi_equal, lo_below, hi_below);
    gate.assert_is_const(ctx, &canonical, &Fr::ONE);
    bits
}

/// In-circuit [`verify`].
///
/// Constrains unconditionally what every honest witness satisfies — `R8` and `A` on the curve,
/// `S < l`, the canonical bits of the challenge — and returns a bit that is 1 exactly when
/// the key is not of low order and `S·B8 = R8 + c·(8A)`, so a caller can require a valid
/// signature only in the slots that carry one.
pub fn verify_gadget(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    msg: AssignedValue<Fr>,
    key: &AssignedPoint,
    sig: &AssignedSignature,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    babyjubjub::assert_on_curve(ctx, gate, &sig.r8);
    babyjubjub::assert_on_curve(ctx, gate, key);
    // S < l: 251 bits, then S - l + 2^251 in [0, 2^251).
    let s_bits = gate.num_to_bits(ctx, sig.s, SUBGROUP_ORDER_BITS);
    range.check_less_than(
        ctx,
        sig.s,
        Constant(uint::to_field(subgroup_order())),
        SUBGROUP_ORDER_BITS,
    );

    let c = poseidon::hash_gadget(ctx, gate, &[sig.r8.x, sig.r8.y, key.x, key.y, msg]);
    let c_bits = num_to_bits_canonical(ctx, range, c);

    let key2 = babyjubjub::double(ctx, gate, key);
    let key4 = babyjubjub::double(ctx, gate, &key2);
    let key8 = babyjubjub::double(ctx, gate, &key4);
    // 8A lies in the prime-order subgroup, so its x is 0 only when it is the identity.
    let low_order = gate.is_zero(ctx, key8.x);
    let key_ok = gate.not(ctx, low_order);

    let left = babyjubjub::mul_base8(ctx, gate, &s_bits);
    let hashed = babyjubjub::mul_variable(ctx, gate, &key8, &c_bits);
    let right = babyjubjub::add(ctx, gate, &sig.r8, &hashed);
    let equal = babyjubjub::is_equal(ctx, gate, &left, &right);
    gate.and(ctx, key_ok, equal)
}
