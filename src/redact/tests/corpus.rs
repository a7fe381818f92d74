//! Replays the committed fuzz seed corpus (`fuzz/corpus/redact/`) through the walker, checking
//! the fuzz target's invariant at every split point. This is what CI runs; fuzzing itself is not.

use std::path::Path;

use super::super::fuzzing::Fixture;

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/redact");
    let fixture = Fixture::new().expect("fixture profiles compile");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        fixture.check(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let step = data.len() / 64 + 1;
        for cut in (0..=data.len()).step_by(step) {
            fixture.check_at(&data, cut).unwrap_or_else(|e| panic!("{} split at {cut}: {e}", path.display()));
        }
        files += 1;
    }
    assert!(files >= 20, "only {files} seed files");
}
