-- Link health tables (CONTRACT section 6), kept between runs. Created by curate/warehouse.py:connect.

-- Every check of every URL ever made: the history each link's and each listing's status is derived from
-- (warehouse/sql/link_health.sql). A URL is checked once per run however many listings share it.
CREATE SEQUENCE IF NOT EXISTS link_check_seq;
CREATE TABLE IF NOT EXISTS link_checks (
  seq BIGINT NOT NULL DEFAULT nextval('link_check_seq'),
  run_id VARCHAR NOT NULL,
  url VARCHAR NOT NULL,
  checked_at TIMESTAMP NOT NULL,
  result VARCHAR NOT NULL,          -- ok, redirect, broken, blocked, error, skipped (skipped never changes a status)
  http_status INTEGER,              -- the final answer's status, after redirects
  final_url VARCHAR,                -- where the redirects led
  suggested_url VARCHAR,            -- where the leading permanent redirects lead: proposed to curators
  redirects STRUCT(status INTEGER, url VARCHAR)[],  -- the chain: each status and the URL that answered it
  method VARCHAR,                   -- HEAD, or GET when HEAD was refused or unreliable
  error VARCHAR,                    -- plain words: why it is not ok
  elapsed_ms INTEGER
);
