//! Circuit names from untrusted bytes: one bounded pass, and every name that parses prints
//! back to a canonical name that parses to the same circuit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofmill_prover::ProofCircuit;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(circuit) = ProofCircuit::parse(text) {
        let canonical = circuit.name();
        assert_eq!(ProofCircuit::parse(&canonical).expect("canonical name"), circuit);
        let _ = circuit.num_instances();
    }
});
