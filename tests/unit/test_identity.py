"""One participant per email address, and never two addresses as one participant."""

from __future__ import annotations

from ingest.service import attempt_id_for
from streams.rules.identity import email_identity


def test_letter_case_and_spaces_do_not_make_another_person() -> None:
    assert email_identity("  Ada@Example.ORG ") == email_identity("ada@example.org")
    assert attempt_id_for("c", "Ada@Example.org") == attempt_id_for("c", "ada@example.org")


def test_different_mailboxes_stay_different_people() -> None:
    assert attempt_id_for("c", "straße@x.de") != attempt_id_for("c", "strasse@x.de")
    assert attempt_id_for("c", "ﬁle@x.de") != attempt_id_for("c", "file@x.de")
