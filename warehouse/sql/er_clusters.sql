-- er_clusters: entity resolution, step 3 of 4. Matched pairs become clusters (connected
-- components), then the chain guard splits clusters that are not coherent.
--
-- This file holds named sections ("-- name: <section>") that curate/resolve.py runs in a loop:
--
--   components = connected components of er_cc_edges, computed set-wise by min-label hooking and
--                pointer jumping (cc_init, then cc_shortcut until nothing moves, cc_hook, repeat):
--                a few rounds even for long chains, where plain label propagation needs one round
--                per link.
--   guard      = a cluster is INCOHERENT when two of its rows are a cannot-link pair (a "different"
--                override, or a pair scoring at or below er_params.conflict_bound: e.g. the same short
--                number in two countries) or when it has more than er_params.max_cluster_size rows.
--                Rows of clusters of 3 to er_params.intra_limit rows are compared pairwise once
--                (guard_intra), so that a conflict between two rows that blocking never paired (the
--                ends of a chain A-B-C) is seen. In each incoherent cluster the weakest link (the
--                lowest-scoring edge that no "same" override forces; in an oversized cluster all
--                equally weak links at once) is cut, remembered for the review queue, and the
--                cluster's rows are clustered again, until every cluster is coherent or only forced
--                edges are left.

-- name: cc_init
CREATE OR REPLACE TEMP TABLE er_cc_und AS SELECT a, b FROM er_cc_edges UNION SELECT b, a FROM er_cc_edges;
CREATE OR REPLACE TEMP TABLE er_cc AS SELECT a AS node, least(a, min(b)) AS comp FROM er_cc_und GROUP BY a;

-- name: cc_shortcut
-- Pointer jumping: every node points to its pointer's pointer; returns how many still move.
CREATE OR REPLACE TEMP TABLE er_cc AS SELECT x.node, y.comp FROM er_cc x JOIN er_cc y ON y.node = x.comp;
SELECT count(*) FROM er_cc x JOIN er_cc y ON y.node = x.comp WHERE y.comp <> x.comp;

-- name: cc_hook
-- Hooking: each root points to the smallest root it has an edge to (smaller only, so no cycles).
CREATE OR REPLACE TEMP TABLE er_cc_hooks AS
SELECT cx.comp AS node, min(cy.comp) AS comp
FROM er_cc_und e JOIN er_cc cx ON cx.node = e.a JOIN er_cc cy ON cy.node = e.b
WHERE cy.comp < cx.comp GROUP BY cx.comp;
CREATE OR REPLACE TEMP TABLE er_cc AS
SELECT x.node, least(x.comp, coalesce(h.comp, x.comp)) AS comp FROM er_cc x LEFT JOIN er_cc_hooks h ON h.node = x.node;
SELECT count(*) FROM er_cc_hooks;

-- name: guard_start
CREATE OR REPLACE TEMP TABLE er_cc_edges AS SELECT a, b FROM er_edges;
CREATE OR REPLACE TEMP TABLE er_split (a INTEGER, b INTEGER, score INTEGER);
CREATE OR REPLACE TEMP TABLE er_kept (node INTEGER, comp INTEGER);

-- name: guard_intra
-- Every pair inside a cluster of 3 to intra_limit rows that blocking did not pair is scored once.
CREATE OR REPLACE TEMP TABLE er_todo AS
WITH sized AS (SELECT node, comp, count(*) OVER (PARTITION BY comp) AS n FROM er_cc)
SELECT x.node AS a, y.node AS b
FROM sized x JOIN sized y ON x.comp = y.comp AND x.node < y.node
WHERE x.n BETWEEN 3 AND (SELECT intra_limit FROM er_params)
  AND NOT EXISTS (SELECT 1 FROM er_pairs q WHERE q.a = x.node AND q.b = y.node);
INSERT INTO er_cannot SELECT a, b FROM er_scored WHERE score <= (SELECT conflict_bound FROM er_params) OR phone_cmp = 'short_other_country';

