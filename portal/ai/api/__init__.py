"""Hosted AI models over the API, under /api/v1/ai/: the same rules as the pages.

Reads go through ``portal.ai.selectors`` (who sees which model, version and job; ``may_run`` is the
object permission ``ai.run_aimodel`` the pages ask too); writes call ``portal.ai.services`` and turn
their refusals into API errors: ``ValidationError`` → 400 with the messages by field,
``PermissionDenied`` → 403 with the service's message. Models and jobs the caller may not see
answer 404. Wherever a demo model appears, ``demo_notice`` carries ``DEMO_NOTICE`` (else null).

One module per part: ``_common`` (refusals and 404 lookups), ``serializers`` (answers), ``inputs``
(input serializers), ``model_views`` and ``job_views``; the views are re-exported here for
``portal.ai.api_urls``.
"""

from portal.ai.api.job_views import (
    InferenceJobDetail,
    InferenceJobImagesDelete,
    InferenceJobListCreate,
    InferenceJobResultsCSV,
    InferenceJobResultsJSON,
)
from portal.ai.api.model_views import (
    AIModelDetail,
    AIModelList,
    ModelAccessRequestCreate,
    ModelAccessRequestDecision,
    ModelAccessRequestList,
    ModelAccessRequestRevoke,
    ModelAccessRequestWithdraw,
    ModelVersionCreate,
    ModelVersionDetail,
    ModelVersionPublish,
    ModelVersionRetire,
)

__all__ = [
    "AIModelDetail",
    "AIModelList",
    "InferenceJobDetail",
    "InferenceJobImagesDelete",
    "InferenceJobListCreate",
    "InferenceJobResultsCSV",
    "InferenceJobResultsJSON",
    "ModelAccessRequestCreate",
    "ModelAccessRequestDecision",
    "ModelAccessRequestList",
    "ModelAccessRequestRevoke",
    "ModelAccessRequestWithdraw",
    "ModelVersionCreate",
    "ModelVersionDetail",
    "ModelVersionPublish",
    "ModelVersionRetire",
]
