//! SRS files from untrusted bytes: read for every k they could serve, refused with a reason
//! (length, coordinates, curve, pairing, Lagrange sum) or loaded, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("proofmill-fuzz-srs-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.srs");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    for k in 1..=3 {
        let _ = proofmill_prover::srs::read_srs_file(&path, k);
    }
});
