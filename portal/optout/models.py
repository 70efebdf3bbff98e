"""Opt-out notices the public is owed, and the requests of patients who refuse.

An ``OptOutNotice`` (オプトアウト文書 / 情報公開文書) is the stable, public thing a society keeps
published for as long as it uses the data; what it says lives in numbered ``OptOutNoticeVersion``
rows carrying every item of REGULATION.md a3. Publishing a new version supersedes the previous one;
published versions are never edited.

An ``OptOutRequest`` (利用・提供の停止の求め) is stored by the society-common pseudonym only: the
patient identifier it was made from is hashed when the request is recorded and never stored or
logged. Its effects are tracked in ``DeletionConfirmation`` rows, one per grant holder who holds a
release with the subject in it, until each has confirmed deletion.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organization
from portal.core.vocabulary import Modality
from portal.ethics.models import Protocol
from portal.lib.constraints import status_in_choices, when_status
from portal.societies.models import Society


class OptOutNoticeStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class OptOutNotice(models.Model):
    Status = OptOutNoticeStatus

    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="optout_notices", verbose_name=_("society")
    )
    reference = models.CharField(_("notice number"), max_length=30, unique=True)
    protocol = models.ForeignKey(
        Protocol,
        on_delete=models.PROTECT,
        related_name="optout_notices",
        verbose_name=_("research protocol"),
    )
    datasets = models.ManyToManyField(
        "datasets.Dataset",
        related_name="optout_notices",
        blank=True,
        verbose_name=_("datasets covered"),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    # The version the public reads (null until the first is published).
    current_version = models.OneToOneField(
        "OptOutNoticeVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published version"),
    )
    first_published_at = models.DateTimeField(_("first published at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out notice")
        verbose_name_plural = _("opt-out notices")
        ordering = ["society_id", "-id"]
        constraints = [
            status_in_choices(OptOutNoticeStatus, name="optout_notice_status_valid"),
            when_status([OptOutNoticeStatus.PUBLISHED], Q(first_published_at__isnull=False),
                        name="optout_notice_published_has_first_published_at"),
            when_status([OptOutNoticeStatus.WITHDRAWN], Q(withdrawn_at__isnull=False) & ~Q(withdrawal_reason=""),
                        name="optout_notice_withdrawn_has_withdrawal"),
        ]

    def __str__(self) -> str:
        return self.reference


class OptOutNoticeVersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    SUPERSEDED = "superseded", _("Superseded")


class OptOutNoticeVersion(models.Model):
    """What one version of a notice tells the public: every item of guideline 第8の6 (REGULATION.md a3)."""

    Status = OptOutNoticeVersionStatus

    # The items the public must be told, in the guideline's order: (field, required).
    ITEMS = (
        ("title", True),
        ("purpose_and_method", True),
        ("data_items", True),
        ("providing_org_and_head", True),
        ("acquisition_method", True),
        ("pi_and_org", True),
        ("user_scope", True),
        ("data_controller", True),
        ("stop_on_request", True),
        ("how_to_request", True),
        ("foreign_provision_info", False),
        ("contact", True),
    )

    notice = models.ForeignKey(OptOutNotice, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    title_ja = models.CharField(_("title (Japanese)"), max_length=300)
    title_en = models.CharField(_("title (English)"), max_length=300, blank=True)
    purpose_and_method_ja = models.TextField(
        _("purpose and method of use (including how data are provided to other institutions)")
    )
    purpose_and_method_en = models.TextField(_("purpose and method of use (English)"), blank=True)
    data_items_ja = models.TextField(_("items of data used or provided"))
    data_items_en = models.TextField(_("items of data used or provided (English)"), blank=True)
    providing_org_and_head_ja = models.TextField(
        _("institutions providing the data and the names of their heads")
    )
    providing_org_and_head_en = models.TextField(
        _("institutions providing the data and their heads (English)"), blank=True
    )
    acquisition_method_ja = models.TextField(_("how the data provided were obtained"))
    acquisition_method_en = models.TextField(_("how the data were obtained (English)"), blank=True)
    pi_and_org_ja = models.TextField(
        _("principal investigator (lead investigator for multi-site studies) and institution")
    )
    pi_and_org_en = models.TextField(_("principal investigator and institution (English)"), blank=True)
    user_scope_ja = models.TextField(_("scope of those who use the data"))
    user_scope_en = models.TextField(_("scope of users (English)"), blank=True)
    data_controller_ja = models.TextField(_("person or body responsible for managing the data"))
    data_controller_en = models.TextField(_("person responsible for the data (English)"), blank=True)
    stop_on_request_ja = models.TextField(
        _("that use or provision stops at the request of the subject or their representative")
    )
    stop_on_request_en = models.TextField(_("stopping on request (English)"), blank=True)
    how_to_request_ja = models.TextField(_("how requests are received"))
    how_to_request_en = models.TextField(_("how requests are received (English)"), blank=True)
    foreign_provision_info_ja = models.TextField(
        _("provision to a third party abroad: country, its data protection system, the recipient's measures"),
        blank=True,
    )
    foreign_provision_info_en = models.TextField(_("provision abroad (English)"), blank=True)
    contact_ja = models.TextField(_("contact for enquiries"))
    contact_en = models.TextField(_("contact for enquiries (English)"), blank=True)
    # Optional while drafting; publishing requires it (REGULATION.md a3: start date).
    start_date = models.DateField(_("planned start of use or provision"), null=True, blank=True)
    end_date = models.DateField(_("end of the research period"), null=True, blank=True)
    change_summary = models.TextField(_("what changed in this version"), blank=True)
    # What this version says it covers; publishing it makes these the notice's datasets.
    datasets = models.ManyToManyField(
        "datasets.Dataset", related_name="+", blank=True, verbose_name=_("datasets covered")
    )
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out notice version")
        verbose_name_plural = _("opt-out notice versions")
        ordering = ["notice_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["notice", "number"], name="optout_notice_version_unique"),
            models.UniqueConstraint(
                fields=["notice"],
                condition=Q(status="draft"),
                name="optout_notice_one_draft",
            ),
            models.UniqueConstraint(
                fields=["notice"],
                condition=Q(status="published"),
                name="optout_notice_one_published",
            ),
            status_in_choices(OptOutNoticeVersionStatus, name="optout_notice_version_status_valid"),
            # A superseded version was published before it was superseded.
            when_status([OptOutNoticeVersionStatus.PUBLISHED, OptOutNoticeVersionStatus.SUPERSEDED],
                        Q(published_at__isnull=False), name="optout_notice_version_published_has_published_at"),
        ]

    def __str__(self) -> str:
        return f"{self.notice.reference} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        """A published (or superseded) version is never edited; only its status may move on."""
        if self.pk is not None and not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= {"status"}:
                stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
                if stored in {self.Status.PUBLISHED, self.Status.SUPERSEDED}:
                    raise ValidationError(
                        _("A published version is never edited; publish a new version."), code="immutable"
                    )
        super().save(*args, **kwargs)

    def text(self, item: str) -> str:
        """An item in the reader's language: English where given, Japanese otherwise."""
        if get_language() == "en":
            english = getattr(self, f"{item}_en", "")
            if english:
                return english
        return getattr(self, f"{item}_ja")

    @property
    def title(self) -> str:
        return self.text("title")


class OptOutRequestStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("opt-out request", "Open")
    AWAITING_DELETION = "awaiting_deletion", _("Awaiting deletion by data holders")
    CLOSED = "closed", pgettext_lazy("opt-out request", "Closed")


class OptOutRequest(models.Model):
    class Channel(models.TextChoices):
        COUNTER = "counter", _("In person at a counter")
        PHONE = "phone", _("Telephone")
        EMAIL = "email", _("E-mail")
        POST = "post", _("Post")
        FORM = "form", _("Written form")

    class RequesterType(models.TextChoices):
        SUBJECT = "subject", _("The subject")
        PROXY = "proxy", _("Proxy (legal representative)")
        BEREAVED = "bereaved", _("Bereaved family")

    class Extent(models.TextChoices):
        FUTURE_ONLY = "future_only", _("Stop future use only")
        DELETE_PROVIDED = "delete_provided", _("Stop future use and delete data already provided")

    class Action(models.TextChoices):
        STOP_USE = "stop_use", _("Use stopped")
        STOP_PROVISION = "stop_provision", _("Provision stopped")
        DELETE = "delete", _("Data deleted")
        CANNOT_STOP = "cannot_stop", _("Cannot be stopped")

    Status = OptOutRequestStatus

    reference = models.CharField(_("receipt number"), max_length=30, unique=True)
    society = models.ForeignKey(
        Society, on_delete=models.PROTECT, related_name="optout_requests", verbose_name=_("society")
    )
    institution = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="optout_requests",
        null=True,
        blank=True,
        verbose_name=_("institution that received the request"),
    )
    subject_pseudonym = models.CharField(_("pseudonymous subject ID"), max_length=64, db_index=True)
    received_at = models.DateTimeField(_("received at"))
    channel = models.CharField(_("how it was received"), max_length=20, choices=Channel.choices)
    requester_type = models.CharField(_("requester"), max_length=20, choices=RequesterType.choices)
    identity_verification = models.CharField(_("how identity was verified"), max_length=300)
    # Scope: every protocol, or only those listed; every modality, or only those listed.
    all_protocols = models.BooleanField(_("all research"), default=True)
    protocols = models.ManyToManyField(
        Protocol, blank=True, related_name="optout_requests", verbose_name=_("research concerned")
    )
    modalities = models.JSONField(_("modalities concerned"), default=list, blank=True)
    extent = models.CharField(_("extent"), max_length=20, choices=Extent.choices)
    action_taken = models.CharField(_("action taken"), max_length=20, choices=Action.choices)
    reason_not_stopped = models.TextField(_("reason it cannot be stopped"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN)
    # The releases that held the subject when the request was recorded (evidence of propagation).
    affected_releases = models.ManyToManyField(
        "datasets.DatasetRelease", related_name="+", blank=True, verbose_name=_("releases holding the subject")
    )
    requester_notified_at = models.DateTimeField(_("requester notified of the result at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("handled by"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out request")
        verbose_name_plural = _("opt-out requests")
        ordering = ["-received_at", "-id"]
        constraints = [status_in_choices(OptOutRequestStatus, name="optout_request_status_valid")]

    def __str__(self) -> str:
        return self.reference

    @property
    def modality_labels(self) -> list[str]:
        return [str(Modality(m).label) for m in self.modalities if m in Modality.values]


class DeletionConfirmationStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting confirmation")
    CONFIRMED = "confirmed", _("Deletion confirmed")


class DeletionConfirmation(models.Model):
    """A grant holder told of an opt-out in a release they hold, until they confirm deletion."""

    Status = DeletionConfirmationStatus

    request = models.ForeignKey(
        OptOutRequest, on_delete=models.PROTECT, related_name="deletions", verbose_name=_("opt-out request")
    )
    release = models.ForeignKey(
        "datasets.DatasetRelease", on_delete=models.PROTECT, related_name="+", verbose_name=_("release")
    )
    grant = models.ForeignKey(
        "access.Grant", on_delete=models.PROTECT, related_name="deletion_confirmations", verbose_name=_("grant")
    )
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="deletion_confirmations",
        verbose_name=_("data holder"),
    )
    file_count = models.PositiveIntegerField(_("files concerned"), default=0)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    notified_at = models.DateTimeField(_("notified at"))
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmation_note = models.TextField(_("how the data were deleted"), blank=True)

    class Meta:
        verbose_name = _("deletion confirmation")
        verbose_name_plural = _("deletion confirmations")
        ordering = ["request_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "release", "grant", "holder"], name="deletion_confirmation_unique"
            ),
            status_in_choices(DeletionConfirmationStatus, name="deletion_confirmation_status_valid"),
            when_status([DeletionConfirmationStatus.CONFIRMED], Q(confirmed_at__isnull=False),
                        name="deletion_confirmation_confirmed_has_confirmed_at"),
        ]

    def __str__(self) -> str:
        return f"{self.request.reference} / {self.holder}"
