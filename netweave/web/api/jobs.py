"""Jobs: follow a refresh the API started."""

from __future__ import annotations

from graph.records import TokenScope
from netweave.jobs import get_jobs
from netweave.services import matches
from netweave.web.api import bp, caller, requires, responses, spec
from netweave.web.api.schemas import JobOut


@bp.get("/jobs/<job_id>")
@requires(TokenScope.READ)
@spec.validate(resp=responses({"HTTP_200": JobOut}, 404), tags=["jobs"], operation_id="getJob")
def get_job(job_id: str) -> JobOut:
    """A job's status and, once done, its outcome (poll until `done` or `failed`)."""
    return JobOut.of(matches.job_for(get_jobs(), caller().viewer, job_id))
