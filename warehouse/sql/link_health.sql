-- link_health: each URL's status from its check history, then each listing's; written into core_listings.
-- Runs after core_listings.sql, before out_listings.sql. Expects the temp table
-- link_params(now TIMESTAMP, max_age_hours DOUBLE, dead_after INTEGER) and, when there was a previous run,
-- the temp table prev_link_status(id, link_status) taken before core_listings was rebuilt.

-- 1. The checks that judged a URL, newest first. A skipped check (offline, private address) never changes a status.
CREATE OR REPLACE TEMP TABLE judged AS
SELECT url, seq, checked_at, result, http_status, final_url, suggested_url, error,
       row_number() OVER (PARTITION BY url ORDER BY checked_at DESC, seq DESC) AS recency
FROM link_checks
WHERE result <> 'skipped';

-- 2. A URL is alive after an ok or redirect, dead after dead_after broken results in a row, degraded otherwise
--    (broken fewer times, blocked or error).
CREATE OR REPLACE TABLE link_url_health AS
WITH streak AS (
  SELECT url, coalesce(min(recency) FILTER (WHERE result <> 'broken'), max(recency) + 1) - 1 AS broken_streak,
         min(checked_at) FILTER (WHERE result = 'broken') AS first_broken_at
  FROM judged GROUP BY url
)
SELECT j.url,
       CASE WHEN j.result IN ('ok', 'redirect') THEN 'alive'
            WHEN s.broken_streak >= p.dead_after THEN 'dead'
            ELSE 'degraded' END AS status,
       j.result AS last_result, j.checked_at AS last_checked_at, j.http_status, j.final_url, j.suggested_url, j.error,
       s.broken_streak
FROM judged j JOIN streak s USING (url), link_params p
WHERE j.recency = 1;

-- 3. A listing is dead when every one of its links (url, chat_url) is dead, alive when every judged link is
--    alive, unknown when none was judged, degraded otherwise. link_checked_at: its links' last judged check.
CREATE OR REPLACE TEMP TABLE listing_link_health AS
WITH links AS (
  SELECT id, unnest([url, chat_url]) AS link FROM core_listings
)
SELECT l.id,
       CASE WHEN count(h.url) = 0 THEN 'unknown'
            WHEN count(*) FILTER (WHERE h.status = 'dead') = count(*) THEN 'dead'
            WHEN count(*) FILTER (WHERE h.status = 'alive') = count(h.url) THEN 'alive'
            ELSE 'degraded' END AS link_status,
       max(h.last_checked_at) AS link_checked_at
FROM links l LEFT JOIN link_url_health h ON h.url = l.link
WHERE l.link IS NOT NULL
GROUP BY l.id;

UPDATE core_listings SET link_status = h.link_status, link_checked_at = h.link_checked_at
FROM listing_link_health h
WHERE core_listings.id = h.id;

-- 4. What changed since the last run, for the curators' link report and the run's summary.
CREATE OR REPLACE TABLE link_changes AS
SELECT c.id, c.name, coalesce(p.link_status, 'new') AS before, c.link_status AS after
FROM core_listings c LEFT JOIN prev_link_status p USING (id)
WHERE p.link_status IS DISTINCT FROM c.link_status AND NOT (p.link_status IS NULL AND c.link_status = 'unknown');
