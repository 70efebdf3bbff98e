from __future__ import annotations

from portal.ethics.quorum import Attendee, quorum_failures

FULL = [
    Attendee("natural_science", True, "male"),
    Attendee("natural_science", False, "female"),
    Attendee("humanities", False, "female"),
    Attendee("lay", True, "male"),
    Attendee("humanities", False, "male"),
]


def test_quorum_full_attendance_passes():
    assert quorum_failures(FULL) == []


def test_quorum_four_members_fails_naming_the_count():
    assert quorum_failures([*FULL[:4]]) == ["At least 5 members must attend; 4 attended."]


def test_quorum_missing_lay_member():
    attendees = [a if a.category != "lay" else Attendee("natural_science", True, "male") for a in FULL]
    assert quorum_failures(attendees) == ["No lay member attended."]


def test_quorum_missing_humanities_expert():
    attendees = [a if a.category != "humanities" else Attendee("lay", False, a.sex) for a in FULL]
    assert quorum_failures(attendees) == ["No humanities or social-science expert attended."]


def test_quorum_missing_natural_science_expert():
    attendees = [a if a.category != "natural_science" else Attendee("lay", a.is_external, a.sex) for a in FULL]
    assert quorum_failures(attendees) == ["No natural-science expert attended."]


def test_quorum_one_external_member_fails():
    attendees = [*FULL[:3], Attendee("lay", False, "male"), FULL[4]]
    assert quorum_failures(attendees) == ["At least 2 external members must attend; 1 attended."]


def test_quorum_one_sex_only_fails():
    attendees = [Attendee(a.category, a.is_external, "female") for a in FULL]
    assert quorum_failures(attendees) == ["Members of both sexes must attend."]


def test_quorum_names_every_failing_rule():
    assert quorum_failures([Attendee("lay", False, "male")]) == [
        "At least 5 members must attend; 1 attended.",
        "No natural-science expert attended.",
        "No humanities or social-science expert attended.",
        "At least 2 external members must attend; 0 attended.",
        "Members of both sexes must attend.",
    ]
