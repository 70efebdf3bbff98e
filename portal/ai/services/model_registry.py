"""Registering hosted models and editing their pages."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ai.models import AIModel
from portal.ai.services._common import MODEL_EDITABLE, _require_manager
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.selectors import may_manage_society
from portal.societies.models import Society

# The first path segments under /ai/ that are pages, not models (see portal/ai/urls.py).
RESERVED_SLUGS = frozenset({"jobs", "manage", "requests"})


def model_create(
    *, society: Society, slug: str, name_ja: str, name_en: str = "", task: str, modality: str,
    summary_ja: str = "", summary_en: str = "", open_to_grant_holders: bool = False, is_demo: bool = False,
    by: User,
) -> AIModel:
    """A new model (no version yet) of ``society``: its admins and the operator."""
    if by is None or not may_manage_society(by, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))
    slug = (slug or "").strip().lower()
    errors: dict[str, str] = {}
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,79}", slug):
        errors["slug"] = _("Use 2 to 80 lower-case letters, digits and hyphens.")
    elif slug in RESERVED_SLUGS:
        errors["slug"] = _("This identifier is a page of the portal; choose another.")
    elif AIModel.objects.filter(slug=slug).exists():
        errors["slug"] = _("A model with this identifier already exists.")
    if not (name_ja or "").strip():
        errors["name_ja"] = _("Enter the name in Japanese.")
    if task not in AIModel.Task.values:
        errors["task"] = _("Choose the task.")
    if modality not in Modality.values:
        errors["modality"] = _("Choose the input modality.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        model = AIModel.objects.create(
            society=society, slug=slug, name_ja=name_ja.strip(), name_en=(name_en or "").strip(), task=task,
            modality=modality, summary_ja=(summary_ja or "").strip(), summary_en=(summary_en or "").strip(),
            open_to_grant_holders=bool(open_to_grant_holders), is_demo=bool(is_demo), created_by=by,
        )
        audit_record(action="ai.model_created", actor=by, target=model, details={
            "society": society.slug, "slug": slug, "task": task, "modality": modality,
            "open_to_grant_holders": model.open_to_grant_holders, "is_demo": model.is_demo,
        })
    return model


def model_update(*, model: AIModel, by: User, **fields: Any) -> AIModel:
    """Change the name, summary or ``open_to_grant_holders``; audited with the changed fields."""
    _require_manager(by, model)
    unknown = sorted(set(fields) - set(MODEL_EDITABLE))
    if unknown:
        raise ValidationError(_("These fields cannot be changed: %(names)s.") % {"names": ", ".join(unknown)})
    if "name_ja" in fields and not str(fields["name_ja"] or "").strip():
        raise ValidationError({"name_ja": _("Enter the name in Japanese.")})
    with transaction.atomic():
        locked = AIModel.objects.select_for_update().get(pk=model.pk)
        changed: dict[str, dict[str, Any]] = {}
        for name, value in fields.items():
            value = bool(value) if name == "open_to_grant_holders" else str(value or "").strip()
            if getattr(locked, name) != value:
                changed[name] = {"from": getattr(locked, name), "to": value}
                setattr(locked, name, value)
        if changed:
            locked.save(update_fields=sorted(changed))
            audit_record(action="ai.model_updated", actor=by, target=locked, details={"changed": changed})
    model.refresh_from_db()
    return model


