-- Finished attempts (invalidated ones left out) by score band of 10 %; every band is
-- listed, empty ones with 0. A full score falls in the top band.
SELECT
    concat(leftPad(toString(band * 10), 2, '0'), '-', toString(band * 10 + 10), '%') AS score,
    attempts
FROM
(
    SELECT
        least(toUInt8(floor(total_score / max_score * 10)), 9) AS band,
        count() AS attempts
    FROM attempt_scores FINAL
    WHERE contest_id = {contest_id:String} AND status != 'invalidated' AND max_score > 0
    GROUP BY band
    ORDER BY band WITH FILL FROM 0 TO 10
)
ORDER BY score
