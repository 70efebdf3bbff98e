"""E-mail to data holders about opt-outs, sent after the transaction commits.

Messages name the request's receipt number and the releases only; the subject's pseudonym is shown
in the portal to the holder (who needs it to find the files), never in an e-mail.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from portal.accounts.models import User


def notify_holder_of_deletion(*, holder: User, reference: str, releases: list[str]) -> None:
    link = f"{settings.PORTAL_BASE_URL}{reverse('optout:deletions')}"
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[Opt-out] Please delete the data of a subject who refused (%(reference)s)") % {
            "reference": reference
        }
        body = "\n\n".join([
            _(
                "A research subject has asked that their data no longer be used, and that data "
                "already provided be deleted. Releases you hold under a grant contain this subject's files:"
            ),
            "\n".join(f"- {name}" for name in releases),
            _("Delete these files from every copy you hold, then confirm the deletion in the portal:"),
            link,
        ])
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [holder.email], fail_silently=False)
    )
