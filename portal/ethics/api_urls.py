from django.urls import path

from portal.ethics import review_api as review
from portal.ethics.api import ProtocolDetail

P = "ethics/protocols/<int:pk>/"

urlpatterns = [
    path("ethics/protocols/", review.ProtocolListCreate.as_view(), name="api-ethics-protocol-list"),
    path(P, ProtocolDetail.as_view(), name="api-ethics-protocol-detail"),
    # Every action of the review pages (portal/ethics/urls.py), with the same permission check.
    path(P + "draft/", review.ProtocolDraft.as_view(), name="api-ethics-protocol-draft"),
    path(P + "attachments/", review.ProtocolAttachmentAdd.as_view(), name="api-ethics-attachment-add"),
    path(P + "submit/", review.ProtocolSubmit.as_view(), name="api-ethics-protocol-submit"),
    path(P + "revise/", review.ProtocolRevise.as_view(), name="api-ethics-protocol-revise"),
    path(P + "withdraw/", review.ProtocolWithdraw.as_view(), name="api-ethics-protocol-withdraw"),
    path(P + "conditions/answer/", review.ConditionsAnswer.as_view(), name="api-ethics-conditions-answer"),
    path(P + "conditions/verify/", review.ConditionsVerify.as_view(), name="api-ethics-conditions-verify"),
    path(P + "amendment/", review.AmendmentStart.as_view(), name="api-ethics-amendment-start"),
    path(P + "completion/", review.CompletionReport.as_view(), name="api-ethics-completion-report"),
    path(P + "periodic-reports/", review.PeriodicReport.as_view(), name="api-ethics-periodic-report"),
    path(P + "periodic-reports/<int:report_pk>/acknowledge/", review.PeriodicReportAcknowledge.as_view(),
         name="api-ethics-periodic-report-acknowledge"),
    path(P + "noncompliance/", review.NoncomplianceReport.as_view(), name="api-ethics-noncompliance-report"),
    path(P + "noncompliance/<int:report_pk>/opinion/", review.NoncomplianceOpinion.as_view(),
         name="api-ethics-noncompliance-opinion"),
    path(P + "suspend/", review.ProtocolSuspend.as_view(), name="api-ethics-protocol-suspend"),
    path(P + "resume/", review.ProtocolResume.as_view(), name="api-ethics-protocol-resume"),
    path(P + "discontinue/", review.ProtocolDiscontinue.as_view(), name="api-ethics-protocol-discontinue"),
    path(P + "return/", review.ProtocolReturn.as_view(), name="api-ethics-protocol-return"),
    path(P + "acknowledge/", review.MinorAmendmentAcknowledge.as_view(),
         name="api-ethics-minor-amendment-acknowledge"),
    path(P + "permission/", review.HeadDecide.as_view(), name="api-ethics-head-decide"),
    path(P + "review/open/", review.ReviewOpen.as_view(), name="api-ethics-review-open"),
    path(P + "review/comments/", review.ReviewComment.as_view(), name="api-ethics-review-comment"),
    path(P + "review/vote/", review.ReviewVote.as_view(), name="api-ethics-review-vote"),
    path(P + "review/attendance/", review.ReviewAttendance.as_view(), name="api-ethics-review-attendance"),
    path(P + "review/conflict/", review.ReviewConflict.as_view(), name="api-ethics-review-conflict"),
    path(P + "review/explanation/", review.ReviewExplanation.as_view(), name="api-ethics-review-explanation"),
    path(P + "review/notified/", review.DecisionNotifiedToHead.as_view(), name="api-ethics-review-notified-to-head"),
    path(P + "review/decision/", review.ReviewDecision.as_view(), name="api-ethics-review-decision"),
]
