-- The admin back office: refresh tokens, kind-specific question data, and what admins
-- and graders did to attempts (extensions, invalidations, manual grades). These tables
-- are written by the admin API only, never by the sinks.

-- Refresh tokens rotate: each works once, and its successor belongs to the same family
-- (one sign-in). Presenting a used token revokes the whole family. Only the sha256 of a
-- token is stored, so a leaked table cannot be replayed.
CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    admin_id   uuid NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    family_id  uuid NOT NULL,
    parent_id  uuid REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_admin ON refresh_tokens (admin_id);

-- Subjective questions carry a rubric for graders; coding questions keep their
-- statement, languages, limits, tests and comparison mode in `details`. Questions from
-- a bulk upload keep the file's `external_id`, from which their id was derived.
ALTER TABLE questions
    ADD COLUMN rubric      text,
    ADD COLUMN details     jsonb,
    ADD COLUMN external_id text;

-- The participants list counts each one's attempts.
CREATE INDEX attempts_participant ON attempts (participant_id);

-- Extra time granted to an attempt; the id is the TimeExtended record's event_id. The
-- API adds these up to compute the deadline of an attempt that is still running.
CREATE TABLE attempt_extensions (
    id            uuid PRIMARY KEY,
    attempt_id    uuid NOT NULL,
    contest_id    uuid NOT NULL,
    extra_seconds integer NOT NULL CHECK (extra_seconds > 0),
    reason        text NOT NULL,
    admin         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempt_extensions_attempt ON attempt_extensions (attempt_id);

-- One invalidation per attempt; the id is the AttemptInvalidated record's event_id.
CREATE TABLE attempt_invalidations (
    attempt_id uuid PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    contest_id uuid NOT NULL,
    reason     text NOT NULL,
    admin      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A response's stable id for the API: uuid5(namespace, "<attempt_id>/<question_id>"),
-- the namespace being api.routes.grading.RESPONSE_NAMESPACE. Generated here, so the sinks
-- need not know about it and a grader's POST finds its response by index.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
ALTER TABLE responses ADD COLUMN response_id uuid GENERATED ALWAYS AS (
    uuid_generate_v5(
        'f3b7c0a2-5d1e-4c8b-9a6f-2e4d8c1b7a90'::uuid,
        attempt_id::text || '/' || question_id::text
    )
) STORED;
CREATE UNIQUE INDEX responses_response_id ON responses (response_id);
CREATE INDEX responses_pending ON responses (verdict) WHERE verdict = 'pending_manual';

-- Every grade a grader gave, for audit; the id is the ManualGradeGiven record's
-- event_id. The stream keeps the latest by time; this keeps them all.
CREATE TABLE manual_grades (
    id          uuid PRIMARY KEY,
    response_id uuid NOT NULL,
    attempt_id  uuid NOT NULL,
    question_id uuid NOT NULL,
    contest_id  uuid NOT NULL,
    score       double precision NOT NULL,
    comment     text NOT NULL DEFAULT '',
    grader      text NOT NULL,
    grader_id   uuid,
    graded_at   timestamptz NOT NULL
);
CREATE INDEX manual_grades_response ON manual_grades (attempt_id, question_id);
