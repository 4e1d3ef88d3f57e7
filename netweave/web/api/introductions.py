"""Introductions (from a suggestion, with a double opt-in draft for each side; moved through
their statuses; rated by either side), dismissals and snoozes of suggestions, and blocks."""

from __future__ import annotations

from flask import request, url_for

from graph.records import DismissReason, FeedbackKind, Introduction, IntroStatus, TokenScope
from netweave.jobs import get_jobs
from netweave.services import introductions, matches, network
from netweave.services.access import NotAllowed, NotFound
from netweave.services.introductions import NEXT
from netweave.store import get_store
from netweave.web.api import bp, caller, check_if_match, requires, responses, spec
from netweave.web.api.problems import ApiProblem
from netweave.web.api.schemas import (
    ActedOut,
    BlockIn,
    BlockOut,
    DismissIn,
    IdempotentHeaders,
    IdempotentIfMatchHeaders,
    IntroductionIn,
    IntroductionList,
    IntroductionOut,
    IntroductionQuery,
    IntroFeedbackOut,
    IntroStepOut,
    JobOut,
    MoveIn,
    RatingIn,
)

TAG = "introductions"
Headers = dict[str, str]


def _out(introduction: Introduction) -> IntroductionOut:
    return IntroductionOut(
        id=introduction.id,
        business_id=introduction.a_id,
        other_id=introduction.b_id,
        status=introduction.status.value,
        next=[s.value for s in NEXT[introduction.status]],
        message_to_business=introduction.message_a,
        message_to_other=introduction.message_b,
        score=round(introduction.score, 4),
        created_at=introduction.created_at,
        created_by=introduction.created_by,
        updated_at=introduction.updated_at,
        version=len(introduction.steps),
        steps=[IntroStepOut(status=s.status.value, at=s.at, by=s.by, note=s.note) for s in introduction.steps],
        feedback=[
            IntroFeedbackOut(business_id=f.business_id, rating=f.rating, comment=f.comment, at=f.at, by=f.by)
            for f in introduction.feedback
        ],
    )


def etag(introduction: Introduction) -> str:
    return f'"{introduction.id}.{len(introduction.steps)}.{len(introduction.feedback)}"'


def _answer(introduction: Introduction, status: int = 200) -> tuple[IntroductionOut, int, Headers]:
    headers = {"ETag": etag(introduction)}
    if status == 201:
        headers["Location"] = url_for("api.get_introduction", introduction_id=introduction.id)
    return _out(introduction), status, headers


def _expected_version(introduction_id: str) -> int | None:
    """The version an `If-Match` names (412 if it is not the introduction's current tag)."""
    if not request.if_match:
        return None
    current = introductions.get(get_store(), caller().viewer, introduction_id)
    check_if_match(etag(current), f"introduction {introduction_id!r}")
    return len(current.steps)


@bp.post("/introductions")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_201": IntroductionOut}, 400, 404, 409, 415, 422), tags=[TAG],
               headers=IdempotentHeaders, operation_id="createIntroduction")  # fmt: skip
def create_introduction(json: IntroductionIn) -> tuple[IntroductionOut, int, Headers]:
    """Make an introduction from a current suggestion: a draft for each side that asks first."""
    made = introductions.propose(get_store(), get_jobs(), caller().viewer, json.business_id, json.other_id)
    return _answer(made, 201)


@bp.get("/introductions")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": IntroductionList}, 404, 422), tags=[TAG], operation_id="listIntroductions")
def list_introductions(query: IntroductionQuery) -> IntroductionList:
    """Introductions, newest first: a business's, or every one the token may see."""
    found = introductions.list_for(
        get_store(), caller().viewer, business_id=query.business_id,
        status=IntroStatus(query.status) if query.status else None, limit=query.limit,
    )  # fmt: skip
    return IntroductionList(items=[_out(i) for i in found])


@bp.get("/introductions/<introduction_id>")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": IntroductionOut}, 404), tags=[TAG], operation_id="getIntroduction")
def get_introduction(introduction_id: str) -> tuple[IntroductionOut, int, Headers]:
    """One introduction: its status, where it may go, its drafts, steps and feedback."""
    return _answer(introductions.get(get_store(), caller().viewer, introduction_id))


