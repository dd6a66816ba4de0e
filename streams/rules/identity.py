"""Who a candidate is: one participant per email address, whatever its letter case."""

from __future__ import annotations


def email_identity(email: str) -> str:
    """The form of an address that identifies its owner. Lower case only: full case
    folding would merge different mailboxes ("straße" and "strasse")."""
    return email.strip().lower()
