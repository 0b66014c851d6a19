//! Robustness of every evidence parser and the DSSE verifier against hostile input, as a
//! property test that runs on stable in every `make test` (bounded: a few hundred cases per
//! target): arbitrary bytes, and the real fixture files with bytes flipped, cut or spliced
//! (the corpus: tests/fixtures/evidence). The property: an answer — a summary or an error —
//! never a panic, and no summary whose figures contradict themselves.

use super::*;
use goose_domain::evidence::EvidenceKind as K;
use proptest::prelude::*;

fn corpus() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/evidence");
    let mut out = Vec::new();
    for f in [
        "junit.xml",
        "cobertura.xml",
        "coverage.lcov",
        "clippy.sarif",
        "sbom.cdx.json",
        "passing/junit.xml",
        "passing/coverage.lcov",
        "osv/requests.json",
    ] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            out.push(b);
        }
    }
    out.push(br#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"a","timestamp":"2026-01-01T00:00:00Z","statements":[{"vulnerability":{"name":"CVE-1"},"status":"not_affected","justification":"component_not_present"}]}"#.to_vec());
    out.push(br#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}"#.to_vec());
    out.push(br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AAAA"}]}"#.to_vec());
    out
}

/// A fixture with a few bytes changed, a piece cut out and another spliced in.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let c = corpus();
    (
        0..c.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
        0usize..64,
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(move |(i, flips, at, cut, splice)| {
            let mut b = c[i].clone();
            for (idx, byte) in flips {
                if !b.is_empty() {
                    let n = idx.index(b.len());
                    b[n] = byte;
                }
            }
            if !b.is_empty() {
                let start = at.index(b.len());
                let end = (start + cut).min(b.len());
                b.splice(start..end, splice);
            }
            b
        })
}

fn check(bytes: &[u8]) {
    let keys = crate::dsse::TrustedKeys::new();
    for k in K::ALL {
        if let Ok(s) = summarize(k, bytes, &keys) {
            if let Some(c) = &s.coverage {
                assert!(c.lines_covered <= c.lines_total, "{k}: {c:?}");
                assert!((0.0..=100.0).contains(&c.line_percent), "{k}: {c:?}");
            }
        }
    }
    let _ = crate::dsse::verify(bytes, &keys);
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
    fn arbitrary_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn damaged_real_files_get_an_answer(bytes in mutated()) {
        check(&bytes);
    }
}
