-- out_listings: what a release publishes. Dead listings and listings verified longer ago than
-- the limit are left out of public exports (they are shown to curators instead).
-- Expects the temp table run_params(now TIMESTAMP, max_verified_age_months INTEGER).
CREATE OR REPLACE TABLE out_listings AS
SELECT c.* EXCLUDE (member_count)
FROM core_listings c, run_params p
WHERE c.link_status <> 'dead'
  AND (c.verified_at IS NULL OR c.verified_at >= CAST(p.now AS DATE) - to_months(p.max_verified_age_months));

CREATE OR REPLACE TABLE out_withheld AS
SELECT c.id, c.name, c.sources,
       CASE WHEN c.link_status = 'dead' THEN 'links dead' ELSE 'not verified for over ' || p.max_verified_age_months || ' months' END AS reason
FROM core_listings c, run_params p
WHERE c.id NOT IN (SELECT id FROM out_listings);
