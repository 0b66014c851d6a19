//! The canonical byte form of an event: what is stored, hashed and signed.
//!
//! A hand-written length-prefixed encoding rather than a serde format: the exact bytes are the
//! contract with third-party verifiers, so they must be specified independently of any crate's
//! version or options. `docs/chain-format.md` is the normative description; keep them in step.
//!
//! ```text
//! content = "GGEV-CONTENT" u8(2)
//!           uuid(event_id) str(aggregate_type) str(aggregate_id) u64(version)
//!           str(event_type) str(schema_version) bytes(payload)
//!           str(actor) opt_uuid(correlation_id) opt_uuid(causation_id) i64(recorded_at_unix_nanos)
//!           u32(n) n * (str(key) str(value))     -- attributes, sorted by key
//!           str(key_id)                          -- the writer: the key that seals its commit
//! record  = "GGEV-RECORD" u8(2) u64(position) digest32(previous_digest) bytes(content)
//! digest  = SHA3-256(record)
//! ```
//! Records carry no signature of their own: every commit is sealed as a whole by the writer's
//! key over the log's origin, its first position and the Merkle root after it ([`crate::seal`]).
//! `u32`/`u64`/`i64` are big-endian; `str`/`bytes` are `u32(len) || bytes`; `uuid` is 16 raw
//! bytes; `opt_uuid` is `0x00` or `0x01 || uuid`.

use crate::event::{Digest, Metadata, NewEvent, RecordedEvent, StreamId};
use crate::{Error, Result};
use sha3::{Digest as _, Sha3_256};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

const CONTENT_MAGIC: &[u8] = b"GGEV-CONTENT";
const RECORD_MAGIC: &[u8] = b"GGEV-RECORD";
/// The chain format version, the byte after each magic. Only version 2 exists in deployments;
/// version 1 (per-event signatures) was replaced outright, see docs/chain-format.md.
pub const FORMAT_VERSION: u8 = 2;
/// Byte offset of the position in a record (after the magic and the version byte).
pub const RECORD_POSITION_OFFSET: usize = RECORD_MAGIC.len() + 1;
/// Byte offset of the previous digest in a record.
pub const RECORD_PREVIOUS_OFFSET: usize = RECORD_POSITION_OFFSET + 8;

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Lengths are bounded by validation (payload size limit) far below u32::MAX.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_opt_uuid(out: &mut Vec<u8>, id: Option<Uuid>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

/// Encodes the signed content of an event.
pub fn encode_content(stream: &StreamId, version: u64, event: &NewEvent, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + event.payload.len());
    out.extend_from_slice(CONTENT_MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(event.event_id.as_bytes());
    put_str(&mut out, stream.aggregate_type().as_bytes());
    put_str(&mut out, stream.aggregate_id().as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    put_str(&mut out, event.event_type.as_bytes());
    put_str(&mut out, event.schema_version.as_bytes());
    put_str(&mut out, &event.payload);
    let m = &event.metadata;
    put_str(&mut out, m.actor.as_bytes());
    put_opt_uuid(&mut out, m.correlation_id);
    put_opt_uuid(&mut out, m.causation_id);
    out.extend_from_slice(&recorded_at_nanos(m.recorded_at).to_be_bytes());
    out.extend_from_slice(&(m.attributes.len() as u32).to_be_bytes());
    for (k, v) in &m.attributes {
        put_str(&mut out, k.as_bytes());
        put_str(&mut out, v.as_bytes());
    }
    put_str(&mut out, key_id.as_bytes());
    out
}

fn recorded_at_nanos(t: OffsetDateTime) -> i64 {
    // i64 nanoseconds cover 1677..2262; the clamp only matters for absurd clocks.
    t.unix_timestamp_nanos()
        .clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Encodes a full record.
pub fn encode_record(position: u64, previous: &Digest, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_PREVIOUS_OFFSET + 32 + 4 + content.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(previous);
    put_str(&mut out, content);
    out
}

/// SHA3-256 of a record.
pub fn digest(record: &[u8]) -> Digest {
    Sha3_256::digest(record).into()
}

/// A strict reader: every read is bounds-checked and trailing bytes are an error.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "truncated: wanted {n} bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
    fn uuid(&mut self) -> std::result::Result<Uuid, String> {
        Ok(Uuid::from_bytes(self.array()?))
    }
    fn opt_uuid(&mut self) -> std::result::Result<Option<Uuid>, String> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => Ok(Some(self.uuid()?)),
            other => Err(format!("bad option tag {other}")),
        }
    }
    fn magic(&mut self, magic: &[u8]) -> std::result::Result<(), String> {
        if self.take(magic.len())? != magic {
            return Err(format!(
                "bad magic, expected {}",
                String::from_utf8_lossy(magic)
            ));
        }
        match self.take(1)?[0] {
            FORMAT_VERSION => Ok(()),
            other => Err(format!(
                "chain format version {other} is not supported (this build reads version {FORMAT_VERSION})"
            )),
        }
    }
    fn end(&self) -> std::result::Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.buf.len()))
        }
    }
}

