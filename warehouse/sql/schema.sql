-- Tables that persist between runs. stg_listings and core_listings are created from the
-- field registry (curate/warehouse.py); raw_<source> tables are created per source.

-- Every version of every source ever read, content-addressed: nothing a curator drops is lost.
CREATE TABLE IF NOT EXISTS source_files (
  sha256 VARCHAR PRIMARY KEY,
  bytes BLOB NOT NULL,
  size BIGINT NOT NULL,
  first_source_id VARCHAR NOT NULL,
  first_path VARCHAR NOT NULL,
  first_read_at TIMESTAMP NOT NULL
);

-- Which version of which source each run read, and how that went.
CREATE TABLE IF NOT EXISTS source_reads (
  run_id VARCHAR NOT NULL,
  source_id VARCHAR NOT NULL,
  path VARCHAR NOT NULL,
  sha256 VARCHAR,
  read_at TIMESTAMP NOT NULL,
  status VARCHAR NOT NULL,          -- ok, unchanged (not parsed again), kept (unusable now: last good rows kept)
  rows_read INTEGER,
  rows_accepted INTEGER,
  rows_rejected INTEGER,
  fingerprint VARCHAR,              -- what the parse depended on (curate/ingest.py); equal next time: not parsed again
  errors INTEGER,
  warnings INTEGER
);

-- Every download of a URL source, with its validators for the next conditional GET.
CREATE TABLE IF NOT EXISTS source_fetches (
  run_id VARCHAR NOT NULL,
  source_id VARCHAR NOT NULL,
  url VARCHAR NOT NULL,
  fetched_at TIMESTAMP NOT NULL,
  outcome VARCHAR NOT NULL,         -- new, not_modified, failed
  http_status INTEGER,
  etag VARCHAR,
  last_modified VARCHAR,
  content_type VARCHAR,
  final_url VARCHAR,
  sha256 VARCHAR,
  error VARCHAR,
  elapsed_ms INTEGER
);

-- Problems of the latest run of each source (file-level ones have row NULL).
CREATE TABLE IF NOT EXISTS problems (
  run_id VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  file VARCHAR NOT NULL,
  row INTEGER,
  "column" VARCHAR,
  value VARCHAR,
  severity VARCHAR NOT NULL,
  rule VARCHAR NOT NULL,
  message VARCHAR NOT NULL,
  fix VARCHAR NOT NULL
);

-- Which listing id each input row (source_id/record_id) belonged to after the last run, and the row's print
-- then (core_listings.sql: a hash of its staged columns).
CREATE TABLE IF NOT EXISTS listing_members (
  row_key VARCHAR NOT NULL,
  listing_id VARCHAR NOT NULL,
  print UBIGINT
);
-- A warehouse from before prints: its rows have none, and their listings are merged again once.
ALTER TABLE listing_members ADD COLUMN IF NOT EXISTS print UBIGINT;
-- The core_listings.sql whose build last ended (its sha256): only its listings can be kept as they were.
CREATE TABLE IF NOT EXISTS core_build (sql_sha256 VARCHAR NOT NULL);

-- Content hash and dates of every listing id ever published.
CREATE TABLE IF NOT EXISTS listing_state (
  id VARCHAR PRIMARY KEY,
  content_hash VARCHAR NOT NULL,
  first_seen TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
  run_id VARCHAR PRIMARY KEY,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  outcome VARCHAR,
  release_id VARCHAR
);

-- The release the last run published (curate.export.remember_release): its id, its listings.json's sha256, the code
-- that built it and DuckDB's version. Its listings are out_listings while listed, else published_listings: the
-- next build renames out_listings so before it makes the table again (warehouse.keep_published_listings). The
-- next run compares its listings with these (compared_in_warehouse) instead of reading that release.
CREATE TABLE IF NOT EXISTS published_release (
  release_id VARCHAR NOT NULL,
  listings_sha256 VARCHAR NOT NULL,
  builder VARCHAR NOT NULL,
  duckdb VARCHAR NOT NULL
);
ALTER TABLE published_release ADD COLUMN IF NOT EXISTS listed BOOLEAN DEFAULT false;
