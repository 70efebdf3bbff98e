"""The quorum rules for a full-board decision (生命・医学系指針; REGULATION.md a2).

Plain Python over the attending members, so the rules can be read and tested on their own. A
decision is refused while any rule fails, and the refusal names each failing rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

MINIMUM_MEMBERS = 5
MINIMUM_EXTERNAL = 2


@dataclass(frozen=True)
class Attendee:
    category: str  # natural_science | humanities | lay
    is_external: bool
    sex: str  # female | male


def quorum_failures(attendees: Iterable[Attendee]) -> list[str]:
    """Every quorum rule the attending members fail, in words; empty when the quorum holds."""
    present = list(attendees)
    failures: list[str] = []
    if len(present) < MINIMUM_MEMBERS:
        failures.append(
            _("At least %(minimum)d members must attend; %(count)d attended.")
            % {"minimum": MINIMUM_MEMBERS, "count": len(present)}
        )
    categories = {a.category for a in present}
    if "natural_science" not in categories:
        failures.append(_("No natural-science expert attended."))
    if "humanities" not in categories:
        failures.append(_("No humanities or social-science expert attended."))
    if "lay" not in categories:
        failures.append(_("No lay member attended."))
    external = sum(1 for a in present if a.is_external)
    if external < MINIMUM_EXTERNAL:
        failures.append(
            _("At least %(minimum)d external members must attend; %(count)d attended.")
            % {"minimum": MINIMUM_EXTERNAL, "count": external}
        )
    sexes = {a.sex for a in present}
    if not {"female", "male"} <= sexes:
        failures.append(_("Members of both sexes must attend."))
    return failures
