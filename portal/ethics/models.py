"""Ethics committees, research protocols with numbered versions, and their review.

A protocol (研究計画書) moves through the states in ``portal.ethics.workflow``; every move is a
service call. What a committee reviewed is always a frozen ``ProtocolVersion``: once submitted, a
version's items, fields and attachments never change, and an amendment is a new version.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.accounts.models import Organization
from portal.lib.constraints import status_in_choices
from portal.societies.models import Society


class EthicsCommittee(models.Model):
    slug = models.SlugField(_("slug"), unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    institution = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="ethics_committees",
        verbose_name=_("establishing institution"),
    )
    registration_number = models.CharField(
        _("registration number (MHLW ethics committee reporting system)"), max_length=50, blank=True
    )
    rules_ja = models.TextField(_("rules (Japanese)"), blank=True)
    rules_en = models.TextField(_("rules (English)"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ethics committee")
        verbose_name_plural = _("ethics committees")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name_ja


class CommitteeMembership(models.Model):
    class Role(models.TextChoices):
        CHAIR = "chair", _("Chair")
        MEMBER = "member", _("Member")
        SECRETARIAT = "secretariat", _("Secretariat")

    class Category(models.TextChoices):
        NATURAL_SCIENCE = "natural_science", _("Natural-science expert")
        HUMANITIES = "humanities", _("Humanities or social-science expert")
        LAY = "lay", _("Lay person")

    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    committee = models.ForeignKey(EthicsCommittee, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="committee_memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MEMBER)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, blank=True)
    is_external = models.BooleanField(_("external member"), default=False)
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices, blank=True)
    affiliation = models.CharField(_("affiliation"), max_length=200, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("committee membership")
        verbose_name_plural = _("committee memberships")
        ordering = ["committee", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["committee", "user"], name="committee_membership_unique_user"),
            # Members and the chair vote and count towards quorum, so their category and sex are
            # required; the secretariat does neither.
            models.CheckConstraint(
                condition=Q(role="secretariat") | (~Q(category="") & ~Q(sex="")),
                name="committee_membership_voter_has_category_and_sex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.committee.slug})"

    @property
    def votes(self) -> bool:
        return self.role in {self.Role.CHAIR, self.Role.MEMBER}


class ProtocolStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted (secretariat check)")
    RETURNED = "returned", _("Returned for completion")
    UNDER_REVIEW = "under_review", _("Under review")
    CONDITIONS = "conditions", _("Approved with conditions (awaiting answers)")
    CONDITIONS_ANSWERED = "conditions_answered", _("Conditions answered (awaiting the chair)")
    DEFERRED = "deferred", _("Deferred (revise and resubmit)")
    NOT_APPROVED = "not_approved", _("Not approved")
    NOT_SUBJECT = "not_subject", _("Not subject to review")
    APPROVED = "approved", _("Approved (awaiting the head's permission)")
    DENIED = "denied", _("Not permitted by the head")
    ACTIVE = "active", _("Active")
    AMENDMENT_REVIEW = "amendment_review", _("Amendment under review")
    SUSPENDED = "suspended", _("Suspended")
    # End states, each named as committees name them (取下げ, 不承認, 不許可, 中止, 終了); NOT_SUBJECT
    # (非該当) above ends a protocol too.
    WITHDRAWN = "withdrawn", _("Withdrawn")
    DISCONTINUED = "discontinued", _("Discontinued")
    COMPLETED = "completed", _("Completed")


# The states a protocol never leaves; entering one stamps ``Protocol.ended_at``.
END_STATES = frozenset({
    ProtocolStatus.WITHDRAWN,
    ProtocolStatus.NOT_APPROVED,
    ProtocolStatus.NOT_SUBJECT,
    ProtocolStatus.DENIED,
    ProtocolStatus.DISCONTINUED,
    ProtocolStatus.COMPLETED,
})


class Protocol(models.Model):
    """A research protocol and where it stands; its content lives in its versions."""

    class Kind(models.TextChoices):
        RESEARCH = "research", _("Research protocol")
        # 試料・情報の収集・提供を行う機関の研究計画書: the society database itself (the "bank").
        COLLECTION_PROVISION = "collection_provision", _("Protocol of a collection-and-provision body")

    kind = models.CharField(_("kind of protocol"), max_length=30, choices=Kind.choices, default=Kind.RESEARCH)
    number = models.CharField(_("application number"), max_length=20, unique=True, null=True, blank=True)
    committee = models.ForeignKey(
        EthicsCommittee, on_delete=models.PROTECT, related_name="protocols", verbose_name=_("ethics committee")
    )
    principal_investigator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="protocols",
        verbose_name=_("principal investigator"),
    )
    institution = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="protocols",
        verbose_name=_("research institution"),
    )
    status = models.CharField(
        _("status"), max_length=30, choices=ProtocolStatus.choices, default=ProtocolStatus.DRAFT
    )
    approved_until = models.DateField(_("approval valid until"), null=True, blank=True)
    periodic_report_due = models.DateField(_("next periodic report due"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # The completion report (終了報告) or discontinuation report (中止報告) that ended the research.
    end_report = models.TextField(_("completion or discontinuation report"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("research protocol")
        verbose_name_plural = _("research protocols")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=sorted(END_STATES), ended_at__isnull=False)
                | (~Q(status__in=sorted(END_STATES)) & Q(ended_at__isnull=True)),
                name="protocol_ended_at_iff_end_state",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["discontinued", "completed"]) | ~Q(end_report=""),
                name="protocol_ended_research_has_report",
            ),
            status_in_choices(ProtocolStatus, name="protocol_status_valid"),
        ]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"


class ProtocolVersion(models.Model):
    """One numbered version of a protocol: editable while a draft, frozen once submitted."""

    class Kind(models.TextChoices):
        INITIAL = "initial", _("New application")
        MINOR_AMENDMENT = "minor_amendment", _("Minor amendment")
        MAJOR_AMENDMENT = "major_amendment", _("Major amendment")

    class ConsentProcedure(models.TextChoices):
        WRITTEN = "written", _("Written informed consent")
        ORAL_RECORDED = "oral_recorded", _("Oral informed consent with a record")
        ELECTRONIC = "electronic", _("Electronic informed consent")
        APPROPRIATE = "appropriate", _("Appropriate consent")
        OPT_OUT = "opt_out", _("Opt-out (notice and the chance to refuse)")
        SIMPLIFIED = "simplified", _("Simplified procedure (guideline 8-8)")

    class Invasiveness(models.TextChoices):
        NONE = "none", _("None")
        MINIMAL = "minimal", _("Minimal")
        INVASIVE = "invasive", _("Invasive")

    class ReviewMode(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual review")
        CENTRAL = "central", _("Central (single) review")

    class CompanyInvolvement(models.TextChoices):
        NONE = "none", _("None")
        JOINT_RESEARCH = "joint_research", _("Joint research")
        OUTSOURCING = "outsourcing", _("Outsourcing")
        FUNDING = "funding", _("Funding")
        DATA_USE = "data_use", _("Use of the data")

    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.INITIAL)
    change_summary = models.TextField(_("summary of changes"), blank=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Workflow fields the guideline does not list but the committee needs (REGULATION.md a1).
    guideline_version = models.CharField(_("guideline version"), max_length=50, default="2023-07-01")
    invasiveness = models.CharField(
        _("invasiveness"), max_length=10, choices=Invasiveness.choices, default=Invasiveness.NONE
    )
    intervention = models.BooleanField(_("intervention"), default=False)
    uses_existing_data = models.BooleanField(_("uses existing specimens or information"), default=True)
    uses_specimens = models.BooleanField(_("uses specimens"), default=False)
    sensitive_personal_info = models.BooleanField(_("sensitive personal information"), default=True)
    multi_site = models.BooleanField(_("multi-site study"), default=False)
    review_mode = models.CharField(
        _("review mode"), max_length=20, choices=ReviewMode.choices, default=ReviewMode.INDIVIDUAL
    )
    modalities = models.JSONField(_("modalities"), default=list, blank=True)
    named_researchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        verbose_name=_("researchers named in the protocol"),
    )
    societies = models.ManyToManyField(Society, blank=True, verbose_name=_("societies involved"))
    uses_common_hash_id = models.BooleanField(_("uses the society-common hashed ID"), default=False)
    foreign_provision = models.BooleanField(_("provision to a third party abroad"), default=False)
    foreign_country = models.CharField(_("country"), max_length=100, blank=True)
    company_involvement = models.CharField(
        _("company involvement"),
        max_length=20,
        choices=CompanyInvolvement.choices,
        default=CompanyInvolvement.NONE,
    )
    consent_procedure = models.CharField(
        _("consent procedure"), max_length=20, choices=ConsentProcedure.choices, blank=True
    )
    # The four requirements for simplifying consent (guideline 8-8), each justified in writing.
    justification_minimal_risk = models.TextField(_("no invasiveness beyond minimal"), blank=True)
    justification_no_disadvantage = models.TextField(_("no disadvantage to subjects"), blank=True)
    justification_impracticable = models.TextField(
        _("impracticable or seriously harmed without simplification"), blank=True
    )
    justification_social_importance = models.TextField(_("high social importance"), blank=True)

    class Meta:
        verbose_name = _("protocol version")
        verbose_name_plural = _("protocol versions")
        ordering = ["protocol", "number"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "number"], name="protocol_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} v{self.number}"

    @property
    def is_frozen(self) -> bool:
        return self.submitted_at is not None

    @property
    def needs_simplification_justification(self) -> bool:
        return self.consent_procedure in {self.ConsentProcedure.OPT_OUT, self.ConsentProcedure.SIMPLIFIED}


class ProtocolItem(models.Model):
    """One of the 25 items of the guideline (``portal.ethics.items``) in one version."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(_("item"), max_length=40)
    body = models.TextField(_("text"), blank=True)
    not_applicable_reason = models.TextField(_("not applicable, because"), blank=True)

    class Meta:
        verbose_name = _("protocol item")
        verbose_name_plural = _("protocol items")
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="protocol_item_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.key}"


