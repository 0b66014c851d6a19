//! Robustness of the chain's parsers and verifiers against hostile input (a property test on
//! stable, in every `make test`): canonical records, C2SP tlog-proofs, signed checkpoint
//! notes, vkeys, witness keys, tlog-witness requests and commit-seal authorship. The property:
//! an answer, never a panic; a forged note never verifies.

use crate::checkpoint::{Checkpoint, SignedCheckpoint, TlogProof};
use crate::keys::{NoteKey, Vkey};
use crate::seal::Authorship;
use crate::witness::{AddCheckpoint, WitnessKey};
use proptest::prelude::*;

fn key() -> &'static NoteKey {
    static KEY: std::sync::OnceLock<NoteKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| NoteKey::generate("fuzz.test/log").unwrap())
}

fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(build_corpus)
}

/// A real signed note and proof text, to damage.
fn build_corpus() -> Vec<String> {
    let k = key();
    let cp = Checkpoint {
        origin: "fuzz.test/log".into(),
        size: 5,
        root: [3; 32],
    };
    let note = cp.sign(k).map(|s| s.note).unwrap_or_default();
    let proof = TlogProof {
        extra: Some(vec![1, 2, 3]),
        index: 2,
        hashes: vec![[9; 32], [8; 32]],
        checkpoint_note: note.clone(),
    }
    .to_text();
    let add = format!("old 3\n{}\n\n{note}", "AAAA");
    vec![note, proof, k.vkey(), add]
}

fn damaged() -> impl Strategy<Value = String> {
    (
        0..corpus().len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 0..6),
    )
        .prop_map(move |(i, edits)| {
            let c = corpus();
            let mut chars: Vec<char> = c[i].chars().collect();
            for (idx, ch) in edits {
                if !chars.is_empty() {
                    let n = idx.index(chars.len());
                    chars[n] = ch;
                }
            }
            chars.into_iter().collect()
        })
}

fn check(text: &str) {
    let vkey = Vkey::parse(&key().vkey()).unwrap();
    let _ = crate::canonical::decode_record(text.as_bytes(), 0);
    if let Ok(p) = TlogProof::parse(text) {
        let _ = p.verify(&vkey, &[0; 32]);
    }
    if let Ok(cp) = SignedCheckpoint::verify(text, &vkey) {
        // Only the unmodified note verifies.
        assert!(
            corpus().iter().any(|c| c.contains(&cp.note)),
            "forged note verified: {text:?}"
        );
    }
    let _ = Vkey::parse(text);
    let _ = WitnessKey::parse(text);
    let _ = AddCheckpoint::parse(text);
    let _ = Authorship::decode(text.as_bytes());
}

/// The number of cases: `PROPTEST_CASES` when set, else `default` (what `make test` runs).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    // PROPTEST_CASES sets a longer run (`make fuzz`).
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_gets_an_answer(text in ".{0,600}") {
        check(&text);
    }

    #[test]
    fn damaged_notes_and_proofs_get_an_answer(text in damaged()) {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes_as_records_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = crate::canonical::decode_record(&bytes, 0);
        let _ = Authorship::decode(&bytes);
    }
}
