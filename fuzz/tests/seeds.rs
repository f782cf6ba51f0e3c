//! Every input of the checked-in corpus (`fuzz/seeds/<target>/`), run through its harness: what
//! the fuzzer starts from never panics, and a finding once added to the corpus stays fixed.

#[test]
fn the_seed_corpus_runs_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (name, harness) in p2p_chat_fuzz::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no seed folder {}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("a seed").path();
            let data = std::fs::read(&path).expect("readable seed");
            harness(&data);
            count += 1;
        }
        assert!(count > 0, "{name} has no seeds");
    }
}
