//! The fuzz targets' short version: every seed input and every past finding in `fuzz/seeds/`
//! goes through the same code the fuzzers run, on stable, in the suite.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        inputs += 1;
    }
    assert!(inputs > 0, "no seeds for {target}");
}

#[test]
fn offers() {
    replay("offer", huddle_tests::fuzz::offer);
}

#[test]
fn fragments() {
    replay("fragment", huddle_tests::fuzz::fragment);
}

#[test]
fn signaling() {
    replay("signaling", huddle_tests::fuzz::signaling);
}

#[test]
fn datagrams() {
    replay("datagram", huddle_tests::fuzz::datagram);
}
