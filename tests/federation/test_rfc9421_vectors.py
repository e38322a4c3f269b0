"""RFC 9421 Appendix B: Kiln's verification (kiln.federation.signatures.verify_rfc9421) accepts the
RFC's own signed request examples with its published test keys (tests/federation/data/
rfc9421_appendix_b.toml), on a clock frozen at the examples' date, and refuses each of them when any
component it covers, or the body under its digest, is changed, when it is stale or from the future, or
when the inbox's rule (covering the method, the target and the body's digest) applies."""

from __future__ import annotations

import base64
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from kiln.federation import signatures
from kiln.federation.signatures import SignatureError, SignedRequest

VECTORS = tomllib.loads((Path(__file__).parent / "data" / "rfc9421_appendix_b.toml").read_text())
SIGNED_AT = dt.datetime.fromtimestamp(1618884473, dt.UTC)  # every example's "created"
FROZEN = SIGNED_AT + dt.timedelta(seconds=5)  # the clock verification runs on
EXAMPLES = sorted(VECTORS["examples"])


def public_key(name: str) -> Any:
    return serialization.load_pem_public_key(VECTORS["keys"][name]["public"].strip().encode())


def request(example: dict[str, Any], **changes: Any) -> SignedRequest:
    """The RFC's example request with ``example``'s signature. The body goes with it only when the
    signature covers its digest (a signature that does not is no word on the body)."""
    base = VECTORS["request"]
    headers = {**base["headers"], "signature-input": example["signature-input"], "signature": example["signature"],
               **changes.pop("headers", {})}
    url = changes.pop("url", base["url"])
    body = changes.pop("body", base["body"] if "content-digest" in example["covers"] else "").encode()
    target = url.split("example.com", 1)[-1] if "example.com" in url else url.split("/", 3)[-1]
    return SignedRequest(changes.pop("method", base["method"]), target, headers, body, url)


def verify(example: dict[str, Any], req: SignedRequest, *, now: dt.datetime = FROZEN,
           required: tuple[str, ...] | None = None, algorithm: str | None = "key") -> None:
    key = VECTORS["keys"][example["key"]]
    signatures.verify_rfc9421(req, public_key(example["key"]), now=now, max_age=43200, max_future=300,
                              required=tuple(example["covers"]) if required is None else required,
                              algorithm=key["algorithm"] if algorithm == "key" else algorithm)


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_rfc_examples_verify(name):
    example = VECTORS["examples"][name]
    verify(example, request(example))


def test_kiln_signs_the_ed25519_example_to_the_rfcs_very_bytes():
    """Ed25519 is deterministic: the B.2.6 signature base, signed with the B.1.4 key, is the RFC's
    signature, so the key, the request and the signature here are the RFC's, byte for byte."""
    example = VECTORS["examples"]["B-2-6"]
    private = serialization.load_pem_private_key(VECTORS["keys"]["test-key-ed25519"]["private"].strip().encode(), None)
    headers = VECTORS["request"]["headers"]
    base = "\n".join([f'"date": {headers["date"]}', '"@method": POST', '"@path": /foo', '"@authority": example.com',
                      f'"content-type": {headers["content-type"]}', f'"content-length": {headers["content-length"]}',
                      '"@signature-params": ' + example["signature-input"].split("=", 1)[1]])
    signed = base64.b64encode(private.sign(base.encode())).decode()  # type: ignore[union-attr, call-arg]
    assert example["signature"] == f"sig-b26=:{signed}:"


# What each covered component becomes when it is changed on the way.
CHANGES: dict[str, dict[str, Any]] = {
    "date": {"headers": {"date": "Tue, 20 Apr 2021 02:07:56 GMT"}},
    "@method": {"method": "PUT"},
    "@path": {"url": "https://example.com/bar?param=Value&Pet=dog"},
    "@query": {"url": "https://example.com/foo?param=Value&Pet=cat"},
    "@authority": {"url": "https://example.org/foo?param=Value&Pet=dog"},
    "content-type": {"headers": {"content-type": "text/plain"}},
    "content-digest": {"headers": {"content-digest": "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"}},
    "content-length": {"headers": {"content-length": "19"}},
}
ALTERED = [(name, component) for name in EXAMPLES for component in VECTORS["examples"][name]["covers"]]


@pytest.mark.parametrize(("name", "component"), ALTERED)
def test_a_changed_component_is_refused(name, component):
    example = VECTORS["examples"][name]
    with pytest.raises(SignatureError) as refused:
        verify(example, request(example, **CHANGES[component]))
    assert refused.value.code == "signature_mismatch"


@pytest.mark.parametrize("name", [n for n in EXAMPLES if "content-digest" in VECTORS["examples"][n]["covers"]])
def test_a_changed_body_under_its_signed_digest_is_refused(name):
    example = VECTORS["examples"][name]
    with pytest.raises(SignatureError) as refused:
        verify(example, request(example, body='{"hello": "World"}'))
    assert refused.value.code == "signature_mismatch" and "digest" in refused.value.message.lower()


@pytest.mark.parametrize("name", EXAMPLES)
def test_changed_signature_parameters_are_refused(name):
    example = VECTORS["examples"][name]
    later = example["signature-input"].replace("created=1618884473", "created=1618884474")
    with pytest.raises(SignatureError) as refused:
        verify(example, request(example, headers={"signature-input": later}))
    assert refused.value.code == "signature_mismatch"


@pytest.mark.parametrize(("now", "code"), [(SIGNED_AT + dt.timedelta(hours=13), "signature_expired"),
                                           (SIGNED_AT - dt.timedelta(minutes=6), "signature_future")])
def test_the_clock_window_holds(now, code):
    """Twelve hours old at most, five minutes ahead at most (as for draft-cavage); the examples, dated
    2021, are refused on today's clock."""
    example = VECTORS["examples"]["B-2-3"]
    with pytest.raises(SignatureError) as refused:
        verify(example, request(example), now=now)
    assert refused.value.code == code
    with pytest.raises(SignatureError):
        verify(example, request(example), now=dt.datetime.now(dt.UTC))
    verify(example, request(example), now=SIGNED_AT + dt.timedelta(hours=12) - dt.timedelta(seconds=1))


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_inbox_asks_for_more_than_the_examples_cover(name):
    """An inbox needs the method, the target address and the body's digest covered; no example covers
    @target-uri, so each, valid as it is, is refused as an activity."""
    example = VECTORS["examples"][name]
    key = VECTORS["keys"][example["key"]]
    with pytest.raises(SignatureError) as refused:  # required=None: the inbox's rule
        signatures.verify_rfc9421(request(example, body=VECTORS["request"]["body"]), public_key(example["key"]),
                                  now=FROZEN, max_age=43200, max_future=300, algorithm=key["algorithm"])
    assert "was not covered" in refused.value.message


def test_the_algorithm_must_fit_the_key():
    pss, ed = VECTORS["examples"]["B-2-3"], VECTORS["examples"]["B-2-6"]
    with pytest.raises(SignatureError) as refused:  # RSA-PSS read as RSA v1.5 (Mastodon's): not the same
        verify(pss, request(pss), algorithm=None)
    assert refused.value.code == "signature_mismatch"
    with pytest.raises(SignatureError) as refused:  # an Ed25519 key cannot make an RSA signature
        verify(ed, request(ed), algorithm="rsa-pss-sha512")
    assert refused.value.code == "unknown_algorithm"
    with pytest.raises(SignatureError) as refused:
        verify(ed, request(ed, headers={"signature-input": ed["signature-input"] + ';alg="hmac-sha256"'}))
    assert refused.value.code == "unknown_algorithm"
