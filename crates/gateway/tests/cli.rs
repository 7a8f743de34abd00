//! The `nines` binary: a bad configuration exits 64 before binding, `check` lists every error, the demo plays its
//! outage to the end.

use std::process::Command;

fn nines() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nines"))
}

#[test]
fn serve_refuses_a_bad_config_with_exit_code_64() {
    let dir = std::env::temp_dir().join(format!("nines-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[routes.chat]\ntargets = [\"ghost/m\"]\n").unwrap();
    // A port that is certainly free is not needed: the process must exit before binding anything.
    let out = nines().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes.chat.targets[0]: unknown provider \"ghost\""), "{err}");
    assert!(out.stdout.is_empty(), "nothing may be served: {out:?}");

    let out = nines().args(["check", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = nines()
        .args(["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/../../nines.example.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_plays_its_outage_without_a_failed_request() {
    let out = nines().args(["demo", "--once", "--listen", "127.0.0.1:0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("48/48 requests succeeded"), "{stdout}");
    // A lone 529 retried once, a second 529, a third one: the breaker opens, and nothing more is sent there.
    assert!(stdout.contains("anthropic was asked 3 times before its breaker opened"), "{stdout}");
    // A silent provider costs one request its timeout: the breaker opens at once.
    assert!(stdout.contains("while silent, 1 time(s)"), "{stdout}");
    assert!(stdout.contains("3 were saved"), "{stdout}");
    // Streams cut after their first words: each completed by another provider, until three cuts open the breaker.
    assert!(stdout.contains("3 of them were completed by another provider"), "{stdout}");
}
