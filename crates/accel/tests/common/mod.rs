//! Shared by the tests that compile kernel sources as host C++ (`host_headers`,
//! `kernel_emu`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `kernels/` at the workspace root.
pub fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels")
}

/// Compiles `kernels/test/{source}` with g++ (`-O2 -Wall -Wextra -Werror`, the kernel
/// headers on the include path, `std` as the language standard, `-pthread`) into
/// `{dir}/{exe}`. Returns None after a loud message when g++ is missing, so the caller skips;
/// with `PROOFMILL_REQUIRE_GXX=1` (CI) a missing g++ fails the test instead.
pub fn build_host_program(source: &str, std: &str, dir: &Path, exe: &str) -> Option<PathBuf> {
    if Command::new("g++").arg("--version").output().is_err() {
        assert!(
            std::env::var("PROOFMILL_REQUIRE_GXX").as_deref() != Ok("1"),
            "PROOFMILL_REQUIRE_GXX=1 but g++ is not on PATH: kernels/test/{source} cannot be checked"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED: g++ not found; kernels/test/{source} not built or run on the host !!!!!!!!\n"
        );
        return None;
    }
    std::fs::create_dir_all(dir).expect("create the build directory");
    let out_path = dir.join(exe);
    let k = kernels_dir();
    let out = Command::new("g++")
        .arg(format!("-std={std}"))
        .args(["-O2", "-pthread", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(k.join("include"))
        .arg(k.join("test").join(source))
        .arg("-o")
        .arg(&out_path)
        .output()
        .expect("run g++");
    assert!(
        out.status.success(),
        "g++ failed to compile kernels/test/{source}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out_path)
}