/// A decoded record, with the content bytes kept for signature checks.
#[derive(Debug)]
pub struct DecodedRecord<'a> {
    pub event: RecordedEvent,
    pub content: &'a [u8],
}

/// Decodes a stored record. `position_hint` names the row in errors.
pub fn decode_record(record: &[u8], position_hint: u64) -> Result<DecodedRecord<'_>> {
    decode_record_with_digest(record, position_hint, digest(record))
}

/// [`decode_record`] for a caller that has already computed `digest` of `record`.
pub fn decode_record_with_digest(
    record: &[u8],
    position_hint: u64,
    digest: Digest,
) -> Result<DecodedRecord<'_>> {
    decode_inner(record, digest).map_err(|reason| Error::Corrupt {
        position: position_hint,
        reason: format!("record does not decode: {reason}"),
    })
}

fn decode_inner(record: &[u8], digest: Digest) -> std::result::Result<DecodedRecord<'_>, String> {
    let mut r = Reader { buf: record };
    r.magic(RECORD_MAGIC)?;
    let position = r.u64()?;
    let previous_digest: Digest = r.array()?;
    let content = r.bytes()?;
    r.end()?;

    let mut c = Reader { buf: content };
    c.magic(CONTENT_MAGIC)?;
    let event_id = c.uuid()?;
    let aggregate_type = c.string("aggregate type")?;
    let aggregate_id = c.string("aggregate id")?;
    let version = c.u64()?;
    let event_type = c.string("event type")?;
    let schema_version = c.string("schema version")?;
    let payload = c.bytes()?.to_vec();
    let actor = c.string("actor")?;
    let correlation_id = c.opt_uuid()?;
    let causation_id = c.opt_uuid()?;
    let nanos = i64::from_be_bytes(c.array()?);
    let recorded_at = OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .map_err(|e| format!("recorded_at out of range: {e}"))?;
    let n = c.u32()?;
    let mut attributes = BTreeMap::new();
    for _ in 0..n {
        let k = c.string("attribute key")?;
        let v = c.string("attribute value")?;
        attributes.insert(k, v);
    }
    let key_id = c.string("key id")?;
    c.end()?;
    let stream = StreamId::new(aggregate_type, aggregate_id).map_err(|e| e.to_string())?;

    Ok(DecodedRecord {
        event: RecordedEvent {
            position,
            stream,
            version,
            event_id,
            event_type,
            schema_version,
            payload,
            metadata: Metadata {
                actor,
                correlation_id,
                causation_id,
                recorded_at,
                attributes,
            },
            key_id,
            previous_digest,
            digest,
            record: record.to_vec(),
        },
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (StreamId, NewEvent) {
        let mut md = Metadata::now("alice");
        md.correlation_id = Some(Uuid::from_u128(7));
        md.attributes.insert("ip".into(), "10.0.0.1".into());
        md.recorded_at =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let ev = NewEvent {
            event_id: Uuid::from_u128(42),
            event_type: "ServiceOnboarded".into(),
            schema_version: "1".into(),
            payload: br#"{"b":1,"a":2}"#.to_vec(),
            metadata: md,
        };
        (StreamId::new("service", "svc-a").unwrap(), ev)
    }

    #[test]
    fn round_trips_and_keeps_payload_bytes() {
        let (stream, ev) = sample();
        let content = encode_content(&stream, 3, &ev, "k+01020304");
        let record = encode_record(9, &[7; 32], &content);
        let decoded = decode_record(&record, 9).unwrap();
        assert_eq!(decoded.content, content.as_slice());
        let e = decoded.event;
        assert_eq!(e.position, 9);
        assert_eq!(e.version, 3);
        assert_eq!(e.stream, stream);
        assert_eq!(e.payload, br#"{"b":1,"a":2}"#);
        assert_eq!(e.metadata, ev.metadata);
        assert_eq!(e.digest, digest(&record));
        assert_eq!(e.previous_digest, [7; 32]);
    }

    #[test]
    fn rejects_any_truncation_or_trailing_byte() {
        let (stream, ev) = sample();
        let content = encode_content(&stream, 1, &ev, "k+01020304");
        let record = encode_record(0, &[0; 32], &content);
        for cut in 0..record.len() {
            assert!(decode_record(&record[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut longer = record.clone();
        longer.push(0);
        assert!(decode_record(&longer, 0).is_err());
    }

    #[test]
    fn names_an_unsupported_format_version() {
        let (stream, ev) = sample();
        let content = encode_content(&stream, 1, &ev, "k+01020304");
        let mut record = encode_record(0, &[0; 32], &content);
        record[RECORD_POSITION_OFFSET - 1] = 1;
        let err = decode_record(&record, 0).unwrap_err().to_string();
        assert!(err.contains("chain format version 1"), "{err}");
    }
}
