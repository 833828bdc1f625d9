-- `curate status`: the newest runs with what they read.  A source read as `unchanged` (not parsed again) records
-- no counts of its own, so it takes those of its last parsed (`ok`) read.  Parameter: how many runs.
WITH parsed AS (
  SELECT source_id, read_at, rows_read, rows_rejected FROM source_reads WHERE status = 'ok'
),
reads AS (
  SELECT s.run_id, s.source_id,
         CASE WHEN s.status = 'unchanged' THEN p.rows_read ELSE s.rows_read END AS rows_read,
         CASE WHEN s.status = 'unchanged' THEN p.rows_rejected ELSE s.rows_rejected END AS rows_rejected
  FROM source_reads s
  ASOF LEFT JOIN parsed p ON s.source_id = p.source_id AND s.read_at > p.read_at
)
SELECT r.run_id, r.started_at, r.finished_at, r.outcome, r.release_id,
       count(s.source_id), coalesce(sum(s.rows_read), 0), coalesce(sum(s.rows_rejected), 0)
FROM runs r LEFT JOIN reads s USING (run_id)
GROUP BY ALL
ORDER BY r.started_at DESC, r.run_id DESC
LIMIT ?;
