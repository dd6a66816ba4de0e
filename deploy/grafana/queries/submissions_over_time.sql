-- Attempts finished per time bucket: submitted by the candidate, or expired by the
-- stream at the deadline. Events may be stored twice before a merge: count event ids.
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({bucket_seconds:UInt32})) AS time,
    uniqExactIf(event_id, record = 'AttemptSubmitted') AS submitted,
    uniqExactIf(event_id, record = 'AttemptExpired') AS expired
FROM events
WHERE contest_id = {contest_id:String}
    AND record IN ('AttemptSubmitted', 'AttemptExpired')
    AND occurred_at >= {from:DateTime64(3)}
    AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
