"""The agreements' state machines: template versions and signed agreements, one table each.

A draft template version is published (the one applicants sign) and superseded when the next one is
published. A signed agreement is countersigned by an administrator of the society.
"""

from __future__ import annotations

from portal.agreements.models import AgreementTemplateVersionStatus as T
from portal.agreements.models import SignedAgreementStatus as A
from portal.lib.workflow import Workflow

TEMPLATE_VERSION = Workflow("agreements.template_version", T, {
    "publish": {T.DRAFT: T.PUBLISHED},
    "supersede": {T.PUBLISHED: T.SUPERSEDED},
})

SIGNED_AGREEMENT = Workflow("agreements.signed_agreement", A, {
    "countersign": {A.SIGNED: A.COMPLETED},
})
