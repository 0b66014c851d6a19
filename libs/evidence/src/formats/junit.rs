//! JUnit XML test results. The counts are those of the `<testcase>` elements; the totals a
//! `<testsuite>`/`<testsuites>` element states (`tests`, `failures` + `errors`, `skipped`)
//! must agree with the test cases inside it, else the file is refused naming both figures.

use super::{attr, local, malformed, FormatError, MAX_XML_DEPTH};
use goose_domain::evidence::{EvidenceKind, EvidenceSummary, TestSummary};
use quick_xml::events::Event;

/// A suite element being read: what it states and what it holds so far.
struct Suite {
    name: String,
    tests: Option<u64>,
    failed: Option<u64>,
    skipped: Option<u64>,
    counted: TestSummary,
}

fn count(
    k: EvidenceKind,
    e: &quick_xml::events::BytesStart<'_>,
    a: &str,
) -> Result<Option<u64>, FormatError> {
    attr(e, a.as_bytes())
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                malformed(k, format!("{a}=\"{v}\" is not a non-negative whole number"))
            })
        })
        .transpose()
}

fn check(k: EvidenceKind, s: &Suite) -> Result<(), FormatError> {
    let c = &s.counted;
    let mismatch = |what: &str, stated: u64, found: u64| {
        malformed(
            k,
            format!(
                "testsuite \"{}\": {what}=\"{stated}\" but it holds {found}",
                s.name
            ),
        )
    };
    if let Some(t) = s.tests.filter(|t| *t != c.passed + c.failed + c.skipped) {
        return Err(mismatch("tests", t, c.passed + c.failed + c.skipped));
    }
    if let Some(f) = s.failed.filter(|f| *f != c.failed) {
        return Err(mismatch("failures+errors", f, c.failed));
    }
    if let Some(sk) = s.skipped.filter(|sk| *sk != c.skipped) {
        return Err(mismatch("skipped", sk, c.skipped));
    }
    Ok(())
}

pub(super) fn junit(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Junit;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut t = TestSummary::default();
    let mut saw_root = false;
    let mut depth = 0usize;
    let mut suites: Vec<Suite> = Vec::new();
    // Outcome of the open <testcase>: 0 passed, 1 failed, 2 skipped.
    let mut in_case: Option<u8> = None;
    let record = |outcome: u8, t: &mut TestSummary, suites: &mut Vec<Suite>| {
        for c in std::iter::once(t).chain(suites.iter_mut().map(|s| &mut s.counted)) {
            match outcome {
                1 => c.failed += 1,
                2 => c.skipped += 1,
                _ => c.passed += 1,
            }
        }
    };
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(k, format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.name();
                let n = local(name.as_ref());
                if depth == 0 {
                    if n != b"testsuites" && n != b"testsuite" {
                        return Err(malformed(
                            k,
                            format!(
                                "root element <{}>, expected <testsuites> or <testsuite>",
                                String::from_utf8_lossy(n)
                            ),
                        ));
                    }
                    saw_root = true;
                }
                match n {
                    b"testsuite" | b"testsuites" => {
                        let failures = count(k, e, "failures")?;
                        let errors = count(k, e, "errors")?;
                        let suite = Suite {
                            name: attr(e, b"name").unwrap_or_default(),
                            tests: count(k, e, "tests")?,
                            failed: match (failures, errors) {
                                (None, None) => None,
                                (f, e) => Some(f.unwrap_or(0) + e.unwrap_or(0)),
                            },
                            skipped: count(k, e, "skipped")?,
                            counted: TestSummary::default(),
                        };
                        if empty {
                            check(k, &suite)?;
                        } else {
                            suites.push(suite);
                        }
                    }
                    b"testcase" if empty => record(0, &mut t, &mut suites),
                    b"testcase" => in_case = Some(0),
                    b"failure" | b"error" if in_case.is_some() => in_case = Some(1),
                    b"skipped" if in_case == Some(0) => in_case = Some(2),
                    _ => {}
                }
                if !empty {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(malformed(
                            k,
                            format!("elements nested deeper than {MAX_XML_DEPTH}"),
                        ));
                    }
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                match local(e.name().as_ref()) {
                    b"testcase" => {
                        if let Some(o) = in_case.take() {
                            record(o, &mut t, &mut suites);
                        }
                    }
                    b"testsuite" | b"testsuites" => {
                        if let Some(s) = suites.pop() {
                            check(k, &s)?;
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(malformed(k, "no <testsuites> or <testsuite> element"));
    }
    let mut out = EvidenceSummary::new(k);
    out.tests = Some(t);
    Ok(out)
}
