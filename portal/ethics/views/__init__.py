"""The ethics review in the browser, one module per audience.

- ``applicant``: list, create, edit, attachments, submit; the applicant's actions on the detail page
- ``protocol``: what everyone who may see the protocol sees: detail, versions compared, attachments
- ``committee``: members' inbox and review page, the secretariat's queue, the chair's and
  secretariat's actions
- ``head``: the head of the institution's queue and decision

Each view parses a form and calls one service from ``portal.ethics.services``. The services decide
who may do what in which state; a refusal is shown as a message and changes nothing, bad input is
shown next to the fields. Who the user is for a protocol is ``portal.ethics.permissions``.
"""

from portal.ethics.permissions import REFUSALS, Standing
from portal.ethics.views.applicant import (
    amendment_start,
    attachment_upload,
    completion_report,
    conditions_answer,
    noncompliance_report,
    periodic_report,
    periodic_report_acknowledge,
    protocol_create,
    protocol_discontinue,
    protocol_edit,
    protocol_list,
    protocol_revise,
    protocol_submit,
    protocol_withdraw,
)
from portal.ethics.views.committee import (
    conditions_verify,
    inbox,
    minor_amendment_acknowledge,
    noncompliance_opinion,
    protocol_resume,
    protocol_return,
    protocol_suspend,
    review_attendance,
    review_comment,
    review_conflict,
    review_decision,
    review_detail,
    review_explanation,
    review_notified_to_head,
    review_open,
    review_vote,
    secretariat_queue,
)
from portal.ethics.views.head import (
    head_decide,
    head_queue,
)
from portal.ethics.views.protocol import (
    attachment_download,
    protocol_detail,
    version_diff,
)

__all__ = [
    "REFUSALS",
    "Standing",
    "amendment_start",
    "attachment_download",
    "attachment_upload",
    "completion_report",
    "conditions_answer",
    "conditions_verify",
    "head_decide",
    "head_queue",
    "inbox",
    "minor_amendment_acknowledge",
    "noncompliance_opinion",
    "noncompliance_report",
    "periodic_report",
    "periodic_report_acknowledge",
    "protocol_create",
    "protocol_detail",
    "protocol_discontinue",
    "protocol_edit",
    "protocol_list",
    "protocol_resume",
    "protocol_return",
    "protocol_revise",
    "protocol_submit",
    "protocol_suspend",
    "protocol_withdraw",
    "review_attendance",
    "review_comment",
    "review_conflict",
    "review_decision",
    "review_detail",
    "review_explanation",
    "review_notified_to_head",
    "review_open",
    "review_vote",
    "secretariat_queue",
    "version_diff",
]