class OrganizationEntry(models.Model):
    """One row of item ② (研究の実施体制): an institution, a person there, and their roles.

    The protocol's principal investigator is the applying site's 研究責任者; a multi-site study
    also names its lead PI (研究代表者), once per version. A row may point at the person's portal
    account, so that a committee member named here is recused from the review.
    """

    class InstitutionRole(models.TextChoices):
        RESEARCH_INSTITUTION = "research_institution", _("Research institution")
        COLLABORATING = "collaborating", _("Collaborating research institution")
        COOPERATING = "cooperating", _("Cooperating institution")
        PROVIDER_ONLY = "provider_only", _("Party that only provides existing specimens or information")

    class PersonRole(models.TextChoices):
        LEAD_PI = "lead_pi", pgettext_lazy("principal investigator", "Lead principal investigator")
        SITE_PI = "site_pi", pgettext_lazy("principal investigator", "Site principal investigator")
        CO_INVESTIGATOR = "co_investigator", _("Co-investigator")
        CONTACT = "contact", _("Person responsible for providing")

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="organization_entries")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    institution_name = models.CharField(_("institution"), max_length=200)
    institution_role = models.CharField(_("kind of institution"), max_length=30, choices=InstitutionRole.choices)
    person_name = models.CharField(_("person's name"), max_length=200)
    person_role = models.CharField(_("role in the research"), max_length=20, choices=PersonRole.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True,
        verbose_name=_("portal account"),
    )

    class Meta:
        verbose_name = _("research organisation entry")
        verbose_name_plural = _("research organisation entries")
        ordering = ["version", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"], condition=Q(person_role="lead_pi"), name="organization_entry_one_lead_pi"
            ),
            # The lead PI and site PIs run the research, so they sit at a research institution.
            models.CheckConstraint(
                condition=~Q(person_role__in=["lead_pi", "site_pi"])
                | Q(institution_role__in=["research_institution", "collaborating"]),
                name="organization_entry_pi_at_research_institution",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.institution_name} / {self.person_name} ({self.person_role})"


