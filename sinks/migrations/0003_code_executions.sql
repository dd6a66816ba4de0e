-- Every code run: candidates' own runs and grading runs on the hidden tests, with each
-- test's verdict, time and memory.
CREATE TABLE code_executions (
    event_id        uuid PRIMARY KEY,
    attempt_id      uuid NOT NULL,
    contest_id      uuid NOT NULL,
    question_id     uuid NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('run', 'grade')),
    answer_event_id uuid,
    language        text NOT NULL,
    verdict         text NOT NULL,
    score           double precision NOT NULL,
    max_score       double precision NOT NULL,
    compile_output  text NOT NULL,
    tests           jsonb NOT NULL,
    runner          text NOT NULL,
    grader_version  text NOT NULL,
    executed_at     timestamptz NOT NULL
);
CREATE INDEX code_executions_attempt ON code_executions (attempt_id, question_id);
