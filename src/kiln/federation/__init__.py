"""ActivityPub: Kiln accounts as actors other servers can find and follow (docs/federation.md).

- ``signatures``: HTTP Signatures (draft-cavage, and RFC 9421 verification), pure functions over bytes.
- ``keys``: each account's RSA key pair, made on first need.
- ``fetch``: the only way Kiln talks to other servers: timeouts, size limits, no private addresses.
- ``remote``: remote actors, fetched and cached, and the key that verifies a request.
- ``actors``: the documents Kiln serves (WebFinger, NodeInfo, actors, collections).
- ``inbox``: receiving activities (verify, record, answer 202) and processing them afterwards.
- ``delivery``: signed POSTs to other servers' inboxes, as durable outbox effects.
"""
