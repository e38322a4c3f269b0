"""HTTP Signatures (kiln.federation.signatures): Kiln's signing and verifying round-trip, agree with
independent implementations (apsig for draft-cavage, http-message-signatures as an RFC 9421 signer),
and refuse tampered bodies and headers, stale and future dates, and weak coverage."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from apsig.draft.sign import Signer
from apsig.draft.verify import Verifier
from cryptography.hazmat.primitives.asymmetric import rsa

from kiln.federation import signatures
from kiln.federation.signatures import SignatureError, SignedRequest

URL = "https://kiln.example/u/alice/inbox"
KEY_ID = "https://remote.example/actor#main-key"
BODY = json.dumps({"type": "Follow", "actor": "https://remote.example/actor"}).encode()
WINDOW = {"max_age": 12 * 3600, "max_future": 300}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return signatures.new_private_key()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_received(headers: dict[str, str], body: bytes = BODY, method: str = "POST",
                target: str = "/u/alice/inbox") -> SignedRequest:
    return SignedRequest(method, target, {k.lower(): v for k, v in headers.items()}, body)


def check(request: SignedRequest, key: rsa.RSAPrivateKey, when: dt.datetime | None = None) -> None:
    sig = signatures.parse_cavage(request.headers)
    signatures.verify_cavage(request, sig, key.public_key(), now=when or now(), **WINDOW)


def test_kiln_signs_and_verifies_its_own_requests(key):
    headers = signatures.sign("POST", URL, BODY, KEY_ID, key)
    assert headers["Host"] == "kiln.example" and headers["Digest"] == signatures.digest_header(BODY)
    assert 'headers="(request-target) host date digest"' in headers["Signature"]
    check(as_received(headers), key)


def test_a_get_is_signed_without_a_digest(key):
    headers = signatures.sign("GET", "https://remote.example/actor?x=1", b"", KEY_ID, key)
    assert "Digest" not in headers
    check(as_received(headers, b"", "GET", "/actor?x=1"), key)


def test_an_international_address_is_signed_as_it_is_sent(key):
    # httpx sends the name IDNA-encoded and the path percent-encoded: the signature covers those, and an
    # address that cannot be sent is a ValueError (a sentence to the caller), not a crash in httpx.
    headers = signatures.sign("GET", "https://bücher.example/users/ü?x=ä", b"", KEY_ID, key)
    assert headers["Host"] == "xn--bcher-kva.example"
    check(as_received(headers, b"", "GET", "/users/%C3%BC?x=%C3%A4"), key)
    with pytest.raises(ValueError, match="cannot sign"):
        signatures.sign("GET", "http://[::1/actor", b"", KEY_ID, key)


def test_kiln_and_apsig_accept_each_others_signatures(key):
    theirs = Signer(headers={"Content-Type": "application/activity+json"}, private_key=key, method="POST",
                    url=URL, key_id=KEY_ID, body=BODY).sign()
    check(as_received(theirs), key)
    ours = signatures.sign("POST", URL, BODY, KEY_ID, key)
    assert Verifier(public_pem=signatures.public_pem(key), method="POST", url=URL, headers=ours,
                    body=BODY).verify(raise_on_fail=True) == KEY_ID


def test_hs2019_and_the_authorization_header_form_are_read(key):
    headers = signatures.sign("POST", URL, BODY, KEY_ID, key)
    value = headers.pop("Signature").replace('algorithm="rsa-sha256"', 'algorithm="hs2019"')
    check(as_received({**headers, "Authorization": f"Signature {value}"}), key)


@pytest.mark.parametrize(("change", "code"), [
    (lambda h, b: (h, b.replace(b"Follow", b"Undo!!")), "digest_mismatch"),
    (lambda h, b: ({**h, "Host": "elsewhere.example"}, b), "signature_mismatch"),
    (lambda h, b: ({**h, "Digest": signatures.digest_header(b + b" ")}, b + b" "), "signature_mismatch"),
    (lambda h, b: ({**h, "Digest": "MD5=abc"}, b), "digest_unknown"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "Signature"}, b), "unsigned"),
    (lambda h, b: ({**h, "Signature": "keyId=broken"}, b), "bad_signature"),
    (lambda h, b: ({**h, "Signature": h["Signature"].replace("rsa-sha256", "hmac-sha256")}, b),
     "unknown_algorithm"),
    (lambda h, b: ({**h, "Signature": h["Signature"].replace(" digest", "")}, b), "weak_signature"),
])
def test_tampered_requests_are_refused(key, change, code):
    headers, body = change(signatures.sign("POST", URL, BODY, KEY_ID, key), BODY)
    with pytest.raises(SignatureError) as refused:
        check(as_received(headers, body), key)
    assert refused.value.code == code and refused.value.status == 401 and refused.value.message


def test_another_key_and_another_target_are_refused(key):
    other = signatures.new_private_key()
    headers = signatures.sign("POST", URL, BODY, KEY_ID, key)
    with pytest.raises(SignatureError, match="does not match"):
        check(as_received(headers), other)
    with pytest.raises(SignatureError, match="does not match"):
        check(as_received(headers, target="/inbox"), key)


def test_dates_outside_the_window_are_refused(key):
    old = signatures.sign("POST", URL, BODY, KEY_ID, key, now=now() - dt.timedelta(hours=13))
    with pytest.raises(SignatureError) as refused:
        check(as_received(old), key)
    assert refused.value.code == "signature_expired"
    ahead = signatures.sign("POST", URL, BODY, KEY_ID, key, now=now() + dt.timedelta(minutes=10))
    with pytest.raises(SignatureError) as refused:
        check(as_received(ahead), key)
    assert refused.value.code == "signature_future"
    slightly_old = signatures.sign("POST", URL, BODY, KEY_ID, key, now=now() - dt.timedelta(hours=11))
    check(as_received(slightly_old), key)


def test_keys_other_than_rsa_are_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for bad in (pem, "not a key", ""):
        with pytest.raises(SignatureError):
            signatures.load_public(bad)


def _rfc9421_signed(key: rsa.RSAPrivateKey, body: bytes, algorithm: str = "RSA_V1_5_SHA256",
                    created: dt.datetime | None = None, **sign_options: object) -> dict[str, str]:
    """Signed by http-message-signatures' own signer, as Mastodon's RFC 9421 requests are formed."""
    from dataclasses import dataclass

    from http_message_signatures import HTTPMessageSigner, algorithms
    from http_message_signatures.resolvers import HTTPSignatureKeyResolver
    from http_message_signatures.structures import CaseInsensitiveDict

    class Keys(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id: str) -> rsa.RSAPrivateKey:
            return key

    @dataclass
    class Message:
        method: str
        url: str
        headers: CaseInsensitiveDict

    message = Message("POST", URL, CaseInsensitiveDict({"Content-Type": "application/activity+json"}))
    HTTPMessageSigner(signature_algorithm=getattr(algorithms, algorithm), key_resolver=Keys()).sign(
        message, key_id=KEY_ID, covered_component_ids=("@method", "@target-uri", "content-digest"), body=body,
        created=created, **sign_options)
    return dict(message.headers)


def window() -> dict[str, object]:
    """The clock window verify_rfc9421 is given: now, as an inbox does."""
    return {"now": dt.datetime.now(dt.UTC), "max_age": 3600, "max_future": 300}


def test_rfc9421_signatures_are_verified(key):
    headers = _rfc9421_signed(key, BODY)
    request = SignedRequest("POST", "/u/alice/inbox", {k.lower(): v for k, v in headers.items()}, BODY, URL)
    assert signatures.rfc9421_key_id(request.headers) == KEY_ID
    signatures.verify_rfc9421(request, key.public_key(), **window())
    for tampered in (SignedRequest("POST", "/u/alice/inbox", request.headers, BODY + b" ", URL),
                     SignedRequest("POST", "/inbox", request.headers, BODY, "https://kiln.example/inbox")):
        with pytest.raises(SignatureError):
            signatures.verify_rfc9421(tampered, key.public_key(), **window())
    with pytest.raises(SignatureError):
        signatures.verify_rfc9421(request, signatures.new_private_key().public_key(), **window())


def test_rfc9421_rsa_pss_and_a_clock_a_little_ahead_are_accepted(key):
    """RSA-PSS when the signature says so (alg); a sender's clock up to five minutes ahead, as for
    draft-cavage (the package alone allows five seconds)."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    headers = _rfc9421_signed(key, BODY, "RSA_PSS_SHA512", created=ahead, include_alg=True)
    request = SignedRequest("POST", "/u/alice/inbox", {k.lower(): v for k, v in headers.items()}, BODY, URL)
    assert 'alg="rsa-pss-sha512"' in request.headers["signature-input"]
    signatures.verify_rfc9421(request, key.public_key(), **window())
    with pytest.raises(SignatureError) as refused:
        signatures.verify_rfc9421(request, key.public_key(), **{**window(), "max_future": 60})
    assert refused.value.code == "signature_future"


