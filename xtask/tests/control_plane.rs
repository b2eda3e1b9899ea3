//! Without Go, `KUBEBUILDER_ASSETS` or the binaries on PATH, `cargo xtask control-plane` (and so
//! `ci`, `demo` and `bench`, which call it first) stops at once with one error that names the
//! three ways to provide the control plane — no hang, no Go stack trace.

use std::process::Command;

#[test]
fn without_go_or_binaries_one_error_names_the_three_ways() {
    let cache = std::env::temp_dir().join(format!("lifeline-xtask-test-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("control-plane")
        .env("PATH", "/nonexistent")
        .env("LIFELINE_CACHE", &cache)
        .env_remove("KUBEBUILDER_ASSETS")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for way in [
        "no `go` on PATH",
        "Go >= 1.26",
        "KUBEBUILDER_ASSETS",
        "on PATH at the pinned versions",
    ] {
        assert!(stderr.contains(way), "{way:?} in {stderr}");
    }
    assert!(!stderr.contains("goroutine"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("Error")).count(),
        1,
        "{stderr}"
    );
}
