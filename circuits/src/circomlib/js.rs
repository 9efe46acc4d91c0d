//! Test access to circomlibjs (iden3's JavaScript implementation) through Node.js.
//!
//! The tests that compare with it find the installation through `PROOFMILL_CIRCOMLIB_DIR`
//! (what `scripts/circomlib-setup.sh DIR` prints). Without it they print a loud `SKIPPED:`
//! line to stderr and pass, unless `PROOFMILL_REQUIRE_CIRCOMLIB=1` (CI), where a missing
//! installation fails the test.

use std::{
    io::Write,
    process::{Command, Stdio},
};

/// The request script, `circuits/tests/js/circomlib.mjs`.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/circomlib.mjs");

/// Sends `request` to circomlibjs and returns its answer, or `None` (after a SKIPPED line)
/// when circomlibjs is not installed and not required.
pub(crate) fn circomlibjs(test: &str, request: &serde_json::Value) -> Option<serde_json::Value> {
    let required = std::env::var("PROOFMILL_REQUIRE_CIRCOMLIB").is_ok_and(|v| v == "1");
    let dir = match std::env::var("PROOFMILL_CIRCOMLIB_DIR") {
        Ok(dir) if !dir.is_empty() => dir,
        _ => {
            assert!(
                !required,
                "{test}: PROOFMILL_REQUIRE_CIRCOMLIB=1 but PROOFMILL_CIRCOMLIB_DIR is not set \
                 (run scripts/circomlib-setup.sh DIR and export PROOFMILL_CIRCOMLIB_DIR=DIR)"
            );
            // Straight to stderr, past the test harness's capture of print macros.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED: {test}: PROOFMILL_CIRCOMLIB_DIR is not set, so nothing is \
                 compared with circomlibjs !!!!!!!!\n!!!!!!!! run scripts/circomlib-setup.sh DIR \
                 and export PROOFMILL_CIRCOMLIB_DIR=DIR !!!!!!!!"
            );
            return None;
        }
    };
    let mut child = Command::new("node")
        .arg(SCRIPT)
        .env("PROOFMILL_CIRCOMLIB_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot run node (PROOFMILL_CIRCOMLIB_DIR={dir}): {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request to node");
    let output = child.wait_with_output().expect("node runs");
    assert!(
        output.status.success(),
        "{test}: circomlibjs script failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("the script answers JSON"))
}
