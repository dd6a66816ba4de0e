-- Tab switches per time bucket: blur events, and how many attempts had one.
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({bucket_seconds:UInt32})) AS time,
    uniqExact(event_id) AS blurs,
    uniqExact(attempt_id) AS attempts
FROM events
WHERE contest_id = {contest_id:String}
    AND record = 'Heartbeat'
    AND JSONExtractString(payload, 'kind') = 'blur'
    AND occurred_at >= {from:DateTime64(3)}
    AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
