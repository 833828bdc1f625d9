-- core_listings: staged rows merged into one listing per service, with stable ids.
-- Expects the temp table run_params(now TIMESTAMP), the table stg_listings and the temp table
-- er_clusters (entity resolution: which staged rows are one service).  Run by curate/warehouse.py
-- (build_core) a section at a time: prints, then keep (when the last build was by this same file
-- and ended: the table core_build) or keep_nothing, then build, then patch (after keep) or replace.

-- name: prints
-- 1-2. Which rows are one service: er_clusters(row_key, cluster), from entity resolution
--      (er_rows.sql -> er_pairs.sql -> er_clusters.sql, run by curate/resolve.py).
--      Each staged row's print: a 64-bit hash of its columns, kept beside its listing in listing_members
--      (all but the digest of the file it came from: a file's other rows stay as they were when one changes).
CREATE OR REPLACE TEMP TABLE row_prints AS
SELECT row_key, hash(s) AS print FROM (SELECT * EXCLUDE (source_sha256) FROM stg_listings) s;

-- name: keep
--      A cluster whose rows are exactly the members of one listing of the last build, each row unchanged
--      (the same print), is that listing again: steps 3-6 would give it the same id, fields and dates
--      (no other cluster holds a member of it to claim its id), so its row of core_listings is kept as it
--      was (section patch: the table is edited in place, not copied).  A removed member, a new one or a
--      changed one sends the cluster through steps 3-6.
CREATE OR REPLACE TEMP TABLE kept_clusters AS
WITH whole AS (
  SELECT c.cluster, min(m.listing_id) AS id, count(*) AS n
  FROM er_clusters c JOIN row_prints r USING (row_key)
  LEFT JOIN listing_members m ON m.row_key = c.row_key AND m.print = r.print
  GROUP BY c.cluster
  HAVING count(m.listing_id) = count(*) AND min(m.listing_id) = max(m.listing_id)
)
SELECT w.cluster, w.id FROM whole w JOIN core_listings k ON k.id = w.id AND k.member_count = w.n;

-- name: keep_nothing
CREATE OR REPLACE TEMP TABLE kept_clusters (cluster VARCHAR, id VARCHAR);

-- name: build
CREATE OR REPLACE TEMP TABLE clusters AS
SELECT e.row_key, e.cluster FROM er_clusters e ANTI JOIN kept_clusters k USING (cluster);

-- 3. Survivorship order inside a cluster: source priority, most recently verified, most complete.
CREATE OR REPLACE TEMP TABLE members AS
SELECT s.*, c.cluster,
       row_number() OVER (PARTITION BY c.cluster
                          ORDER BY s.priority DESC, s.verified_at DESC NULLS LAST, s.completeness DESC,
                                   s.source_id, s.row) AS member_rank
FROM stg_listings s JOIN clusters c USING (row_key);

-- 4. Stable ids, so that downstream sites can bookmark and diff:
--    - a previous id stays with the cluster holding most of its former members (ties: the cluster
--      with the smallest row_key): a listing that gains or loses members keeps its id, and when a
--      listing splits, the bigger part keeps it;
--    - a cluster that wins several previous ids (listings that merged) keeps the oldest (first_seen);
--      the others are retired, never reused;
--    - a cluster with none gets lst_ + 12 hex of sha256 of its smallest row_key (the same in a fresh
--      warehouse), or, when that id is or was ever held by another listing (the part that split off
--      from a listing whose id came from the same row), of "members|" and all its row_keys.
CREATE OR REPLACE TEMP TABLE claims AS
SELECT m.cluster, p.listing_id, count(*) AS n
FROM members m JOIN listing_members p USING (row_key)
GROUP BY m.cluster, p.listing_id;

CREATE OR REPLACE TEMP TABLE cluster_ids AS
WITH won AS (
  SELECT cluster, listing_id FROM claims
  QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY n DESC, cluster) = 1
), oldest AS (
  SELECT w.cluster, w.listing_id FROM won w LEFT JOIN listing_state st ON st.id = w.listing_id
  QUALIFY row_number() OVER (PARTITION BY w.cluster ORDER BY st.first_seen NULLS LAST, w.listing_id) = 1
), fresh AS (
  SELECT cluster, 'lst_' || substr(sha256(cluster), 1, 12) AS plain,
         'lst_' || substr(sha256('members|' || string_agg(row_key, '|' ORDER BY row_key)), 1, 12) AS by_members
  FROM clusters GROUP BY cluster
)
SELECT f.cluster,
       CASE WHEN o.listing_id IS NOT NULL THEN o.listing_id
            WHEN f.plain IN (SELECT listing_id FROM oldest) OR f.plain IN (SELECT id FROM listing_state) THEN f.by_members
            ELSE f.plain END AS id
