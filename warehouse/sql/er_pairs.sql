-- er_pairs: entity resolution, step 2 of 4. Candidate pairs by blocking, their scores, the curator
-- overrides, and the edges that clustering joins.
--
-- Expects er_rows (er_rows.sql), er_params (curate/resolve.py: the thresholds below) and
-- er_override_refs(kind, a_ref, b_ref, line): curator overrides from sources/overrides.toml,
-- each side a row ("source/record_id") or a listing id of the last run ("lst_...").
--
-- BLOCKING. Two rows are compared only when they share a key:
--   p:  a phone or SMS number: E.164 as is; a national short number only with its country
--       ("GB:116123" and "IE:116123" are different keys: 116 123 is a different service in each)
--   u:  a canonical web or chat address (er_url_key)
--   d:  the registrable domain of the web address (public suffix list)
--   e:  an email address
--   n:  the country and one of the two rarest distinctive words of the name (generic words never block)
-- A key held by more than er_params.block_cap rows does not pair all of them (quadratic): it pairs
-- each row with its er_params.block_window next rows in name order (sorted neighbourhood).
--
-- SCORING: Fellegi-Sunter style. Each comparison adds a weight, about log2(m/u): how much more
-- often the outcome is seen among true duplicates (m) than among unrelated rows (u), hand-set and
-- rounded, then checked against the benchmark's ground truth (benchmarks/er_bench.py).
--   name      (after lowercasing, removing accents, punctuation, stop words and legal suffixes)
--             exact                                   +9   (a distinctive name is rarely shared)
--             jaro_winkler >= 0.94, or the distinctive words of one are all in the other   +5
--             jaro_winkler >= 0.85, or half the distinctive words shared                  +3
--             jaro_winkler < 0.70 and no distinctive word shared                          -3
--             anything between                                                           +1
--             either name generic ("Helpline", "Support group", "Forum")                  0
--             (a generic name is no evidence either way: it never matches on its own)
--   phone     a shared number (a phone or SMS number of one is one of the other's)        +7
--             both have a phone, or both an SMS number, and they differ                   -4
--             the same short number in different countries (the 116 123 rule)            -12, and never one cluster
--   url       the same canonical address                   +6   same host, one at its root      +3
--             same host, different paths (chapters)        -5   same registrable domain only     0
--             different sites                              -3
--   email     the same address                             +4   different                       -1
--   kind      the same                                     +1   same family (line, community, therapy) 0   else -2
--   country   the same, or either is WW                    +1   different                       -4
--             different, but both are used online (community, forum, chat, online therapy),
--             or both at the very same web address (a web address serves every country)      -1
-- DECISION RULE: score >= match_threshold (7) is a match. So an exact distinctive name matches on
-- its own inside one country (9+1+1), or despite one other number (9-4+2), but not with a different
-- path on the same site (9-5+2) nor in another country for a helpline (9+1-4); a generic name needs
-- a shared number or address; a shared number with an unrelated name is only a possible duplicate
-- (7-3+2). Pairs scoring review_floor (3) to just below the threshold go to the review queue
-- (sources/reports/possible-duplicates.html). A pair at or below conflict_bound (-4), or with one
-- short number in two countries, can never end up in one cluster (the chain guard, er_clusters.sql).
-- OVERRIDES always win: a "same" pair is an edge whatever its score; a "different" pair is never
-- an edge and can never end up in one cluster.

-- 1. Blocking keys.
CREATE OR REPLACE TEMP TABLE er_token_freq AS
SELECT country, t AS token, count(*) AS n FROM (SELECT country, unnest(name_tokens) AS t FROM er_rows) GROUP BY ALL;

-- Each (k, rid) once: a row's phone keys are distinct, its chat address is a key only when not its web address,
-- its name words are distinct.
CREATE OR REPLACE TEMP TABLE er_keys AS
SELECT 'p:' || k AS k, rid FROM (SELECT rid, unnest(phone_keys) AS k FROM er_rows)
UNION ALL SELECT 'u:' || url_key, rid FROM er_rows WHERE url_key IS NOT NULL
UNION ALL SELECT 'u:' || chat_key, rid FROM er_rows WHERE chat_key IS NOT NULL AND chat_key IS DISTINCT FROM url_key
UNION ALL SELECT 'd:' || domain, rid FROM er_rows WHERE domain IS NOT NULL
UNION ALL SELECT 'e:' || email, rid FROM er_rows WHERE email IS NOT NULL
UNION ALL
SELECT 'n:' || coalesce(r.country, '') || ':' || t.token, r.rid
FROM (SELECT rid, country, unnest(name_tokens) AS token FROM er_rows) r
JOIN er_token_freq t ON t.country IS NOT DISTINCT FROM r.country AND t.token = r.token
QUALIFY row_number() OVER (PARTITION BY r.rid ORDER BY t.n, t.token) <= 2;

-- The keys held by more than one row (a key of one row pairs nothing: at 1M rows, 1.3M of the 3.9M), with their
-- block's size n; pos, a row's place in name order, only in the big blocks that need it (er_todo): 0.5 s at 1M rows,
-- against 1.1 s for numbering every key's rows.
CREATE OR REPLACE TEMP TABLE er_keyed AS
WITH shared AS (SELECT k, count(*) AS n FROM er_keys GROUP BY k HAVING count(*) > 1),
keyed AS (SELECT k, rid, n FROM er_keys JOIN shared USING (k))
SELECT k, rid, n, NULL::BIGINT AS pos FROM keyed WHERE n <= (SELECT block_cap FROM er_params)
UNION ALL
SELECT k, rid, n, row_number() OVER (PARTITION BY k ORDER BY r.name_cmp, rid) AS pos
FROM keyed JOIN er_rows r USING (rid) WHERE n > (SELECT block_cap FROM er_params);

-- 2. Candidate pairs (a < b): every pair in a small block, neighbours in name order in a big one.
CREATE OR REPLACE TEMP TABLE er_todo AS
SELECT DISTINCT least(r1, r2) AS a, greatest(r1, r2) AS b FROM (
  SELECT x.rid AS r1, y.rid AS r2
  FROM er_keyed x JOIN er_keyed y ON x.k = y.k AND x.rid < y.rid
  WHERE x.n <= (SELECT block_cap FROM er_params) AND y.n <= (SELECT block_cap FROM er_params)
  UNION ALL
  SELECT x.rid, y.rid
  FROM (SELECT k, rid, pos + unnest(range(1, p.block_window + 1)) AS next_pos FROM er_keyed, er_params p WHERE n > p.block_cap) x
  JOIN er_keyed y ON y.k = x.k AND y.pos = x.next_pos
);

-- 3. Overrides, resolved to rows. A listing id stands for every row it had after the last run.
CREATE OR REPLACE TEMP TABLE er_override_rows AS
WITH refs AS (
  SELECT o.kind, o.line, o.a_ref AS ref, 'a' AS side FROM er_override_refs o
  UNION ALL SELECT o.kind, o.line, o.b_ref, 'b' FROM er_override_refs o
), rows_of AS (
  SELECT f.kind, f.line, f.side, f.ref, r.rid
  FROM refs f JOIN er_rows r ON r.row_key = f.ref
  UNION ALL
  SELECT f.kind, f.line, f.side, f.ref, r.rid
  FROM refs f JOIN listing_members m ON m.listing_id = f.ref JOIN er_rows r ON r.row_key = m.row_key
)
SELECT DISTINCT x.kind, x.line, least(x.rid, y.rid) AS a, greatest(x.rid, y.rid) AS b
FROM rows_of x JOIN rows_of y ON x.line = y.line AND x.side = 'a' AND y.side = 'b' AND x.rid <> y.rid;

-- 4. Scores, by the weights above, for every pair in er_todo (also reused by er_clusters.sql), but those known.
CREATE OR REPLACE TEMP VIEW er_scored AS
WITH cmp AS (
  SELECT t.a, t.b,
    CASE WHEN x.generic_name OR y.generic_name THEN 'generic'
         WHEN x.name_cmp = y.name_cmp THEN 'exact'
         WHEN jaro_winkler_similarity(x.name_cmp, y.name_cmp) >= 0.94
           OR list_has_all(x.name_tokens, y.name_tokens) OR list_has_all(y.name_tokens, x.name_tokens) THEN 'close'
         WHEN jaro_winkler_similarity(x.name_cmp, y.name_cmp) >= 0.85
           OR 2 * len(list_intersect(x.name_tokens, y.name_tokens)) >= least(len(x.name_tokens), len(y.name_tokens)) THEN 'like'
         WHEN jaro_winkler_similarity(x.name_cmp, y.name_cmp) < 0.70 AND NOT list_has_any(x.name_tokens, y.name_tokens) THEN 'differ'
         ELSE 'unsure' END AS name_cmp,
    CASE WHEN list_has_any(x.phone_keys, y.phone_keys) THEN 'same'
         WHEN list_has_any(x.short_numbers, y.short_numbers) AND x.country IS DISTINCT FROM y.country THEN 'short_other_country'
         WHEN x.phone_key <> y.phone_key OR x.sms_key <> y.sms_key THEN 'differ' END AS phone_cmp,
    CASE WHEN x.url_key = y.url_key OR x.chat_key = y.chat_key OR x.url_key = y.chat_key OR x.chat_key = y.url_key THEN 'same'
         WHEN x.host = y.host AND (x.path IS NULL OR y.path IS NULL) THEN 'host_root'
         WHEN x.host = y.host THEN 'other_path'
         WHEN x.domain = y.domain THEN 'same_domain'
         WHEN x.host IS NOT NULL AND y.host IS NOT NULL THEN 'differ' END AS url_cmp,
    CASE WHEN x.email = y.email THEN 'same' WHEN x.email <> y.email THEN 'differ' END AS email_cmp,
    CASE WHEN x.kind = y.kind THEN 'same' WHEN x.kind_group = y.kind_group THEN 'family' ELSE 'differ' END AS kind_cmp,
    CASE WHEN x.country = y.country OR x.country = 'WW' OR y.country = 'WW' THEN 'same'
         WHEN x.country IS NULL OR y.country IS NULL THEN NULL
         WHEN (x.online AND y.online) OR x.url_key = y.url_key THEN 'differ_online' ELSE 'differ' END AS country_cmp
  FROM er_todo t JOIN er_rows x ON x.rid = t.a JOIN er_rows y ON y.rid = t.b
)
SELECT a, b, name_cmp, phone_cmp, url_cmp, email_cmp, kind_cmp, country_cmp,
  (CASE name_cmp WHEN 'exact' THEN 9 WHEN 'close' THEN 5 WHEN 'like' THEN 3 WHEN 'unsure' THEN 1 WHEN 'differ' THEN -3 ELSE 0 END
 + CASE phone_cmp WHEN 'same' THEN 7 WHEN 'short_other_country' THEN -12 WHEN 'differ' THEN -4 ELSE 0 END
 + CASE url_cmp WHEN 'same' THEN 6 WHEN 'host_root' THEN 3 WHEN 'other_path' THEN -5 WHEN 'differ' THEN -3 ELSE 0 END
 + CASE email_cmp WHEN 'same' THEN 4 WHEN 'differ' THEN -1 ELSE 0 END
 + CASE kind_cmp WHEN 'same' THEN 1 WHEN 'differ' THEN -2 ELSE 0 END
 + CASE country_cmp WHEN 'same' THEN 1 WHEN 'differ_online' THEN -1 WHEN 'differ' THEN -4 ELSE 0 END)::INTEGER AS score
FROM cmp;

-- A pair's comparisons and score are those of its two rows' features, which are those of the rows' prints
-- (er_rows.sql): er_score_cache, a table of the warehouse, keeps them by the pair's prints, and only the pairs it
-- does not hold are scored (at 1M rows a rerun scored 1.7M pairs again: 1.0-1.4 s).  curate/resolve.py empties it
-- with er_row_cache (when this file, er_rows.sql or the suffix list's rules changed) and when it holds twice the
-- pairs met.
CREATE TABLE IF NOT EXISTS er_score_cache (
  pa UBIGINT NOT NULL, pb UBIGINT NOT NULL, name_cmp VARCHAR, phone_cmp VARCHAR, url_cmp VARCHAR, email_cmp VARCHAR,
  kind_cmp VARCHAR, country_cmp VARCHAR, score INTEGER NOT NULL
);
CREATE OR REPLACE TEMP TABLE er_todo_printed AS
SELECT t.a, t.b, x.print AS pa, y.print AS pb FROM er_todo t JOIN er_rows x ON x.rid = t.a JOIN er_rows y ON y.rid = t.b;
CREATE OR REPLACE TEMP TABLE er_known AS
SELECT t.a, t.b, c.name_cmp, c.phone_cmp, c.url_cmp, c.email_cmp, c.kind_cmp, c.country_cmp, c.score
FROM er_todo_printed t JOIN er_score_cache c ON c.pa = t.pa AND c.pb = t.pb;
CREATE OR REPLACE TEMP TABLE er_todo AS SELECT a, b FROM er_todo_printed ANTI JOIN er_known USING (a, b);
CREATE OR REPLACE TEMP TABLE er_new_scores AS SELECT * FROM er_scored;
INSERT INTO er_score_cache
SELECT t.pa, t.pb, s.name_cmp, s.phone_cmp, s.url_cmp, s.email_cmp, s.kind_cmp, s.country_cmp, s.score
FROM er_new_scores s JOIN er_todo_printed t USING (a, b);

CREATE OR REPLACE TEMP TABLE er_pairs AS
SELECT s.*, o.kind AS override FROM (SELECT * FROM er_known UNION ALL SELECT * FROM er_new_scores) s
LEFT JOIN (SELECT a, b, min(kind) AS kind FROM er_override_rows GROUP BY ALL) o USING (a, b);

-- 5. Edges (pairs that match, and "same" overrides) and cannot-links (hard conflicts, "different" overrides).
CREATE OR REPLACE TEMP TABLE er_edges AS
SELECT a, b, score, false AS forced FROM er_pairs, er_params p WHERE score >= p.match_threshold AND override IS NULL
UNION ALL
SELECT DISTINCT a, b, 1000, true FROM er_override_rows o WHERE kind = 'same'
  AND NOT EXISTS (SELECT 1 FROM er_override_rows d WHERE d.kind = 'different' AND d.a = o.a AND d.b = o.b);

CREATE OR REPLACE TEMP TABLE er_cannot AS
SELECT a, b FROM er_pairs, er_params p WHERE (score <= p.conflict_bound OR phone_cmp = 'short_other_country') AND override IS NULL
UNION
SELECT a, b FROM er_override_rows WHERE kind = 'different';
