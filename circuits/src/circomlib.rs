//! Primitives exactly as iden3's circomlib defines them, natively and in-circuit: its Poseidon
//! hash ([`poseidon`]), the Baby Jubjub curve ([`babyjubjub`]) and EdDSA over Baby Jubjub with
//! Poseidon ([`eddsa`], circomlib's `signPoseidon` / `verifyPoseidon`, with circomlibjs's key
//! derivation).
//!
//! Wallets and client libraries (circomlibjs, @zk-kit/eddsa-poseidon) produce keys, hashes and
//! signatures in this form, so a rollup circuit that checks them accepts what those clients
//! make without any code of ours on the client side. The tests compare every function here
//! with circomlibjs itself (see `tests/js/`); halo2-base's own Poseidon sponge (crate
//! `poseidon` module) is a different hash and stays untouched.
//!
//! This module owns only these primitives; it knows nothing of accounts, trees or batches.

pub mod babyjubjub;
pub mod eddsa;
pub mod poseidon;
pub mod uint;

#[cfg(test)]
pub(crate) mod js;
#[cfg(test)]
mod tests;
