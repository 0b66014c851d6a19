//! Robustness of the YAML inputs (policy, org-config, service catalog) against hostile text,
//! as a property test on stable in every `make test`: arbitrary text and the shipped files
//! damaged get an answer — a value or an error naming what is wrong — never a panic.

use proptest::prelude::*;

const ORG: &str = "organization: acme\nmodes:\n  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}\n  compliant: {cpu_millicores: 2000, memory_mib: 4096, max_replicas: 10}\nevidence:\n  max_upload_bytes: 4096\n";
const CATALOG: &str = "service:\n  name: service-b\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n    dependencies:\n      runtime: [service-a]\n";

/// The shipped policy, the example and fixture service definitions, and an org config.
fn corpus() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = vec![
        crate::policy::DEFAULT_POLICY_YAML.to_owned(),
        ORG.to_owned(),
        CATALOG.to_owned(),
    ];
    for dir in [
        "policies",
        "deploy/examples/services",
        "tests/fixtures/services",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        out.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
    }
    out
}

fn damaged() -> impl Strategy<Value = String> {
    let corpus = corpus();
    (
        0..corpus.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 0..6),
    )
        .prop_map(move |(i, edits)| {
            let mut chars: Vec<char> = corpus[i].chars().collect();
            for (idx, ch) in edits {
                if !chars.is_empty() {
                    let n = idx.index(chars.len());
                    chars[n] = ch;
                }
            }
            chars.into_iter().collect()
        })
}

/// The number of cases: `PROPTEST_CASES` when set, else `default` (what `make test` runs).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn check(text: &str) {
    let _ = crate::policy::Policy::parse(text);
    let _ = crate::org_config::OrgConfig::parse(text);
    let _ = crate::catalog::parse_definitions(text);
}

proptest! {
    // PROPTEST_CASES sets a longer run (`make fuzz`).
    #![proptest_config(ProptestConfig { cases: crate::fuzz::cases(500), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_gets_an_answer(text in "(?s).{0,400}") {
        check(&text);
    }

    #[test]
    fn damaged_files_get_an_answer(text in damaged()) {
        check(&text);
    }
}
