"""Admin accounts, created from the command line (`elevate` CLI), not over HTTP."""

from __future__ import annotations

import logging
import uuid

import psycopg

from api.security import ROLES, hash_password

log = logging.getLogger(__name__)


def create_admin(dsn: str, username: str, password: str, role: str = "admin") -> None:
    """Create the admin user, or give an existing one this password and role.

    Repeating the command is safe: it leaves exactly one user with the given
    credentials, which is also how a forgotten password is reset.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not username.strip() or "\x00" in username:
        raise ValueError("username must be non-empty text")
    if not password:
        raise ValueError("password must not be empty")
    password_hash = hash_password(password)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """
            INSERT INTO admin_users (id, username, password_hash, role)
            VALUES (%(id)s, %(username)s, %(password_hash)s, %(role)s)
            ON CONFLICT (username) DO UPDATE
                SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role
            RETURNING (xmax = 0) AS inserted
            """,
            {
                "id": uuid.uuid4(),
                "username": username,
                "password_hash": password_hash,
                "role": role,
            },
        ).fetchone()
    created = bool(row and row[0])
    log.info("%s admin user %s with role %s", "created" if created else "updated", username, role)
