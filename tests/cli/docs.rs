//! The checked-in man page must be what the clap definition generates now.

use crate::testenv::TestEnv;

#[test]
fn man_page_is_current() {
    let env = TestEnv::new();
    let out = env.run(["man"]);
    assert!(out.status.success());
    let checked_in = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/man/lockrun.1"))
        .expect("man/lockrun.1 exists");
    assert!(
        checked_in == out.stdout,
        "man/lockrun.1 is stale: run `cargo run -- man > man/lockrun.1`"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("lockrun"),
            "{shell} completion mentions lockrun"
        );
        assert!(
            text.contains("with"),
            "{shell} completion knows the with subcommand"
        );
    }
}
