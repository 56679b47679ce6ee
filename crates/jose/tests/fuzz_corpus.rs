//! Replays the committed fuzz corpus on stable: no input may panic.

use std::path::Path;

#[test]
fn replay_fuzz_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut n = 0;
    for (target, f) in [
        ("jwe_decrypt", fpr_jose::fuzzing::jwe_decrypt as fn(&[u8])),
        ("jws_verify", fpr_jose::fuzzing::jws_verify),
        ("jwks_parse", fpr_jose::fuzzing::jwks_parse),
    ] {
        for entry in std::fs::read_dir(root.join(target))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(data) = std::fs::read(entry.path()) {
                f(&data);
                n += 1;
            }
        }
    }
    assert!(n >= 7, "corpus not found ({n} inputs)");
}
