"""Who may run a model: the one rule behind ``user.has_perm("ai.run_aimodel", model)``.

django-guardian's backend answers for users whose light access request was approved (the permission
is assigned on approval and removed on revocation). This backend adds the rest:

- the admins of the model's society and the platform operator (to try their drafts);
- where the card says so (``open_to_grant_holders``), every user named on a grant in force that
  includes an available release of a dataset of the model's society.
"""

from __future__ import annotations

from typing import Any

from portal.ai.models import RUN_PERMISSION, AIModel
from portal.ai.selectors import may_run_without_request


class ModelAccessBackend:
    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if perm != RUN_PERMISSION or not isinstance(obj, AIModel):
            return False
        if not getattr(user_obj, "is_authenticated", False) or not getattr(user_obj, "is_active", False):
            return False
        return may_run_without_request(user_obj, obj)