-- name: guard_find
-- Only the clusters formed in this round (er_cc) are judged; er_kept holds those already coherent.
CREATE OR REPLACE TEMP TABLE er_bad AS
SELECT comp, bool_or(oversized) AS oversized FROM (
  SELECT x.comp, false AS oversized FROM er_cc x JOIN er_cannot c ON c.a = x.node JOIN er_cc y ON y.node = c.b AND y.comp = x.comp
  UNION ALL
  SELECT comp, true FROM er_cc GROUP BY comp HAVING count(*) > (SELECT max_cluster_size FROM er_params)
) GROUP BY comp;
SELECT count(*) FROM er_bad;

-- name: guard_cut
-- The weakest link of each incoherent cluster goes (of equally weak links, the one between the
-- highest row ids; in an oversized cluster every equally weak link at once); its rows are clustered again.
CREATE OR REPLACE TEMP TABLE er_cut AS
SELECT e.a, e.b, e.score
FROM er_edges e JOIN er_cc c ON c.node = e.a JOIN er_bad d USING (comp)
WHERE NOT e.forced
QUALIFY CASE WHEN d.oversized THEN e.score = min(e.score) OVER (PARTITION BY c.comp)
             ELSE row_number() OVER (PARTITION BY c.comp ORDER BY e.score, e.b DESC, e.a DESC) = 1 END;
INSERT INTO er_split SELECT * FROM er_cut;
DELETE FROM er_edges USING er_cut c WHERE er_edges.a = c.a AND er_edges.b = c.b;
INSERT INTO er_kept SELECT * FROM er_cc WHERE comp NOT IN (SELECT comp FROM er_bad);
CREATE OR REPLACE TEMP TABLE er_cc_edges AS
SELECT e.a, e.b FROM er_edges e JOIN er_cc c ON c.node = e.a JOIN er_bad USING (comp);
SELECT count(*) FROM er_cut;

-- name: guard_done
-- (A round that cut nothing has already kept its coherent clusters: each row is kept once.)
INSERT INTO er_kept SELECT * FROM er_cc ANTI JOIN er_kept USING (node);

-- name: finish
-- Each row's cluster is named by the smallest row_key in it (core_listings.sql takes it from here),
-- and the review queue: pairs just below the threshold, and matches the chain guard cut, whose rows
-- ended in different clusters and that no override settles.
CREATE OR REPLACE TEMP TABLE er_clusters AS
SELECT r.row_key, min(r.row_key) OVER (PARTITION BY coalesce(c.comp, r.rid)) AS cluster
FROM er_rows r LEFT JOIN er_kept c ON c.node = r.rid;

CREATE OR REPLACE TABLE possible_duplicates AS
WITH queue AS (
  SELECT p.*, 'below the threshold' AS why FROM er_pairs p, er_params m
  WHERE p.score >= m.review_floor AND p.score < m.match_threshold AND p.override IS NULL
  UNION ALL
  SELECT p.*, 'kept apart by the chain guard' FROM er_pairs p JOIN er_split s USING (a, b) WHERE p.override IS NULL
),
-- the clusters of the queue's rows only (of every row: 0.34-0.41 s at 1M rows, against 0.23-0.30 s)
ends AS (SELECT DISTINCT rid FROM (SELECT a AS rid FROM queue UNION ALL SELECT b FROM queue)),
cl AS (SELECT r.rid, c.cluster FROM ends JOIN er_rows r USING (rid) JOIN er_clusters c USING (row_key))
SELECT q.score, q.why, q.name_cmp, q.phone_cmp, q.url_cmp, q.email_cmp, q.kind_cmp, q.country_cmp,
       x.source_id AS a_source, x.record_id AS a_record, y.source_id AS b_source, y.record_id AS b_record,
       sx.name AS a_name, sy.name AS b_name, sx.kind AS a_kind, sy.kind AS b_kind, sx.country AS a_country, sy.country AS b_country,
       sx.phone AS a_phone, sy.phone AS b_phone, sx.sms AS a_sms, sy.sms AS b_sms, sx.url AS a_url, sy.url AS b_url,
       sx.email AS a_email, sy.email AS b_email
FROM queue q
JOIN er_rows x ON x.rid = q.a JOIN er_rows y ON y.rid = q.b
JOIN cl cx ON cx.rid = q.a JOIN cl cy ON cy.rid = q.b
JOIN er_input sx ON sx.row_key = x.row_key JOIN er_input sy ON sy.row_key = y.row_key
WHERE cx.cluster <> cy.cluster
ORDER BY q.score DESC, a_source, a_record, b_source, b_record;
