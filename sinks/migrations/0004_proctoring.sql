-- The latest proctoring picture of each attempt, for the admin monitoring view.
CREATE TABLE proctoring (
    attempt_id           uuid PRIMARY KEY,
    contest_id           uuid NOT NULL,
    connection           text NOT NULL,
    risk_score           integer NOT NULL,
    reasons              jsonb NOT NULL,
    blur_count           integer NOT NULL,
    blurred_seconds      double precision NOT NULL,
    disconnections       integer NOT NULL,
    disconnected_seconds double precision NOT NULL,
    ips                  jsonb NOT NULL,
    user_agents          jsonb NOT NULL,
    last_beat_at         timestamptz,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX proctoring_contest ON proctoring (contest_id, risk_score DESC);
