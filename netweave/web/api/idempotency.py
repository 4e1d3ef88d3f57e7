"""`Idempotency-Key` on the API's POSTs: a request retried with the same key gets the first
answer again (marked `Idempotent-Replayed: true`), and writes nothing twice.

The key is claimed in the store before the request runs, so two retries racing each other
run it once (the second is told to retry shortly: 409 with `Retry-After`). A key sent again
with another request (method, path or body) is refused (422). An answer from our side's
failure (5xx) is not kept: the key is released and a retry runs the request again. Keys
last a day (`KEY_LIFETIME`), per token.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta

from flask import Response, g, request

from graph.records import IdempotentRequest
from netweave.store import get_store
from netweave.web.api.problems import ApiProblem
from netweave.web.errors import STORE_DOWN

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY_LIFETIME = timedelta(hours=24)
# A claim still unanswered this long was left by a request that died (its process, or the
# store going away before the key could be released): a retry may take it over.
ABANDONED_AFTER = timedelta(minutes=2)
MAX_KEY = 255
KEY_PATTERN = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # visible ASCII, inner spaces allowed
REPLAYED_HEADERS = ("Location", "ETag")


def claim(token_id: str) -> Response | None:
    """Before a POST runs: None to run it (its key, if any, is now claimed), or the answer to
    give instead (the first answer again, or a problem)."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if len(key) > MAX_KEY or not KEY_PATTERN.fullmatch(key):
        why = f"give 1 to {MAX_KEY} visible ASCII characters (a UUID is a good key)"
        raise ApiProblem(422, f"{HEADER}: {why}", errors=[{"in": "header", "field": HEADER, "message": why}])
    fingerprint = hashlib.sha256(b"\0".join([request.method.encode(), request.path.encode(), request.get_data()]))
    now = datetime.now(UTC)
    mine = IdempotentRequest(token_id, key, fingerprint.hexdigest(), now)
    found = get_store().write(lambda tx: tx.claim_idempotency_key(mine, now - KEY_LIFETIME))
    if found is None:
        g.idempotency = mine
        return None
    if found.fingerprint != mine.fingerprint:
        raise ApiProblem(422, f"{HEADER} {key!r} was used for another request; use a new key for a new request")
    if found.status is None and found.created_at < now - ABANDONED_AFTER:
        get_store().write(lambda tx: tx.release_idempotency_key(token_id, key))
        return claim(token_id)
    if found.status is None:
        raise ApiProblem(409, f"a request with {HEADER} {key!r} is still being answered; retry shortly",
                         headers={"Retry-After": "1"})  # fmt: skip
    replay = Response(found.body, status=found.status, mimetype=_mimetype(found.status))
    replay.headers.update(dict(found.headers))
    replay.headers["Idempotent-Replayed"] = "true"
    return replay


def _mimetype(status: int) -> str:
    return "application/json" if status < 400 else "application/problem+json"


def keep(response: Response) -> Response:
    """After a claimed request: keep its answer to replay (or release the key after a 5xx)."""
    claimed: IdempotentRequest | None = g.pop("idempotency", None)
    if claimed is None:
        return response
    store = get_store()
    if response.status_code >= 500:
        _release(claimed)
        return response
    headers = [(name, response.headers[name]) for name in REPLAYED_HEADERS if name in response.headers]
    body = response.get_data(as_text=True)
    store.write(
        lambda tx: tx.complete_idempotency_key(claimed.token_id, claimed.key, response.status_code, body, headers)
    )
    return response


def release_after_failure(error: BaseException | None) -> None:
    """A request that ended in an exception no handler answered: its key may run again."""
    claimed: IdempotentRequest | None = g.pop("idempotency", None)
    if claimed is not None:
        _release(claimed)


def _release(claimed: IdempotentRequest) -> None:
    """Let the key run again; if the store is down too, the claim is taken over once it is old
    (ABANDONED_AFTER), so the answer already decided (a 503) still goes out."""
    try:
        get_store().write(lambda tx: tx.release_idempotency_key(claimed.token_id, claimed.key))
    except STORE_DOWN:
        log.warning("could not release %s %r: the store is unreachable", HEADER, claimed.key)
