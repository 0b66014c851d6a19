"""Checks a Golden Goose SLSA verification summary with code we did not write: the DSSE
envelope with securesystemslib (the secure-systems-lab library in-toto is built on), then the
in-toto Statement v1 and its VSA predicate. A tampered payload must not verify.

usage: vsa_check.py VSA_JSON   (the body of GET /v1/promotions/{id}/targets/{service}/vsa)
"""

import base64
import copy
import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def key_of(vkey):
    # A C2SP vkey: <name>+<key hash>+base64(0x01 || Ed25519 public key)
    _name, _hash, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 vkey"
    return raw[1:].hex()


def main(path):
    body = json.load(open(path))
    env = body["envelope"]
    keyid = env["signatures"][0]["keyid"]
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": key_of(body["signer_vkey"])})
    envelope = Envelope.from_dict(copy.deepcopy(env))
    envelope.verify([key], 1)
    assert envelope.payload_type == "application/vnd.in-toto+json", envelope.payload_type
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1", statement["_type"]
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    subject = statement["subject"][0]
    assert "@" in subject["name"] and subject["digest"]["sha3_256"], subject
    p = statement["predicate"]
    for field in ["verifier", "timeVerified", "resourceUri", "policy", "verificationResult", "verifiedLevels"]:
        assert field in p, field
    assert p["verificationResult"] == "PASSED"
    assert p["policy"]["digest"]["sha3_256"], p["policy"]
    assert p["inputAttestations"], "no inputs cited"
    # A tampered statement (verdict flipped) does not verify.
    bad = copy.deepcopy(env)
    forged = dict(statement, predicate=dict(p, verificationResult="FAILED"))
    bad["payload"] = base64.b64encode(json.dumps(forged).encode()).decode()
    try:
        Envelope.from_dict(bad).verify([key], 1)
        raise SystemExit("a tampered envelope verified")
    except VerificationError:
        pass
    print(json.dumps({"subject": subject["name"], "checks": len(p["goldenGoose"]["checksPassed"]), "inputs": len(p["inputAttestations"])}))


if __name__ == "__main__":
    main(sys.argv[1])
