"""Matches: a business's current suggestions, the best across a salesperson's book, and
refreshes on demand (202 with the job to poll)."""

from __future__ import annotations

from flask import url_for

from graph.records import Job, TokenScope
from netweave.jobs import get_jobs
from netweave.services import matches
from netweave.store import get_store
from netweave.web.api import bp, caller, requires, responses, spec
from netweave.web.api.problems import ApiProblem
from netweave.web.api.schemas import Accepted, BestQuery, IdempotentHeaders, JobOut, MatchList, MatchOut

TAG = "matches"


@bp.get("/businesses/<business_id>/matches")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": MatchList}, 404), tags=[TAG], operation_id="getMatches")
def business_matches(business_id: str) -> MatchList:
    """The business's current suggestions, best first, with the reasons for each side."""
    listing = matches.business_listing(get_store(), caller().viewer, business_id)
    return MatchList(items=[MatchOut.of(v) for v in listing.views], generation=listing.generation)


@bp.get("/salespeople/<salesperson_id>/matches")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": MatchList}, 404, 422), tags=[TAG], operation_id="getBestMatches")
def best_matches(salesperson_id: str, query: BestQuery) -> MatchList:
    """The best suggestions across a salesperson's book, each pair once, best first."""
    listing = matches.best_listing(get_store(), caller().viewer, salesperson_id.strip().lower(), query.limit)
    return MatchList(items=[MatchOut.of(v) for v in listing.views], generation=listing.generation)


def _accepted(job: Job | None) -> tuple[Accepted, int, dict[str, str]]:
    if job is None:
        raise ApiProblem(
            503,
            "the job queue cannot be reached; the refresh is recorded and runs when the worker next sweeps",
            headers={"Retry-After": "60"},
        )
    return Accepted(job=JobOut.of(job)), 202, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.post("/businesses/<business_id>/matches/refresh")
@requires(TokenScope.WRITE)
@spec.validate(resp=responses({"HTTP_202": Accepted}, 404, 422, 503), tags=[TAG], headers=IdempotentHeaders,
               operation_id="refreshMatches")  # fmt: skip
def refresh_business(business_id: str) -> tuple[Accepted, int, dict[str, str]]:
    """Recompute this business's suggestions (and those its change reaches) in the background."""
    return _accepted(matches.refresh_business(get_store(), get_jobs(), caller().viewer, business_id))


@bp.post("/matches/refresh")
@requires(TokenScope.ADMIN)
@spec.validate(resp=responses({"HTTP_202": Accepted}, 422), tags=[TAG], headers=IdempotentHeaders,
               operation_id="refreshAllMatches")  # fmt: skip
def refresh_all() -> tuple[Accepted, int, dict[str, str]]:
    """Recompute every list (after a change of rules or model): one full generation."""
    viewer = caller().viewer
    if not viewer.sees_every_book:
        raise ApiProblem(403, "only a manager's or an integration's token may refresh every book")
    return _accepted(matches.refresh_everything(get_jobs(), viewer))