class ProtocolAttachment(models.Model):
    class Kind(models.TextChoices):
        INFORMATION_SHEET = "information_sheet", _("Information sheet")
        CONSENT_FORM = "consent_form", _("Consent form")
        OPT_OUT_NOTICE = "opt_out_notice", _("Opt-out notice draft")
        COI = "coi", _("Conflict-of-interest declaration")
        CONTRACT = "contract", _("Contract")
        OTHER = "other", _("Other")

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="ethics/attachments/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    media_type = models.CharField(_("media type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["version", "id"]

    def __str__(self) -> str:
        return self.original_name


class Review(models.Model):
    """The committee's review of one submitted version."""

    class Type(models.TextChoices):
        NEW = "new", _("New application")
        AMENDMENT = "amendment", _("Amendment")
        CONTINUING = "continuing", pgettext_lazy("ethics review type", "Periodic report")
        COMPLETION = "completion", _("Completion report")
        SERIOUS_NONCOMPLIANCE = "serious_noncompliance", _("Report of serious non-compliance")

    class Mode(models.TextChoices):
        FULL_BOARD = "full_board", pgettext_lazy("ethics review mode", "Full-board review")
        EXPEDITED = "expedited", _("Expedited review")
        CENTRAL = "central", _("Central review")
        NOTIFICATION = "notification", _("Notification only")

    class ExpeditedGround(models.TextChoices):
        # Worded as the guideline words them: the notices print these labels.
        REVIEWED_ELSEWHERE = "reviewed_elsewhere", pgettext_lazy(
            "expedited review ground", "Multi-site study already reviewed by another committee")
        MINOR_CHANGE = "minor_change", pgettext_lazy("expedited review ground", "Minor change")
        NO_INVASION_NO_INTERVENTION = "no_invasion", pgettext_lazy(
            "expedited review ground", "No invasiveness and no intervention")
        MINIMAL_NO_INTERVENTION = "minimal_invasion", pgettext_lazy(
            "expedited review ground", "Minimal invasiveness and no intervention")

    version = models.OneToOneField(ProtocolVersion, on_delete=models.PROTECT, related_name="review")
    type = models.CharField(_("review type"), max_length=30, choices=Type.choices)
    mode = models.CharField(_("review mode"), max_length=20, choices=Mode.choices)
    expedited_ground = models.CharField(
        _("ground for expedited review"), max_length=30, choices=ExpeditedGround.choices, blank=True
    )
    meeting_at = models.DateTimeField(_("meeting date"), null=True, blank=True)
    meeting_format = models.CharField(_("meeting format"), max_length=20, blank=True)
    # 研究者の説明・質疑: researchers may explain and answer questions, but not stay for the decision.
    pi_explanation = models.TextField(_("researchers' explanation and questions"), blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        constraints = [
            models.CheckConstraint(
                condition=~Q(mode="expedited") | ~Q(expedited_ground=""),
                name="review_expedited_has_ground",
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.version}"


class ReviewAssignment(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="assignments")
    member = models.ForeignKey(CommitteeMembership, on_delete=models.PROTECT, related_name="assignments")
    recused = models.BooleanField(_("recused"), default=False)
    recusal_reason = models.CharField(_("reason for recusal"), max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "member"], name="review_assignment_unique_member"),
        ]

    def __str__(self) -> str:
        return f"{self.member} on {self.review}"


