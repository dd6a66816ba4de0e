-- The dashboard's contest picker: contests with events, the most recent first.
SELECT contest_id
FROM events
WHERE contest_id != ''
GROUP BY contest_id
ORDER BY max(occurred_at) DESC
LIMIT 100
