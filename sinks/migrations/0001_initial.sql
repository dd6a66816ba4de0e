-- Postgres is the source of truth for results. Tables written by the sinks carry no
-- foreign keys: an event about an unknown contest must not fail a whole batch.

CREATE TABLE admin_users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'grader')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contests (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    start_at         timestamptz NOT NULL,
    end_at           timestamptz NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
    status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    published_at     timestamptz,
    revision         integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (end_at > start_at)
);

CREATE TABLE questions (
    id              uuid PRIMARY KEY,
    contest_id      uuid NOT NULL REFERENCES contests (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('mcq_single', 'mcq_multi', 'coding', 'subjective')),
    prompt          text NOT NULL,
    options         jsonb NOT NULL DEFAULT '[]',
    correct_options jsonb NOT NULL DEFAULT '[]',
    max_marks       double precision NOT NULL CHECK (max_marks > 0),
    negative_marks  double precision NOT NULL DEFAULT 0 CHECK (negative_marks >= 0),
    partial_credit  boolean NOT NULL DEFAULT false,
    position        integer NOT NULL DEFAULT 0,
    revision        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX questions_contest ON questions (contest_id, position);

CREATE TABLE participants (
    id         uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attempts (
    id               uuid PRIMARY KEY,
    contest_id       uuid NOT NULL,
    participant_id   uuid NOT NULL,
    participant_email text NOT NULL,
    participant_name text NOT NULL,
    started_at       timestamptz NOT NULL,
    deadline         timestamptz,
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'active',
    total_score      double precision,
    max_score        double precision,
    score_changed_at timestamptz,
    counted_saves    integer,
    late_saves       integer,
    grader_version   text,
    graded_at        timestamptz
);
CREATE INDEX attempts_contest ON attempts (contest_id);

-- Every save the stream decided on: counted, superseded, late or after submit.
CREATE TABLE answer_saves (
    event_id         uuid PRIMARY KEY,
    attempt_id       uuid NOT NULL,
    contest_id       uuid NOT NULL,
    question_id      uuid NOT NULL,
    client_seq       bigint NOT NULL,
    status           text NOT NULL,
    selected_options jsonb,
    text             text,
    language         text,
    server_ts        timestamptz NOT NULL
);
CREATE INDEX answer_saves_attempt ON answer_saves (attempt_id, question_id);

-- The current grade of each response; a regrade replaces it.
CREATE TABLE responses (
    attempt_id       uuid NOT NULL,
    question_id      uuid NOT NULL,
    contest_id       uuid NOT NULL,
    verdict          text NOT NULL,
    score            double precision NOT NULL,
    max_score        double precision NOT NULL,
    client_seq       bigint,
    selected_options jsonb,
    text             text,
    saved_at         timestamptz,
    grader_version   text NOT NULL,
    graded_at        timestamptz NOT NULL,
    grading_event_id uuid NOT NULL,
    PRIMARY KEY (attempt_id, question_id)
);
CREATE INDEX responses_contest ON responses (contest_id);

-- Every grading ever done, for audit.
CREATE TABLE grading_results (
    event_id       uuid PRIMARY KEY,
    attempt_id     uuid NOT NULL,
    question_id    uuid NOT NULL,
    verdict        text NOT NULL,
    score          double precision NOT NULL,
    max_score      double precision NOT NULL,
    grader_version text NOT NULL,
    graded_at      timestamptz NOT NULL
);

-- Rank is computed on read (see api), in the order of streams.rules.ranking.
CREATE TABLE leaderboard (
    contest_id       uuid NOT NULL,
    attempt_id       uuid NOT NULL,
    participant_name text NOT NULL,
    total_score      double precision NOT NULL,
    score_changed_at timestamptz NOT NULL,
    started_at       timestamptz NOT NULL,
    invalidated      boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (contest_id, attempt_id)
);
CREATE INDEX leaderboard_order ON leaderboard
    (contest_id, total_score DESC, score_changed_at, started_at);
