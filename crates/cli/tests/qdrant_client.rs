//! `quiver serve` against the unmodified Python qdrant-client: `tests/e2e/run` installs the
//! pinned client into a venv (once), starts this build's `quiver serve`, runs the scenario
//! through the client and compares it with the client's own local mode (Qdrant's reference
//! semantics). See `tests/e2e/README.md`.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

#[test]
fn qdrant_client_works_unchanged_against_quiver_serve() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(repo.join("tests/e2e/run"))
        .arg("--quiver")
        .arg(env!("CARGO_BIN_EXE_quiver"))
        .output()
        .expect("tests/e2e/run needs bash and python3");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tests/e2e/run failed:\n{log}");
    assert!(log.contains("all checks passed"), "{log}");
}
