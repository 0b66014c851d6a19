//! Line coverage: LCOV and Cobertura XML. The figures are computed from the line records
//! (`DA:` lines, `<line hits>` elements), never from the summaries a file states about itself
//! (`LF`/`LH`, `lines-valid`/`lines-covered`/`line-rate`): a summary that disagrees with the
//! lines, a negative count or more covered lines than lines is refused, naming both figures.

use super::{attr, local, malformed, FormatError, MAX_XML_DEPTH};
use goose_domain::evidence::{CoverageSummary, EvidenceKind, EvidenceSummary};
use quick_xml::events::Event;
use std::collections::HashMap;

pub(super) fn percent(covered: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        ((covered as f64 / total as f64) * 10_000.0).round() / 100.0
    }
}

fn summary(k: EvidenceKind, covered: u64, total: u64) -> EvidenceSummary {
    let mut out = EvidenceSummary::new(k);
    out.coverage = Some(CoverageSummary {
        lines_covered: covered,
        lines_total: total,
        line_percent: percent(covered, total),
    });
    out
}

/// A stated count: absent, or a non-negative integer (else refused, naming the attribute).
fn stated(k: EvidenceKind, name: &str, v: Option<String>) -> Result<Option<u64>, FormatError> {
    v.map(|s| {
        s.trim().parse::<u64>().map_err(|_| {
            malformed(
                k,
                format!("{name}=\"{s}\" is not a non-negative whole number"),
            )
        })
    })
    .transpose()
}

pub(super) fn cobertura(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    let k = EvidenceKind::Cobertura;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut root: Option<(Option<u64>, Option<u64>, Option<f64>)> = None;
    // (file, line number) → hit: lines are listed per class and again per method, and a
    // file's classes may repeat a line; each line counts once.
    let mut lines: HashMap<(String, u64), bool> = HashMap::new();
    let mut file = String::new();
    let mut depth = 0usize;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(k, format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(malformed(
                            k,
                            format!("elements nested deeper than {MAX_XML_DEPTH}"),
                        ));
                    }
                }
                let name = e.name();
                match local(name.as_ref()) {
                    b"coverage" if root.is_none() => {
                        let rate = attr(e, b"line-rate")
                            .map(|v| {
                                v.trim()
                                    .parse::<f64>()
                                    .ok()
                                    .filter(|r| (0.0..=1.0).contains(r))
                                    .ok_or_else(|| {
                                        malformed(
                                            k,
                                            format!("line-rate=\"{v}\" is not between 0 and 1"),
                                        )
                                    })
                            })
                            .transpose()?;
                        root = Some((
                            stated(k, "lines-covered", attr(e, b"lines-covered"))?,
                            stated(k, "lines-valid", attr(e, b"lines-valid"))?,
                            rate,
                        ));
                    }
                    b"class" => file = attr(e, b"filename").unwrap_or_default(),
                    b"line" if root.is_some() => {
                        let number = stated(k, "line number", attr(e, b"number"))?
                            .ok_or_else(|| malformed(k, "a <line> without a number"))?;
                        let hits = stated(k, "hits", attr(e, b"hits"))?.unwrap_or(0);
                        let hit = lines.entry((file.clone(), number)).or_insert(false);
                        *hit |= hits > 0;
                    }
                    _ => {}
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let Some((stated_covered, stated_valid, rate)) = root else {
        return Err(malformed(k, "no <coverage> element"));
    };
    let total = lines.len() as u64;
    let covered = lines.values().filter(|h| **h).count() as u64;
    if let Some(v) = stated_valid.filter(|v| *v != total) {
        return Err(malformed(
            k,
            format!("lines-valid=\"{v}\" but the file has {total} <line> records"),
        ));
    }
    if let Some(c) = stated_covered.filter(|c| *c != covered) {
        return Err(malformed(
            k,
            format!("lines-covered=\"{c}\" but {covered} of its <line> records have hits"),
        ));
    }
    if let Some(r) = rate {
        let real = if total == 0 {
            0.0
        } else {
            covered as f64 / total as f64
        };
        // Tools round the rate (four decimals, or fewer).
        if (r - real).abs() > 0.005 {
            return Err(malformed(
                k,
                format!("line-rate=\"{r}\" but its <line> records give {real:.4}"),
            ));
        }
    }
    Ok(summary(k, covered, total))
}

pub(super) fn lcov_file(bytes: &[u8]) -> Result<EvidenceSummary, FormatError> {
    use lcov::Record;
    let k = EvidenceKind::Lcov;
    let (mut total, mut covered) = (0u64, 0u64);
    let (mut files, mut ended) = (0u64, 0u64);
    // The open SF record: its path, its lines (number → hit) and what it states.
    let mut path = String::new();
    let mut da: HashMap<u32, bool> = HashMap::new();
    let (mut lf, mut lh) = (None::<u32>, None::<u32>);
    for rec in lcov::Reader::new(bytes) {
        match rec.map_err(|e| malformed(k, e.to_string()))? {
            Record::SourceFile { path: p } => {
                files += 1;
                path = p.display().to_string();
                da.clear();
                (lf, lh) = (None, None);
            }
            Record::LineData { line, count, .. } => {
                *da.entry(line).or_insert(false) |= count > 0;
            }
            Record::LinesFound { found } => lf = Some(found),
            Record::LinesHit { hit } => lh = Some(hit),
            Record::EndOfRecord => {
                ended += 1;
                let found = da.len() as u64;
                let hit = da.values().filter(|h| **h).count() as u64;
                if let Some(f) = lf.filter(|f| u64::from(*f) != found) {
                    return Err(malformed(
                        k,
                        format!("SF:{path}: LF:{f} but {found} DA lines"),
                    ));
                }
                if let Some(h) = lh.filter(|h| u64::from(*h) != hit) {
                    return Err(malformed(
                        k,
                        format!("SF:{path}: LH:{h} but {hit} DA lines with hits"),
                    ));
                }
                total += found;
                covered += hit;
            }
            _ => {}
        }
    }
    if files == 0 || ended != files {
        return Err(malformed(
            k,
            format!("{files} SF records but {ended} end_of_record lines"),
        ));
    }
    Ok(summary(k, covered, total))
}