FROM fresh f LEFT JOIN oldest o USING (cluster);

-- 5. One row per listing: each field from the best member that has it, lists united.  A listing of one row
--    (about half of them) is that row: it is not grouped (at 1M rows, 4.1 s against 6.7 s for grouping them all).
--    Each cluster's size is counted apart and joined (a window counting it took a third longer at 1M rows).
CREATE OR REPLACE TEMP TABLE merged AS
WITH sizes AS (SELECT cluster, count(*) AS n FROM members GROUP BY cluster),
sized AS MATERIALIZED (
  SELECT m.*, ci.id, z.n FROM members m JOIN cluster_ids ci USING (cluster) JOIN sizes z USING (cluster)
)
SELECT id, name, kind, description, url, phone, sms, chat_url, email,
  list_sort(list_distinct(flatten([areas]))) AS areas,
  list_sort(list_distinct(flatten([languages]))) AS languages,
  list_sort(list_distinct(flatten([topics]))) AS topics,
  list_sort(list_distinct(flatten([audience]))) AS audience,
  CASE WHEN moderation <> 'unknown' THEN moderation END AS moderation,
  CASE WHEN cost <> 'unknown' THEN cost END AS cost,
  hours, verified_at,
  [{'source': source_id, 'record_id': record_id}] AS sources,
  [row_key] AS row_keys
FROM sized WHERE n = 1
UNION ALL
SELECT m.id,
  arg_min(m.name, m.member_rank) FILTER (WHERE m.name IS NOT NULL) AS name,
  arg_min(m.kind, m.member_rank) FILTER (WHERE m.kind IS NOT NULL) AS kind,
  arg_min(m.description, m.member_rank) FILTER (WHERE m.description IS NOT NULL) AS description,
  arg_min(m.url, m.member_rank) FILTER (WHERE m.url IS NOT NULL) AS url,
  arg_min(m.phone, m.member_rank) FILTER (WHERE m.phone IS NOT NULL) AS phone,
  arg_min(m.sms, m.member_rank) FILTER (WHERE m.sms IS NOT NULL) AS sms,
  arg_min(m.chat_url, m.member_rank) FILTER (WHERE m.chat_url IS NOT NULL) AS chat_url,
  arg_min(m.email, m.member_rank) FILTER (WHERE m.email IS NOT NULL) AS email,
  list_sort(list_distinct(flatten(list(m.areas)))) AS areas,
  list_sort(list_distinct(flatten(list(m.languages)))) AS languages,
  list_sort(list_distinct(flatten(list(m.topics)))) AS topics,
  list_sort(list_distinct(flatten(list(m.audience)))) AS audience,
  arg_min(m.moderation, m.member_rank) FILTER (WHERE m.moderation IS NOT NULL AND m.moderation <> 'unknown') AS moderation,
  arg_min(m.cost, m.member_rank) FILTER (WHERE m.cost IS NOT NULL AND m.cost <> 'unknown') AS cost,
  arg_min(m.hours, m.member_rank) FILTER (WHERE m.hours IS NOT NULL) AS hours,
  max(m.verified_at) AS verified_at,
  list({'source': m.source_id, 'record_id': m.record_id} ORDER BY m.source_id, m.record_id) AS sources,
  list(m.row_key ORDER BY m.row_key) AS row_keys
