"""The anonymisation job's state machine: one table of allowed transitions.

A pending job is started (its files listed and queued) or cancelled; a running job is cancelled or,
once every file has a result, ends as finished, finished with failures, or failed (every file failed).
"""

from __future__ import annotations

from portal.deid.models import DeidJobStatus as S
from portal.lib.workflow import Workflow

DEID_JOB = Workflow("deid.job", S, {
    "start": {S.PENDING: S.RUNNING},
    "cancel": {S.PENDING: S.CANCELLED, S.RUNNING: S.CANCELLED},
    "finish": {S.RUNNING: S.FINISHED},
    "finish_with_failures": {S.RUNNING: S.FINISHED_WITH_FAILURES},
    "fail": {S.RUNNING: S.FAILED},
})
