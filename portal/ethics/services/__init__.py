"""Every change to committees and protocols: checked, saved, audited and notified in one transaction.

Who may act is decided here, not in the views: the applicant (the protocol's principal
investigator), the committee's secretariat, its chair and members, and the head of the applicant's
institution each have their own services. A refusal raises ``EthicsRefused`` (the wrong person or
state) or ``ValidationError`` (missing or bad input) and changes nothing.

- ``common``: who is who for a protocol (the ``_require_*`` checks) and shared helpers
- ``committees``: committees and their members
- ``drafting``: create, edit, attach, submit; the secretariat's return for completion
- ``review``: the committee's review and decision, conditions, the head's permission
- ``after_permission``: revisions, amendments, reports, suspension, the end of the research
"""

from portal.ethics.services.after_permission import (
    REPORTABLE_STATES,
    amendment_start,
    amendment_submit,
    draft_submit,
    minor_amendment_acknowledge,
    noncompliance_opinion_record,
    noncompliance_report_file,
    periodic_report_acknowledge,
    periodic_report_submit,
    protocol_discontinue,
    protocol_report_completion,
    protocol_resume,
    protocol_revise,
    protocol_revise_refusal,
    protocol_suspend,
    protocol_withdraw,
)
from portal.ethics.services.committees import (
    committee_create,
    committee_member_add,
)
from portal.ethics.services.common import (
    latest_version,
    one_year_after,
)
from portal.ethics.services.drafting import (
    JUSTIFICATIONS,
    MAX_ATTACHMENT_BYTES,
    ORGANIZATION_ENTRY_FIELDS,
    VERSION_FIELDS,
    attachment_add,
    missing_for_submission,
    protocol_create,
    protocol_return_for_completion,
    protocol_submit,
    protocol_update_draft,
)
from portal.ethics.services.review import (
    attendance_record,
    comment_add,
    conditions_answer,
    conditions_verify,
    conflict_declare,
    decision_notified_to_head_set,
    decision_record,
    head_decide,
    quorum_problems,
    review_explanation_record,
    review_open,
    vote_cast,
)
from portal.ethics.workflow import EthicsRefused

__all__ = [
    "JUSTIFICATIONS",
    "MAX_ATTACHMENT_BYTES",
    "ORGANIZATION_ENTRY_FIELDS",
    "REPORTABLE_STATES",
    "VERSION_FIELDS",
    "EthicsRefused",
    "amendment_start",
    "amendment_submit",
    "attachment_add",
    "attendance_record",
    "comment_add",
    "committee_create",
    "committee_member_add",
    "conditions_answer",
    "conditions_verify",
    "conflict_declare",
    "decision_notified_to_head_set",
    "decision_record",
    "draft_submit",
    "head_decide",
    "latest_version",
    "minor_amendment_acknowledge",
    "missing_for_submission",
    "noncompliance_opinion_record",
    "noncompliance_report_file",
    "one_year_after",
    "periodic_report_acknowledge",
    "periodic_report_submit",
    "protocol_create",
    "protocol_discontinue",
    "protocol_report_completion",
    "protocol_resume",
    "protocol_return_for_completion",
    "protocol_revise",
    "protocol_revise_refusal",
    "protocol_submit",
    "protocol_suspend",
    "protocol_update_draft",
    "protocol_withdraw",
    "quorum_problems",
    "review_explanation_record",
    "review_open",
    "vote_cast",
]
