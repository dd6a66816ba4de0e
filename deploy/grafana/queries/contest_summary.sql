-- Attempts of a contest by how they ended, the mean score and the late saves.
-- attempt_scores is a ReplacingMergeTree: FINAL reads each attempt's latest score once.
SELECT
    count() AS attempts,
    countIf(status = 'submitted') AS submitted,
    countIf(status = 'expired') AS expired,
    countIf(status = 'invalidated') AS invalidated,
    round(avgIf(total_score / max_score * 100, status != 'invalidated' AND max_score > 0), 1) AS mean_score_percent,
    sum(late_saves) AS late_saves
FROM attempt_scores FINAL
WHERE contest_id = {contest_id:String}