@pytest.mark.parametrize(("param", "value"), [
    ("created", "9" * 400), ("created", "99999999999999999999"), ("expires", "9" * 400 + "."),
    ("expires", "1" * 25 + ".5"), ("expires", "99999999999999999999"), ("created", "."), ("expires", "1.2.3")])
def test_garbage_created_and_expires_are_a_sentence_not_a_crash(key, param, value):
    headers = signatures.sign("POST", URL, BODY, KEY_ID, key)
    headers["Signature"] = headers["Signature"].replace('headers="', f'{param}={value},headers="')
    with pytest.raises(SignatureError) as refused:
        check(as_received(headers), key)
    assert refused.value.status == 401 and refused.value.message


@pytest.mark.parametrize("date", ["Mon, 07 Dec 99999999999999 12:00:00 GMT",
                                  "07 Dec 2026 12:00:00 +9999999999999999999", "Mon, 99 Dec 2026 12:00:00 GMT",
                                  "x" * 5000])
def test_garbage_dates_are_a_sentence_not_a_crash(key, date):
    headers = {**signatures.sign("POST", URL, BODY, KEY_ID, key), "Date": date}
    with pytest.raises(SignatureError) as refused:
        check(as_received(headers), key)
    assert refused.value.code == "bad_date" and refused.value.message


def test_huge_times_given_directly_are_refused_too(key):
    request = as_received(signatures.sign("POST", URL, BODY, KEY_ID, key))
    sig = signatures.parse_cavage(request.headers)
    for changed in ({"created": 10**30}, {"expires": 10**30}, {"created": -(10**30)}):
        with pytest.raises(SignatureError):
            signatures.verify_cavage(request, signatures.CavageSignature(**{**sig.__dict__, **changed}),
                                     key.public_key(), now=now(), **WINDOW)
