//! Module crates never depend on one another: they speak through
//! `contracts` (bus messages and the ids they carry) or through a service
//! contract the server wires in. This reads the workspace's real
//! dependency graph from `cargo metadata`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{Value, json};

/// The crates that own tables and use cases; `park` is listed ahead of its
/// arrival so it is checked from its first commit.
const MODULES: [&str; 5] = ["identity", "rewards", "commerce", "webhooks", "park"];

/// Every `(module, module it depends on)` pair in the metadata, dev and
/// build dependencies included.
fn crossings(metadata: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        if !MODULES.contains(&name) {
            continue;
        }
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let on = dependency["name"].as_str().unwrap_or_default();
            if MODULES.contains(&on) && on != name {
                found.push((name.to_owned(), on.to_owned()));
            }
        }
    }
    found
}

#[test]
fn no_module_crate_depends_on_another() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for module in ["identity", "rewards", "commerce", "contracts"] {
        assert!(
            names.contains(&module),
            "{module} is in the workspace: {names:?}"
        );
    }

    assert_eq!(crossings(&metadata), Vec::<(String, String)>::new());
}

#[test]
fn a_module_depending_on_another_is_found() {
    let metadata = json!({"packages": [
        {"name": "rewards", "dependencies": [{"name": "contracts"}, {"name": "commerce"}]},
        {"name": "commerce", "dependencies": [{"name": "kernel"}]},
        {"name": "server", "dependencies": [{"name": "rewards"}, {"name": "commerce"}]},
    ]});

    assert_eq!(
        crossings(&metadata),
        [("rewards".to_owned(), "commerce".to_owned())]
    );
}
