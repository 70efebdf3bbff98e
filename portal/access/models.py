"""Data access: applications (データ利用申請), their review, grants, downloads and reports.

The chain of DESIGN.md ends here: an ``AccessRequest`` screened by a society's steward and
decided by its data access committee, per society (``SocietyReview``), an agreement signed and
countersigned (``portal.agreements``), then a ``Grant`` — named users × releases × expiry — from
which short-lived signed links are issued per file (``Download`` records each use). Every grant
has a ``ProvisionRecord`` (提供記録) and owes ``UsageReport`` s (利用報告).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.accounts.models import Organization
from portal.lib.constraints import paired, status_in_choices, when_status
from portal.societies.models import Society


class Purpose(models.TextChoices):
    ACADEMIC = "academic", _("Academic research")
    PUBLIC_HEALTH = "public_health", _("Improving public health")
    PRODUCT_DEVELOPMENT = "product_development", _("Product development (including regulatory approval)")
    EDUCATION = "education", _("Education")


class LegalBasis(models.TextChoices):
    """提供の法的根拠 (REGULATION.md a5): a required choice on every application."""

    CONSENT = "consent", _("Informed consent")
    OPT_OUT = "opt_out", _("Opt-out under the ethics guideline")
    # Worded as the provision record states them (the record prints these labels).
    ACADEMIC_EXEMPTION = "academic_exemption", pgettext_lazy(
        "legal basis", "APPI academic-research exemption (Art. 27(1)(5)-(7))")
    PUBLIC_HEALTH = "public_health", pgettext_lazy("legal basis", "APPI public-health exemption (Art. 27(1)(3))")
    JOINT_USE = "joint_use", _("Joint use (共同利用)")
    OUTSOURCING = "outsourcing", _("Outsourcing (委託)")
    PSEUDONYMISED_JOINT_USE = "pseudonymised_joint_use", _("Joint use of pseudonymised information")
    ANONYMISED = "anonymised", _("Anonymised information")
    NEXT_GENERATION_ACT = "next_generation_act", _("Next-Generation Medical Infrastructure Act")


class ProcessingLevel(models.TextChoices):
    PSEUDONYMISED = "pseudonymised", _("Pseudonymised information")
    ANONYMISED = "anonymised", _("Anonymised information")
    STATISTICS = "statistics", _("Statistical information")


class Environment(models.TextChoices):
    NII_CLOUD = "nii_cloud", _("NII cloud analysis environment only (no download)")
    ON_PREMISE = "on_premise", _("Download to the applicant's own premises")
    EXTERNAL_SERVER = "external_server", _("Server outside the institution")


class SecurityLevel(models.TextChoices):
    """The level of the NBDC security guideline the applicant claims (REGULATION.md a6/a7)."""

    TYPE_I = "type_1", _("Standard level (Type I)")
    TYPE_II = "type_2", _("High level (Type II)")


class ResearcherNumberKind(models.TextChoices):
    ERAD = "erad", _("e-Rad researcher number")
    RESEARCHMAP = "researchmap", _("researchmap ID")


class RequestStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", pgettext_lazy("status", "Submitted")
    RETURNED = "returned", _("Returned for changes")
    COMMITTEE_REVIEW = "committee_review", _("Data access committee review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SIGNED = "signed", _("Agreement signed by the applicant")
    GRANTED = "granted", _("Granted")
    ENDING = "ending", _("End of use reported")
    CLOSED = "closed", _("Closed")
    REVOKED = "revoked", _("Revoked")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class AccessRequest(models.Model):
    """A data-access application (データ利用申請, REGULATION.md a6)."""

    reference = models.CharField(_("application number"), max_length=30, unique=True, null=True, blank=True)
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests",
        verbose_name=_("applicant"),
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="access_requests",
        verbose_name=_("applicant organisation"),
    )
    principal_investigator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("principal investigator"),
    )
    # 研究代表者 (REGULATION.md a6): title, researcher number and research record of the PI.
    pi_title = models.CharField(_("principal investigator's title"), max_length=200, blank=True)
    pi_researcher_number_kind = models.CharField(
        _("kind of researcher number"), max_length=20, choices=ResearcherNumberKind.choices, blank=True)
    pi_researcher_number = models.CharField(_("researcher number"), max_length=100, blank=True)
    pi_research_record = models.TextField(_("research record (related papers)"), blank=True)
    # 所属機関の長: the person who permits the study at the applicant's institution.
    head_name = models.CharField(_("name of the head of the institution"), max_length=200, blank=True)
    head_title = models.CharField(_("title of the head of the institution"), max_length=200, blank=True)
    head_email = models.EmailField(_("e-mail of the head of the institution"), blank=True)
    # The person who may sign agreements for the organisation (代表者 or delegate).
    signatory = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True,
        verbose_name=_("authorised signatory"),
    )
    title = models.CharField(_("research title"), max_length=300)
    summary = models.TextField(_("summary"), blank=True)
    purpose = models.CharField(_("purpose"), max_length=30, choices=Purpose.choices, blank=True)
    expected_outputs = models.JSONField(_("expected outputs"), default=list, blank=True)
    legal_basis = models.CharField(_("legal basis for the provision"), max_length=30,
                                   choices=LegalBasis.choices, blank=True)
    joint_research_number = models.CharField(_("joint-research agreement number"), max_length=100, blank=True)
    joint_research_parties = models.TextField(_("joint-research agreement parties"), blank=True)
    joint_research_date = models.DateField(_("joint-research agreement date"), null=True, blank=True)
    ethics_protocol = models.ForeignKey(
        "ethics.Protocol", on_delete=models.PROTECT, null=True, blank=True, related_name="access_requests",
        verbose_name=_("ethics approval in the portal"),
    )
    ethics_committee_name = models.CharField(_("ethics committee (outside the portal)"), max_length=200, blank=True)
    ethics_approval_number = models.CharField(_("approval number"), max_length=100, blank=True)
    ethics_approval_date = models.DateField(_("approval date"), null=True, blank=True)
    ethics_approval_file = models.FileField(_("approval notice"), upload_to="access/approvals/%Y/", blank=True)
    releases = models.ManyToManyField(
        "datasets.DatasetRelease", related_name="access_requests", blank=True,
        verbose_name=_("requested releases"),
    )
    wants_linkage = models.BooleanField(_("linked records across societies requested"), default=False)
    processing_level = models.CharField(_("required processing level"), max_length=20,
                                        choices=ProcessingLevel.choices, blank=True)
    environment = models.CharField(_("environment"), max_length=20, choices=Environment.choices, blank=True)
    security_level = models.CharField(_("security level claimed"), max_length=10, choices=SecurityLevel.choices,
                                      blank=True)
    foreign_access = models.BooleanField(_("access or transfer from abroad"), default=False)
    foreign_country = models.CharField(_("country"), max_length=100, blank=True)
    period_start = models.DateField(_("period from"), null=True, blank=True)
    period_end = models.DateField(_("period to"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=RequestStatus.choices,
                              default=RequestStatus.DRAFT)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("data-access application")
        verbose_name_plural = _("data-access applications")
        ordering = ["-id"]
        constraints = [status_in_choices(RequestStatus, name="access_request_status_valid")]

    def __str__(self) -> str:
        return self.reference or f"draft #{self.pk}"


class RequestUser(models.Model):
    """A named user of the data (研究代表者, 研究分担者, 受託者)."""

    class Role(models.TextChoices):
        PRINCIPAL = "principal", _("Principal investigator")
        CO_INVESTIGATOR = "co_investigator", _("Co-investigator")
        CONTRACTOR = "contractor", _("Analysis contractor")

    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="named_users")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("user"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    ethics_training = models.BooleanField(_("research-ethics training completed"), default=False)
    ethics_training_date = models.DateField(_("training date"), null=True, blank=True)

    class Meta:
        verbose_name = _("named user")
        verbose_name_plural = _("named users")
        constraints = [models.UniqueConstraint(fields=["access_request", "user"], name="request_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class SecurityAnswerStatus(models.TextChoices):
    DONE = "done", _("In place")
    PARTIAL = "partial", _("Partly in place")
    NOT_DONE = "not_done", _("Not in place")
    NOT_APPLICABLE = "not_applicable", _("Not applicable")


class SecurityAnswer(models.Model):
    """One answered item of the security self-assessment (REGULATION.md a7)."""

    Status = SecurityAnswerStatus

    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="security_answers")
    item = models.CharField(_("item"), max_length=60)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    evidence = models.TextField(_("evidence"), blank=True)
    comment = models.TextField(_("comment"), blank=True)
    answered_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("security self-assessment answer")
        verbose_name_plural = _("security self-assessment answers")
        constraints = [
            models.UniqueConstraint(fields=["access_request", "item"], name="security_answer_unique"),
            status_in_choices(SecurityAnswerStatus, name="security_answer_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.status}"


class SocietyReviewStatus(models.TextChoices):
    SCREENING = "screening", _("Steward screening")
    COMMITTEE = "committee", _("Committee review")
    APPROVED = "approved", _("Approved")
    APPROVED_WITH_CONDITIONS = "approved_with_conditions", _("Approved with conditions")
    REJECTED = "rejected", _("Rejected")


# A committee has decided these; a steward screened them first.
DECIDED_REVIEW_STATES = (SocietyReviewStatus.APPROVED, SocietyReviewStatus.APPROVED_WITH_CONDITIONS,
                         SocietyReviewStatus.REJECTED)


class SocietyReview(models.Model):
    """Each society decides for its own data: screening by its steward, then its committee."""

    Status = SocietyReviewStatus

    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="society_reviews")
    society = models.ForeignKey(Society, on_delete=models.PROTECT, related_name="access_reviews")
    status = models.CharField(_("status"), max_length=30, choices=Status.choices, default=Status.SCREENING)
    screened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    null=True, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)
    conditions = models.TextField(_("conditions"), blank=True)
    decision_reasons = models.TextField(_("reasons"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("society review")
        verbose_name_plural = _("society reviews")
        constraints = [
            models.UniqueConstraint(fields=["access_request", "society"], name="society_review_unique"),
            status_in_choices(SocietyReviewStatus, name="society_review_status_valid"),
            paired("screened_at", "screened_by", name="society_review_screening_paired"),
            paired("decided_at", "decided_by", name="society_review_decision_paired"),
            # Past screening means a steward screened it; decided means a committee member decided it.
            when_status([SocietyReviewStatus.COMMITTEE, *DECIDED_REVIEW_STATES], Q(screened_at__isnull=False),
                        name="society_review_past_screening_screened"),
            when_status(DECIDED_REVIEW_STATES, Q(decided_at__isnull=False),
                        name="society_review_decided_has_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.access_request} / {self.society.slug}: {self.status}"


class CommitteeVote(models.Model):
    class Vote(models.TextChoices):
        APPROVE = "approve", _("Approve")
        APPROVE_WITH_CONDITIONS = "approve_with_conditions", _("Approve with conditions")
        REJECT = "reject", _("Reject")
        ABSTAIN = "abstain", _("Abstain")

    review = models.ForeignKey(SocietyReview, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vote = models.CharField(_("vote"), max_length=30, choices=Vote.choices)
    comment = models.TextField(_("comment"), blank=True)
    cast_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("committee vote")
        verbose_name_plural = _("committee votes")
        constraints = [models.UniqueConstraint(fields=["review", "member"], name="committee_vote_unique")]

    def __str__(self) -> str:
        return f"{self.member}: {self.vote}"


class RequestComment(models.Model):
    """A comment on an application; ``audience`` decides who reads it."""

    class Audience(models.TextChoices):
        APPLICANT = "applicant", _("The applicant and reviewers")
        REVIEWERS = "reviewers", _("Reviewers only")
        STEWARDS = "stewards", _("Data stewards only")

    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="comments")
    society = models.ForeignKey(Society, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    audience = models.CharField(_("audience"), max_length=20, choices=Audience.choices)
    body = models.TextField(_("comment"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} ({self.audience})"


class GrantStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")
    ENDED = "ended", _("Ended")


class Grant(models.Model):
    Status = GrantStatus

    reference = models.CharField(_("grant number"), max_length=30, unique=True)
    access_request = models.ForeignKey(
        AccessRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="grants",
        verbose_name=_("data-access application"),
    )
    society = models.ForeignKey(Society, on_delete=models.PROTECT, null=True, blank=True, related_name="grants",
                                verbose_name=_("society"))
    # Why a grant is paused (what it rests on lapsed); empty when it is not.
    paused_reasons = models.JSONField(_("why it is paused"), default=list, blank=True)
    # Overdue usage report: no new links (REGULATION.md a8).
    restricted = models.BooleanField(_("restricted (no new links)"), default=False)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="grants", verbose_name=_("named users")
    )
    releases = models.ManyToManyField(
        "datasets.DatasetRelease", related_name="grants", verbose_name=_("releases")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by ``grant_revoke`` only. ``revoked_by`` may be empty on grants revoked before these fields
    # existed whose audit event named no user.
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, blank=True, verbose_name=_("revoked by"))
    revoke_reason = models.TextField(_("reason for revoking"), blank=True)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        ordering = ["-id"]
        constraints = [
            status_in_choices(GrantStatus, name="grant_status_valid"),
            models.CheckConstraint(
                condition=Q(status="revoked", revoked_at__isnull=False)
                | (~Q(status="revoked") & Q(revoked_at__isnull=True, revoked_by__isnull=True)),
                name="grant_revoked_iff_revoked_at",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.ACTIVE and self.starts_at <= now < self.expires_at


class Download(models.Model):
    """One use of a signed link: a file of a release fetched under a grant."""

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="downloads")
    file = models.ForeignKey("datasets.ReleaseFile", on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    byte_range = models.CharField(_("byte range"), max_length=100, blank=True)
    via = models.CharField(_("served by"), max_length=20)

    class Meta:
        verbose_name = _("download")
        verbose_name_plural = _("downloads")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["grant", "-started_at"], name="download_grant_recent")]

    def __str__(self) -> str:
        return f"{self.user} {self.file_id} {self.started_at:%Y-%m-%d %H:%M}"


class ProvisionRecordQuerySet(models.QuerySet):
    def delete(self):  # type: ignore[no-untyped-def]
        # Checked before Django opens its delete transaction, so a refusal leaves the caller's intact.
        if any(not record.retention_ended() for record in self):
            raise RetentionNotEnded(_("A provision record is kept until its retention period has ended."))
        return super().delete()


class Custodian(models.TextChoices):
    """保管者 of a provision record: the provider keeps it, or delegates custody to the recipient."""

    PROVIDER = "provider", _("The provider keeps the record")
    RECIPIENT = "recipient", _("The recipient keeps the record (custody delegated by the provider)")


class ProvisionRecord(models.Model):
    """提供に関する記録 (REGULATION.md a5): one per grant, for both the guideline and the APPI."""

    grant = models.OneToOneField(Grant, on_delete=models.PROTECT, related_name="provision_record")
    provided_from = models.DateField(_("provided from"))
    provided_until = models.DateField(_("provided until"))
    provider_name = models.CharField(_("provider"), max_length=300)
    provider_address = models.CharField(_("provider's address"), max_length=300, blank=True)
    provider_head = models.CharField(_("provider's representative"), max_length=200, blank=True)
    provider_responsible = models.CharField(_("provider's person responsible"), max_length=200, blank=True)
    recipient_name = models.CharField(_("recipient"), max_length=300)
    recipient_address = models.CharField(_("recipient's address"), max_length=300, blank=True)
    recipient_head = models.CharField(_("recipient's representative"), max_length=200, blank=True)
    recipient_responsible = models.CharField(_("recipient's principal investigator"), max_length=200)
    study_title = models.CharField(_("research title"), max_length=300)
    study_reference = models.CharField(_("approval number"), max_length=100, blank=True)
    subject_identification = models.TextField(_("how the subjects can be identified"))
    data_items = models.TextField(_("items of data"))
    acquisition_history = models.TextField(_("how the data were obtained"))
    consent_status = models.TextField(_("consent or opt-out procedure"))
    legal_basis = models.CharField(_("legal basis"), max_length=30, choices=LegalBasis.choices)
    processing_state = models.CharField(_("processing state"), max_length=20, choices=ProcessingLevel.choices)
    foreign_provision = models.TextField(_("provision abroad"), blank=True)
    recorded_by = models.CharField(_("recorded by"), max_length=200)
    record_medium = models.CharField(_("medium"), max_length=100, default="electronic")
    custodian = models.CharField(_("custodian"), max_length=20, choices=Custodian.choices,
                                 default=Custodian.PROVIDER)
    custodian_name = models.CharField(_("custodian's name"), max_length=300, blank=True)
    provider_keep_until = models.DateField(_("provider keeps the record until"))
    recipient_keep_until = models.DateField(_("recipient keeps the record until"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProvisionRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("provision record")
        verbose_name_plural = _("provision records")
        ordering = ["-provided_from", "-id"]

    def __str__(self) -> str:
        return f"提供記録 {self.grant_id}"

    def retention_ended(self, today=None) -> bool:  # type: ignore[no-untyped-def]
        """Both copies' retention periods are over (the recipient's is unknown until reported)."""
        today = today or timezone.localdate()
        return (
            self.provider_keep_until < today
            and self.recipient_keep_until is not None
            and self.recipient_keep_until < today
        )

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.retention_ended():
            raise RetentionNotEnded(_("A provision record is kept until its retention period has ended."))
        return super().delete(*args, **kwargs)


class RetentionNotEnded(Exception):
    """Deleting a record whose retention period has not ended."""


@receiver(pre_delete, sender=ProvisionRecord)
def _provision_record_kept(sender, instance: ProvisionRecord, **kwargs) -> None:  # type: ignore[no-untyped-def]
    # Also guards queryset deletes and cascades, which do not call Model.delete().
    if not instance.retention_ended():
        raise RetentionNotEnded(_("A provision record is kept until its retention period has ended."))


class UsageReportStatus(models.TextChoices):
    DUE = "due", _("Due")
    SUBMITTED = "submitted", pgettext_lazy("status", "Submitted")
    CONFIRMED = "confirmed", _("Confirmed by the principal investigator and the head")
    ACCEPTED = "accepted", _("Accepted")


class UsageReport(models.Model):
    """利用報告 (REGULATION.md a8): yearly, at the end of use, or when the research stops early
    (中止報告), the last two with a deletion certificate. A submitted report is confirmed by the
    principal investigator and by the head of the institution before the society accepts it."""

    class Kind(models.TextChoices):
        ANNUAL = "annual", _("Annual usage report")
        END_OF_USE = "end_of_use", _("End-of-use report")
        STOP = "stop", _("Stop report")

    Status = UsageReportStatus

    FINAL_KINDS = (Kind.END_OF_USE, Kind.STOP)

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="usage_reports")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DUE)
    due_on = models.DateField(_("due on"))
    period_from = models.DateField(_("period from"))
    period_to = models.DateField(_("period to"))
    progress = models.TextField(_("progress"), blank=True)
    deviations = models.TextField(_("non-compliance, deviations or leaks"), blank=True)
    user_changes = models.TextField(_("users added or removed"), blank=True)
    security_recheck = models.TextField(_("security measures re-checked"), blank=True)
    outputs = models.JSONField(_("outputs"), default=list, blank=True)
    results_summary = models.TextField(_("summary of results"), blank=True)
    deletion_date = models.DateField(_("data deleted on"), null=True, blank=True)
    deletion_method = models.TextField(_("how the data were deleted"), blank=True)
    deletion_certificate = models.FileField(_("deletion certificate"), upload_to="access/deletion/%Y/",
                                            blank=True)
    deletion_certificate_sha256 = models.CharField(max_length=64, blank=True)
    stop_reason = models.TextField(_("why the research stopped"), blank=True)
    registry_number = models.CharField(_("registration of results (jRCT or UMIN-CTR number)"), max_length=20,
                                       blank=True)
    retained_items = models.TextField(_("what is kept after the end"), blank=True)
    retention_reason = models.TextField(_("why it is kept"), blank=True)
    retained_until = models.DateField(_("kept until"), null=True, blank=True)
    pi_confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                        null=True, blank=True, verbose_name=_("confirmed by the principal investigator"))
    pi_confirmed_at = models.DateTimeField(_("principal investigator confirmed at"), null=True, blank=True)
    head_confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                          null=True, blank=True, verbose_name=_("confirmed by the head"))
    head_confirmed_at = models.DateTimeField(_("head confirmed at"), null=True, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(_("reminders sent"), default=0)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    institution_notified_at = models.DateTimeField(_("institution told at"), null=True, blank=True)

    class Meta:
        verbose_name = _("usage report")
        verbose_name_plural = _("usage reports")
        ordering = ["due_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["grant", "kind", "period_to"], name="usage_report_unique_period"),
            models.CheckConstraint(
                condition=Q(submitted_at__isnull=True, submitted_by__isnull=True)
                | Q(submitted_at__isnull=False, submitted_by__isnull=False),
                name="usage_report_submission_paired",
            ),
            models.CheckConstraint(
                condition=Q(pi_confirmed_at__isnull=True, pi_confirmed_by__isnull=True)
                | Q(pi_confirmed_at__isnull=False, pi_confirmed_by__isnull=False),
                name="usage_report_pi_confirmation_paired",
            ),
            models.CheckConstraint(
                condition=Q(head_confirmed_at__isnull=True, head_confirmed_by__isnull=True)
                | Q(head_confirmed_at__isnull=False, head_confirmed_by__isnull=False),
                name="usage_report_head_confirmation_paired",
            ),
            # Confirmed means both the principal investigator and the head have confirmed.
            models.CheckConstraint(
                condition=~Q(status="confirmed")
                | Q(pi_confirmed_at__isnull=False, head_confirmed_at__isnull=False),
                name="usage_report_confirmed_by_both",
            ),
            status_in_choices(UsageReportStatus, name="usage_report_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.due_on}"


class GrantAmendmentStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Awaiting the society's decision")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    RECORDED = "recorded", _("Recorded (users removed)")


class GrantAmendment(models.Model):
    """延長・変更申請: the applicant asks to extend the period of use or to change the named users.

    Removing users takes effect at once (``status`` "recorded" when nothing else was asked);
    an extension or added users wait for a steward of the grant's society.
    """

    Status = GrantAmendmentStatus

    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="amendments", verbose_name=_("grant"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("requested by"))
    new_expires_on = models.DateField(_("new last day of use"), null=True, blank=True)
    previous_expires_at = models.DateTimeField(_("expiry before the change"))
    # [{"user": id, "email": ..., "role": ..., "ethics_training": bool, "ethics_training_date": "YYYY-MM-DD"}]
    users_to_add = models.JSONField(_("users to add"), default=list, blank=True)
    users_removed = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True,
                                           verbose_name=_("users removed"))
    reason = models.TextField(_("reason"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, blank=True, verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reasons = models.TextField(_("reasons for the decision"), blank=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)

    class Meta:
        verbose_name = _("extension or change of users")
        verbose_name_plural = _("extensions and changes of users")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_at__isnull=True, decided_by__isnull=True)
                | Q(decided_at__isnull=False, decided_by__isnull=False),
                name="grant_amendment_decision_paired",
            ),
            status_in_choices(GrantAmendmentStatus, name="grant_amendment_status_valid"),
            when_status([GrantAmendmentStatus.APPROVED, GrantAmendmentStatus.REJECTED], Q(decided_at__isnull=False),
                        name="grant_amendment_decided_has_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.grant} #{self.pk}"

    @property
    def needs_decision(self) -> bool:
        return bool(self.new_expires_on or self.users_to_add)


class LapseWarning(models.Model):
    """A warning sent before a grant, or what it rests on, lapses (``PORTAL_LAPSE_WARNING_DAYS``).

    The row is inserted before the message is queued, under a unique constraint on (grant, what
    lapses, its date, days before): a rerun, or two beat workers at once, never send one twice. A
    new date (an extension approved, an approval renewed, the security re-attested, a named user's
    training renewed) starts a new series of warnings.
    """

    class Kind(models.TextChoices):
        GRANT_EXPIRY = "grant_expiry", _("The grant expires")
        PROTOCOL_APPROVAL = "protocol_approval", _("An ethics approval period ends")
        SECURITY_REATTESTATION = "security_reattestation", _("The yearly security re-attestation lapses")
        ETHICS_TRAINING = "ethics_training", _("A named user's research-ethics training lapses")

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="lapse_warnings",
                              verbose_name=_("grant"))
    kind = models.CharField(_("what lapses"), max_length=30, choices=Kind.choices)
    # Which one, where a grant rests on several of a kind (a protocol's number, a named user's e-mail);
    # empty otherwise.
    subject = models.CharField(_("which"), max_length=100, blank=True)
    lapses_on = models.DateField(_("lapses on"))
    days_before = models.PositiveSmallIntegerField(_("days before"))
    recipients = models.JSONField(_("recipients"), default=list)
    sent_at = models.DateTimeField(_("sent"), auto_now_add=True)

    class Meta:
        verbose_name = _("lapse warning")
        verbose_name_plural = _("lapse warnings")
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["grant", "kind", "subject", "lapses_on", "days_before"],
                                    name="lapse_warning_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.grant} {self.kind} {self.lapses_on} (-{self.days_before})"
