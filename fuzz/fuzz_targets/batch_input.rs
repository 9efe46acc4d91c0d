//! Prove-job inputs from untrusted bytes, for the smallest configuration of each circuit
//! family: parsed and validated by the witness builder (which refuses with a reason, never
//! panics).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&family, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let name = if family % 2 == 0 {
        "transfer_batch/d16-b8"
    } else {
        "rollup/d8-t2-e1-c1"
    };
    let circuit = proofmill_circuits::lookup(name).expect("catalog circuit");
    let _ = circuit.parse_input(&value);
});