FROM sized m WHERE n > 1
GROUP BY m.id;

-- 6. first_seen and updated_at: a listing's content hash is compared with the last run's.
CREATE OR REPLACE TEMP TABLE hashed AS
SELECT *, md5(to_json({
  'name': name, 'kind': kind, 'description': description, 'url': url, 'phone': phone, 'sms': sms,
  'chat_url': chat_url, 'email': email, 'areas': areas, 'languages': languages, 'topics': topics,
  'audience': audience, 'moderation': moderation, 'cost': cost, 'hours': hours,
  'verified_at': verified_at, 'sources': sources})::VARCHAR) AS content_hash
FROM merged;

INSERT INTO listing_state
SELECT h.id, h.content_hash, p.now, p.now FROM hashed h, run_params p
ON CONFLICT (id) DO UPDATE SET
  updated_at = CASE WHEN listing_state.content_hash <> excluded.content_hash THEN excluded.updated_at ELSE listing_state.updated_at END,
  content_hash = excluded.content_hash;

-- 7. The listings merged in steps 3-6, and their rows (section replace or patch).
CREATE OR REPLACE TEMP VIEW merged_members AS
SELECT m.row_key, m.id AS listing_id, p.print FROM (SELECT unnest(row_keys) AS row_key, id FROM hashed) m JOIN row_prints p USING (row_key);

CREATE OR REPLACE TEMP VIEW merged_listings AS
SELECT h.id, h.name, h.kind, h.description, h.url, h.phone, h.sms, h.chat_url, h.email, h.areas,
       h.languages, h.topics, h.audience, coalesce(h.moderation, 'unknown') AS moderation,
       coalesce(h.cost, 'unknown') AS cost, h.hours, coalesce(h.hours = '24/7', false) AS always_open,
       h.verified_at, 'unknown' AS link_status, CAST(NULL AS TIMESTAMP) AS link_checked_at, h.sources,
       st.first_seen, st.updated_at, len(h.sources) AS member_count
FROM hashed h JOIN listing_state st USING (id);

-- name: replace
-- 8. The core table and the members, made again (nothing kept).  Replaced, not emptied: DELETE of every row of a
--    table with a primary key took 3.4 s at 100k rows.  No key index on listing_members: row_key is stg_listings'
--    primary key, and keeping the index took 1.3 of the 1.6 s of filling it at 1M rows.  (The same definition as
--    in schema.sql.)
CREATE OR REPLACE TABLE listing_members (
  row_key VARCHAR NOT NULL,
  listing_id VARCHAR NOT NULL,
  print UBIGINT
);
INSERT INTO listing_members SELECT * FROM merged_members;
CREATE OR REPLACE TABLE core_listings AS SELECT * FROM merged_listings;

-- name: patch
-- 8. The kept listings stay where they are, with their members; the others go, and the ones merged in steps 3-6
--    come in (at 1M rows, copying the 534k kept listings and their 1M members into new tables took 1.3 s of a
--    rerun).  The kept listings' link status is judged again by link_health.sql, as every listing's is.  The
--    deleted rows are compacted once there are many (curate/warehouse.py, compaction).
DELETE FROM listing_members WHERE listing_id NOT IN (SELECT id FROM kept_clusters);
INSERT INTO listing_members SELECT * FROM merged_members;
DELETE FROM core_listings WHERE id NOT IN (SELECT id FROM kept_clusters);
UPDATE core_listings SET link_status = 'unknown', link_checked_at = NULL
WHERE link_status <> 'unknown' OR link_checked_at IS NOT NULL;
INSERT INTO core_listings SELECT * FROM merged_listings;
