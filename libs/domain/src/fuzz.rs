//! Robustness of the YAML inputs (policy, org-config, service catalog) against hostile text,
//! as a property test on stable in every `make test`: arbitrary text and the shipped files
//! damaged get an answer — a value or an error naming what is wrong — never a panic.

use proptest::prelude::*;

const ORG: &str = "organization: acme\nmodes:\n  sandbox: {cpu_millicores: 500, memory_mib: 512, max_replicas: 2}\n  compliant: {cpu_millicores: 2000, memory_mib: 4096, max_replicas: 10}\nevidence:\n  max_upload_bytes: 4096\n";
const CATALOG: &str = "service:\n  name: service-b\n  spec:\n    api_version: v1\n    compliance_mode: sandbox\n    dependencies:\n      runtime: [service-a]\n";

fn damaged() -> impl Strategy<Value = String> {
    let corpus = [crate::policy::DEFAULT_POLICY_YAML, ORG, CATALOG];
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

fn check(text: &str) {
    let _ = crate::policy::Policy::parse(text);
    let _ = crate::org_config::OrgConfig::parse(text);
    let _ = crate::catalog::parse_definitions(text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_gets_an_answer(text in "(?s).{0,400}") {
        check(&text);
    }

    #[test]
    fn damaged_files_get_an_answer(text in damaged()) {
        check(&text);
    }
}
