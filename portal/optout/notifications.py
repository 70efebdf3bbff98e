"""Messages to data holders about opt-outs: inbox now, e-mail after the commit.

Messages name the request's receipt number and the releases only; the subject's pseudonym is shown
in the portal to the holder (who needs it to find the files), never in a message.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.notifications.services import notification_send


def notify_holder_of_deletion(*, holder: User, reference: str, releases: list[str]) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Please delete the data of a subject who refused (%(reference)s)") % {"reference": reference}
        body = "\n\n".join([
            _(
                "A research subject has asked that their data no longer be used, and that data "
                "already provided be deleted. Releases you hold under a grant contain this subject's files:"
            ),
            "\n".join(f"- {name}" for name in releases),
            _("Delete these files from every copy you hold, then confirm the deletion in the portal:"),
        ])
        area = _("Opt-out")
    notification_send(recipients=[holder], area=area, subject=subject, body=body, url=reverse("optout:deletions"))