@bp.post("/introductions/<introduction_id>/status")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": IntroductionOut}, 400, 404, 409, 412, 415, 422), tags=[TAG],
               headers=IdempotentIfMatchHeaders, operation_id="moveIntroduction")  # fmt: skip
def move_introduction(introduction_id: str, json: MoveIn) -> tuple[IntroductionOut, int, Headers]:
    """Move an introduction on (a move its status allows: see `next`). With `If-Match: <ETag>`,
    only from the version you read (else 412)."""
    expected = _expected_version(introduction_id)
    moved = introductions.advance(
        get_store(), get_jobs(), caller().viewer, introduction_id, IntroStatus(json.status), json.note,
        expected_steps=expected,
    )  # fmt: skip
    return _answer(moved)


@bp.post("/introductions/<introduction_id>/feedback")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": IntroductionOut}, 400, 404, 409, 415, 422), tags=[TAG],
               headers=IdempotentHeaders, operation_id="rateIntroduction")  # fmt: skip
def rate_introduction(introduction_id: str, json: RatingIn) -> tuple[IntroductionOut, int, Headers]:
    """One side's verdict on how the introduction went: 1 to 5, and a comment if they gave one."""
    rated = introductions.rate(
        get_store(), get_jobs(), caller().viewer, introduction_id, json.business_id, json.rating, json.comment
    )
    return _answer(rated)


def _acted(business_id: str, other_id: str, reason: str, done: str) -> ActedOut:
    job = matches.record_feedback(get_store(), get_jobs(), caller().viewer, business_id, other_id,
                                  FeedbackKind.DISMISSED, reason, channel="api")  # fmt: skip
    return ActedOut(business_id=business_id, other_id=other_id, done=done,
                    refresh_job=JobOut.of(job) if job else None)  # fmt: skip


@bp.post("/businesses/<business_id>/matches/<other_id>/dismiss")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": ActedOut}, 400, 404, 415, 422), tags=["matches"],
               headers=IdempotentHeaders, operation_id="dismissMatch")  # fmt: skip
def dismiss(business_id: str, other_id: str, json: DismissIn) -> ActedOut:
    """Dismiss a suggestion with a reason; it leaves both lists and matching learns from it."""
    return _acted(business_id, other_id, json.reason, "dismissed")


@bp.post("/businesses/<business_id>/matches/<other_id>/snooze")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": ActedOut}, 404, 422), tags=["matches"], headers=IdempotentHeaders,
               operation_id="snoozeMatch")  # fmt: skip
def snooze(business_id: str, other_id: str) -> ActedOut:
    """Not now: the suggestion leaves the lists for a while (90 days by default), then may return."""
    return _acted(business_id, other_id, DismissReason.BAD_TIMING.value, "snoozed")


@bp.post("/blocks")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": BlockOut}, 400, 404, 415, 422), tags=["blocks"],
               headers=IdempotentHeaders, operation_id="addBlock")  # fmt: skip
def add_block(json: BlockIn) -> BlockOut:
    """Never introduce these two (either side's salesperson may block a pair)."""
    changed = network.block(get_store(), get_jobs(), caller().viewer, json.business_id, json.other_id, json.reason)
    return BlockOut(business_id=json.business_id, other_id=json.other_id, blocked=True, changed=changed)


@bp.delete("/blocks/<business_id>/<other_id>")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_200": BlockOut}, 404), tags=["blocks"], operation_id="removeBlock")
def remove_block(business_id: str, other_id: str) -> BlockOut:
    """Allow a blocked pair again (takes one who manages both sides, or a manager)."""
    if business_id == other_id:
        raise NotFound(f"no block of {business_id!r} with itself")
    try:
        changed = network.unblock(get_store(), get_jobs(), caller().viewer, business_id, other_id)
    except NotAllowed as refused:  # the viewer manages one side: saying why tells them nothing new
        raise ApiProblem(403, str(refused)) from None
    return BlockOut(business_id=business_id, other_id=other_id, blocked=False, changed=changed)
