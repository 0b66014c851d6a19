"""An outside subscriber: consumes Golden Goose events from NATS JetStream with nats-py, the
way a team that is not ours would, and checks each message against the AsyncAPI document the
services serve: CloudEvents headers, the channel its subject belongs to, the canonical record
(parsed per docs/chain-format.md, its SHA3-256 computed) and the payload against its JSON
Schema. Prints a JSON summary; exits 1 on the first message that does not conform.

usage: subscriber.py NATS_URL STREAM SUBJECT_PREFIX ASYNCAPI_JSON
"""

import asyncio
import datetime
import hashlib
import json
import struct
import sys
import uuid

import jsonschema
import nats
from nats.js.api import DeliverPolicy


class Reader:
    def __init__(self, buf):
        self.buf, self.at = buf, 0

    def take(self, n):
        if self.at + n > len(self.buf):
            raise ValueError("record truncated")
        out = self.buf[self.at:self.at + n]
        self.at += n
        return out

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def bytes(self):
        return self.take(self.u32())

    def str(self):
        return self.bytes().decode("utf-8")

    def opt_uuid(self):
        flag = self.take(1)[0]
        return str(uuid.UUID(bytes=self.take(16))) if flag == 1 else None

    def done(self):
        if self.at != len(self.buf):
            raise ValueError("trailing bytes")


def parse_record(record):
    r = Reader(record)
    if r.take(12) != b"GGEV-RECORD\x02":
        raise ValueError("not a v2 record")
    position = r.u64()
    r.take(32)  # the previous record's digest
    content = r.bytes()
    r.done()
    c = Reader(content)
    if c.take(13) != b"GGEV-CONTENT\x02":
        raise ValueError("not v2 content")
    event = {"position": position, "event_id": str(uuid.UUID(bytes=c.take(16)))}
    event["aggregate_type"], event["aggregate_id"] = c.str(), c.str()
    event["version"] = c.u64()
    event["event_type"], event["schema_version"] = c.str(), c.str()
    event["payload"] = json.loads(c.bytes())
    event["actor"] = c.str()
    c.opt_uuid(), c.opt_uuid()
    c.take(8)  # recorded at, ns
    for _ in range(c.u32()):
        c.str(), c.str()
    event["key_id"] = c.str()
    c.done()
    event["digest"] = hashlib.sha3_256(record).hexdigest()
    return event


def check(doc, msg):
    h = msg.headers or {}
    ty = msg.subject.rsplit(".", 1)[-1]
    assert h.get("ce-specversion") == "1.0", h
    assert h.get("ce-type") == ty, (h, msg.subject)
    assert h.get("ce-source") == "urn:golden-goose:ledger", h
    assert h.get("ce-id") == h.get("Nats-Msg-Id") and uuid.UUID(h["ce-id"]), h
    datetime.datetime.fromisoformat(h["ce-time"])
    channel = next((c for c in doc["channels"].values() if c["address"] == msg.subject), None)
    assert channel is not None, f"no channel for subject {msg.subject}"
    ref = next(iter(channel["messages"].values()))["$ref"]
    message = doc["components"]["messages"][ref.rsplit("/", 1)[-1]]
    assert message["contentType"] == "application/vnd.golden-goose.record.v2"
    event = parse_record(msg.data)
    assert str(event["position"]) == h.get("Goose-Position"), (event["position"], h)
    assert event["event_id"] == h["ce-id"]
    assert event["event_type"] == ty
    assert h.get("ce-subject") == f'{event["aggregate_type"]}/{event["aggregate_id"]}', h
    schema = {"$ref": message["payload"]["schema"]["$ref"], "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(event["payload"])
    headers = {"$ref": message["headers"]["$ref"], "components": doc["components"]}
    jsonschema.Draft202012Validator(headers).validate(dict(h))
    return event


async def main(url, stream, prefix, doc_path):
    doc = json.load(open(doc_path))
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.subscribe(
        f"{prefix}.>", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    types, positions = {}, set()
    while True:
        try:
            msg = await sub.next_msg(timeout=3)
        except nats.errors.TimeoutError:
            break
        try:
            event = check(doc, msg)
        except Exception as e:  # report which message and why
            print(json.dumps({"error": repr(e), "subject": msg.subject}))
            await nc.close()
            return 1
        positions.add(event["position"])
        types[event["event_type"]] = types.get(event["event_type"], 0) + 1
    await nc.close()
    print(json.dumps({"count": len(positions), "types": types}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
