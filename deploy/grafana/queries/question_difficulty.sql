-- Per question: how many answered it, the share answered correctly and the mean share
-- of the marks earned; the hardest first. Unanswered and manually graded responses
-- are left out.
SELECT
    question_id,
    count() AS responses,
    round(avg(verdict = 'correct'), 3) AS correct_rate,
    round(avg(score / max_score), 3) AS mean_score_ratio
FROM responses FINAL
WHERE contest_id = {contest_id:String}
    AND verdict NOT IN ('unanswered', 'pending_manual')
    AND max_score > 0
GROUP BY question_id
ORDER BY correct_rate, mean_score_ratio, question_id
