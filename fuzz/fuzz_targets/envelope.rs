//! A proof envelope from untrusted bytes: parsed, its sizes bounded, its hex and field elements
//! decoded and its circuit name parsed, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofmill_prover::{ProofCircuit, ProofEnvelope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(envelope) = ProofEnvelope::from_json(text) {
        let _ = envelope.proof_bytes();
        let _ = envelope.instance_values();
        let _ = ProofCircuit::parse(&envelope.circuit);
        // What the appliance writes it reads back as the same envelope.
        let again = ProofEnvelope::from_json(&envelope.to_json()).expect("round trip");
        assert_eq!(again, envelope);
    }
});
