-- links_due: the distinct URLs of the staged listings (url and chat_url) that need a check this run,
-- and those answered from the cache (a check that judged them, i.e. not skipped, less than max_age_hours ago).
-- Expects the temp table link_params(now TIMESTAMP, max_age_hours DOUBLE, dead_after INTEGER).
CREATE OR REPLACE TEMP TABLE links_due AS
WITH urls AS (
  SELECT url FROM stg_listings WHERE url IS NOT NULL
  UNION
  SELECT chat_url FROM stg_listings WHERE chat_url IS NOT NULL
), fresh AS (
  SELECT DISTINCT c.url
  FROM link_checks c, link_params p
  WHERE c.result <> 'skipped' AND c.checked_at > p.now - to_microseconds(CAST(p.max_age_hours * 3600e6 AS BIGINT))
)
SELECT u.url, f.url IS NOT NULL AS cached
FROM urls u LEFT JOIN fresh f USING (url)
ORDER BY u.url;