class ConflictDeclaration(models.Model):
    """委員の利益相反申告: one member's declaration for one review; a conflict recuses them."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="conflict_declarations")
    member = models.ForeignKey(CommitteeMembership, on_delete=models.PROTECT, related_name="+")
    has_conflict = models.BooleanField(_("has a conflict of interest"))
    details = models.TextField(_("details of the conflict"), blank=True)
    declared_at = models.DateTimeField(_("declared"), auto_now=True)

    class Meta:
        verbose_name = _("conflict-of-interest declaration")
        verbose_name_plural = _("conflict-of-interest declarations")
        ordering = ["review", "member"]
        constraints = [
            models.UniqueConstraint(fields=["review", "member"], name="conflict_declaration_one_per_member"),
            models.CheckConstraint(
                condition=Q(has_conflict=False) | ~Q(details=""), name="conflict_declaration_conflict_described"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member}: {'conflict' if self.has_conflict else 'none'}"


class ItemComment(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="comments")
    item_key = models.CharField(_("item"), max_length=40, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("comment"))
    for_applicant = models.BooleanField(_("visible to the applicant"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on {self.item_key or 'protocol'}"


class Vote(models.Model):
    class Choice(models.TextChoices):
        APPROVE = "approve", _("Approve")
        CONDITIONS = "conditions", _("Approve with conditions")
        DEFER = "defer", _("Defer")
        NOT_APPROVE = "not_approve", _("Not approve")
        ABSTAIN = "abstain", _("Abstain")

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(CommitteeMembership, on_delete=models.PROTECT, related_name="votes")
    choice = models.CharField(_("vote"), max_length=20, choices=Choice.choices)
    reason = models.TextField(_("reason"), blank=True)
    cast_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "member"], name="vote_one_per_member")]

    def __str__(self) -> str:
        return f"{self.member}: {self.choice}"


class Attendance(models.Model):
    """Who attended the full-board meeting at which a review was decided."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="attendance")
    member = models.ForeignKey(CommitteeMembership, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "member"], name="attendance_unique_member")]

    def __str__(self) -> str:
        return f"{self.member} at {self.review}"


