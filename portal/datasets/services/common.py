"""Who may act on a society's datasets, and the refusal of a release's manifest."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.datasets.manifest import FileProblem
from portal.datasets.models import Dataset
from portal.datasets.selectors import may_manage_society
from portal.societies.models import Society


class ReleaseRejected(ValidationError):
    """A manifest with problems: nothing was written. ``problems`` lists them file by file."""

    def __init__(self, problems: Sequence[FileProblem]) -> None:
        self.problems = list(problems)
        super().__init__([str(problem) for problem in self.problems], code="release_rejected")


# --- Who may act ---------------------------------------------------------------------------------


def _require_manager(user: User | None, society: Society) -> None:
    if user is None or not may_manage_society(user, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))


def _locked(dataset: Dataset) -> Dataset:
    return Dataset.objects.select_for_update().select_related("society", "protocol").get(pk=dataset.pk)
