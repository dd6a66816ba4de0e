-- The stream's proctoring verdict per attempt (the proctoring_flags table, written from
-- ProctoringFlag records: FINAL keeps each attempt's latest), the riskiest first.
SELECT
    attempt_id,
    risk_score,
    arrayStringConcat(reasons, ', ') AS reasons,
    connection,
    blur_count,
    disconnections,
    server_ts AS updated_at
FROM proctoring_flags FINAL
WHERE contest_id = {contest_id:String} AND risk_score > 0
ORDER BY risk_score DESC, attempt_id
LIMIT 100