class Decision(models.Model):
    """The committee's opinion (判定), recorded by the chair."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", _("Approved")
        CONDITIONS = "conditions", _("Approved with conditions")
        DEFERRED = "deferred", _("Deferred")
        NOT_APPROVED = "not_approved", _("Not approved")
        NOT_SUBJECT = "not_subject", _("Not subject to review")

    class Method(models.TextChoices):
        UNANIMOUS = "unanimous", _("Unanimous")
        MAJORITY = "majority", _("Majority")

    review = models.OneToOneField(Review, on_delete=models.PROTECT, related_name="decision")
    outcome = models.CharField(_("opinion"), max_length=20, choices=Outcome.choices)
    method = models.CharField(_("decision method"), max_length=20, choices=Method.choices)
    reasons = models.TextField(_("reasons"))
    conditions = models.TextField(_("conditions"), blank=True)
    approved_until = models.DateField(_("approval valid until"), null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)
    conditions_answer = models.TextField(_("answer to the conditions"), blank=True)
    conditions_answered_at = models.DateTimeField(null=True, blank=True)
    conditions_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    conditions_verified_at = models.DateTimeField(null=True, blank=True)
    # 研究機関の長への意見通知日: stamped when the notice is issued, or set by the secretariat.
    notified_to_head_on = models.DateField(_("opinion notified to the head on"), null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(outcome="conditions") | ~Q(conditions=""), name="decision_conditions_stated"
            ),
            models.CheckConstraint(
                condition=Q(conditions_verified_by__isnull=True, conditions_verified_at__isnull=True)
                | Q(conditions_verified_by__isnull=False, conditions_verified_at__isnull=False),
                name="decision_verified_by_and_at_paired",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.review})"


class HeadDecision(models.Model):
    """The head of the institution's permission (許可) or denial for a version."""

    version = models.OneToOneField(ProtocolVersion, on_delete=models.PROTECT, related_name="head_decision")
    permitted = models.BooleanField(_("permitted"))
    conditions = models.TextField(_("conditions"), blank=True)
    reasons = models.TextField(_("reasons"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{'permitted' if self.permitted else 'denied'}: {self.version}"


class EthicsNotice(models.Model):
    """An issued PDF notice (審査結果通知書, 許可・不許可通知書) with the hash of the bytes it proves."""

    class Kind(models.TextChoices):
        DECISION = "decision", _("Notice of the review result")
        PERMISSION = "permission", _("Notice of the head's decision")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="notices")
    version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="notices")
    file = models.FileField(_("file"), upload_to="ethics/notices/%Y/%m/")
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["protocol", "version", "kind"]
        constraints = [
            # One notice of each kind per version: issuing again returns the stored one.
            models.UniqueConstraint(fields=["version", "kind"], name="ethics_notice_unique_version_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.version}"


class ReminderSent(models.Model):
    """A reminder already issued, so that the daily run never issues the same one twice.

    Issuing puts the message in the applicant's inbox (``notification``); whether and when its
    e-mail copy went out is recorded there (``mailed_at``), only once the mail server accepted it.
    """

    class Kind(models.TextChoices):
        PERIODIC_REPORT = "periodic_report", _("Periodic report due")
        CONDITIONS_UNANSWERED = "conditions_unanswered", _("Conditions unanswered")
        APPROVAL_EXPIRING = "approval_expiring", _("Approval expiring")

    protocol = models.ForeignKey(Protocol, on_delete=models.CASCADE, related_name="reminders_sent")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    due_on = models.DateField(_("due on"))
    recipients = models.JSONField(_("recipients"), default=list)
    sent_at = models.DateTimeField(_("issued"), auto_now_add=True)
    notification = models.ForeignKey(
        "notifications.Notification", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("notification"),
    )

    class Meta:
        verbose_name = _("reminder sent")
        verbose_name_plural = _("reminders sent")
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["protocol", "kind", "due_on"], name="ethics_reminder_unique_protocol_kind_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.protocol} ({self.due_on})"

    @property
    def mailed_at(self) -> datetime | None:
        """When the mail server accepted the e-mail copy; None while it is pending or failing."""
        return self.notification.mail_sent_at if self.notification is not None else None


class NoncomplianceReport(models.Model):
    """重大な不適合の報告: filed by the principal investigator or the head, reviewed by the committee.

    A review (``Review``) belongs to one submitted version, while a report of serious
    non-compliance concerns the running research, so the committee's opinion on it is recorded
    here; its review type is ``Review.Type.SERIOUS_NONCOMPLIANCE``. The committee may also suspend
    the research through the ordinary transition.
    """

    class FiledAs(models.TextChoices):
        PRINCIPAL_INVESTIGATOR = "principal_investigator", pgettext_lazy("principal investigator", "Site principal investigator")
        HEAD = "head", _("Head of the institution")

    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="noncompliance_reports")
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    filed_as = models.CharField(_("filed as"), max_length=30, choices=FiledAs.choices)
    body = models.TextField(_("what happened and what was done"))
    filed_at = models.DateTimeField(_("filed"), auto_now_add=True)
    opinion = models.TextField(_("committee opinion"), blank=True)
    opinion_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    opinion_at = models.DateTimeField(_("opinion given"), null=True, blank=True)

    class Meta:
        verbose_name = _("report of serious non-compliance")
        verbose_name_plural = _("reports of serious non-compliance")
        ordering = ["protocol", "-filed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(opinion_by__isnull=True, opinion_at__isnull=True, opinion="")
                | (Q(opinion_by__isnull=False, opinion_at__isnull=False) & ~Q(opinion="")),
                name="noncompliance_opinion_by_at_and_text_together",
            ),
        ]

    def __str__(self) -> str:
        return f"non-compliance report on {self.protocol}"


class PeriodicReport(models.Model):
    """定期報告: the yearly report on an active protocol's progress, acknowledged by the secretariat."""

    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="periodic_reports")
    period_end = models.DateField(_("period ending"))
    subjects_enrolled = models.PositiveIntegerField(_("number of research subjects so far"))
    body = models.TextField(_("progress and problems"))
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("periodic report")
        verbose_name_plural = _("periodic reports")
        ordering = ["protocol", "-period_end"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "period_end"], name="periodic_report_unique_period"),
            models.CheckConstraint(
                condition=Q(acknowledged_by__isnull=True, acknowledged_at__isnull=True)
                | Q(acknowledged_by__isnull=False, acknowledged_at__isnull=False),
                name="periodic_report_acknowledged_by_and_at_paired",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} report to {self.period_end}"
