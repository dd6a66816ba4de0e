-- Attempts whose browser lost focus or that were seen from more than one IP address,
-- from the Heartbeat events (kind: heartbeat, blur or focus).
SELECT
    attempt_id,
    uniqExactIf(event_id, kind = 'blur') AS blurs,
    uniqExactIf(event_id, kind = 'focus') AS focuses,
    uniqExactIf(event_id, kind = 'heartbeat') AS heartbeats,
    uniqExactIf(ip, ip != '') AS ip_addresses,
    max(occurred_at) AS last_seen
FROM
(
    SELECT
        attempt_id,
        event_id,
        occurred_at,
        JSONExtractString(payload, 'kind') AS kind,
        JSONExtractString(payload, 'ip') AS ip
    FROM events
    WHERE contest_id = {contest_id:String}
        AND record = 'Heartbeat'
        AND occurred_at >= {from:DateTime64(3)}
        AND occurred_at < {to:DateTime64(3)}
)
GROUP BY attempt_id
HAVING blurs > 0 OR ip_addresses > 1
ORDER BY blurs DESC, ip_addresses DESC, attempt_id
LIMIT 100
