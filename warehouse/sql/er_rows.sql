-- er_rows: entity resolution, step 1 of 4 (er_rows -> er_pairs -> er_clusters -> core_listings).
-- One row per staged row with the keys and features that blocking and scoring compare.
--
-- Expects: stg_listings (or any table of the same columns named by the view er_input), and the
-- function er_registrable_domain(host) that curate/resolve.py registers on the connection: the
-- registrable domain ("example.co.uk" for "oslo.example.co.uk") from the public suffix list
-- bundled with the `publicsuffixlist` package (never fetched at run time). It is called once per
-- DISTINCT host, never per row, and once only per host across runs (host_domains).

-- Words that say nothing about WHICH service a name means.
--   stop:    removed before comparing names (articles, prepositions, conjunctions; en, no, sv, da, de, fr, es)
--   legal:   legal-form suffixes, removed ("Ltd", "e.V.", "gGmbH", "AS", "CIC")
--   generic: kept in the compared name, but not distinctive: a name made only of generic words
--            ("Helpline", "Support group", "Forum", "Mental health chat") never matches on the name alone.
CREATE OR REPLACE TEMP TABLE er_words (word VARCHAR PRIMARY KEY, class VARCHAR NOT NULL);
INSERT INTO er_words SELECT unnest(string_split(w, ' ')), c FROM (VALUES
  ('the a an of and for to in on at by with from or our your its', 'stop'),
  ('og for i pa til med av det den der die das und fur von zu im am och pa at med', 'stop'),
  ('le la les de du des et pour l d el los las del y para en con por', 'stop'),
  ('ltd limited inc incorporated llc llp plc cic co corp company gmbh ggmbh ev as asa ab sa sas sarl sl slu nv bv vzw asbl ry oy aps', 'legal'),
  ('helpline helplines hotline hotlines line lines lifelines phone telephone call number text textline sms chat chats webchat', 'generic'),
  ('forum forums community communities group groups support supports network online service services app', 'generic'),
  ('help helping crisis centre center center national international global worldwide peer peers counselling counseling', 'generic'),
  ('listening talk talking mental health wellbeing well being emotional psychological care carers', 'generic'),
  ('youth young people children child kids teens teen adults men women family families parents students veterans lgbt lgbtq lgbtqia', 'generic'),
  ('suicide depression anxiety grief bereavement eating disorder disorders bipolar psychosis trauma ptsd addiction substance self harm', 'generic'),
  ('loneliness lonely stress prevention recovery information advice meeting meetings club hub space place project programme program', 'generic'),
  ('hjelpetelefon hjelpetelefonen hjelp telefon telefonen chatt samtale stotte stottetelefon selvhjelp gruppe grupper forening', 'generic'),
  ('hilfe telefonseelsorge seelsorge beratung gruppe forum notruf', 'generic'),
  ('ecoute aide ligne soutien groupe ayuda linea apoyo grupo foro telefono', 'generic')
) v(w, c) ON CONFLICT DO NOTHING;

-- Web addresses: a canonical key (no scheme, no www., no fragment, no utm_ parameters, no trailing
-- slash or index page; lowercase), its host and path, and the host's registrable domain.
CREATE OR REPLACE TEMP MACRO er_url_key(u) AS nullif(
  regexp_replace(regexp_replace(regexp_replace(regexp_replace(lower(u),
    '^[a-z]+://(www[0-9]?\.)?', ''),            -- scheme and www.
    '[?&]utm_[^&]*', '', 'g'),                  -- tracking parameters
    '#.*$', ''),                                -- fragment
    '(/index\.(html?|php|aspx?)|/default\.aspx?)?/*$', ''),   -- index page, trailing slashes
  '');

-- The costly features (the names' words, the canonical web addresses, the registrable domain) are worked out
-- once per row: er_row_cache, a table of the warehouse, holds each row's as the last resolution found them,
-- under the row's print (a 64-bit hash of the columns they are made of). A row whose print is the same takes
-- them from there; the others (er_new: every row on a first run) are worked out below. Only these columns are
-- kept: writing all of a row's features took 1.28 s at 1M rows, these 0.59 s. curate/resolve.py empties the
-- cache when this file or the suffix list's rules changed (er_cache_made_by).
CREATE TABLE IF NOT EXISTS er_row_cache (
  print UBIGINT NOT NULL, row_key VARCHAR NOT NULL, url_key VARCHAR, chat_key VARCHAR, domain VARCHAR,
  name_cmp VARCHAR NOT NULL, name_tokens VARCHAR[] NOT NULL
);
CREATE OR REPLACE TEMP TABLE er_prints AS
SELECT row_key, hash(row_key, source_id, record_id, name, kind, country, areas, url, chat_url, email, phone, sms) AS print
FROM er_input;
CREATE OR REPLACE TEMP TABLE er_cached AS
SELECT c.* FROM er_row_cache c JOIN er_prints p ON p.row_key = c.row_key AND p.print = c.print;
CREATE OR REPLACE TEMP TABLE er_new AS
SELECT p.print, i.row_key, i.name, er_url_key(i.url) AS url_key, er_url_key(i.chat_url) AS chat_key
FROM er_input i JOIN er_prints p USING (row_key) ANTI JOIN er_cached c USING (row_key);

-- Names, once per distinct value: lowercased, accents and punctuation removed, split into words.
--   name_cmp:    the words minus stop words and legal suffixes (compared with jaro_winkler)
--   name_tokens: its distinctive words (not generic), sorted; empty = a generic name
CREATE OR REPLACE TEMP TABLE er_names AS
WITH names AS (SELECT DISTINCT name FROM er_new WHERE name IS NOT NULL),
words AS (
  SELECT name, unnest(w) AS word, generate_subscripts(w, 1) AS pos
  FROM (SELECT name, string_split(trim(regexp_replace(lower(strip_accents(name)), '[^\p{L}\p{N}]+', ' ', 'g')), ' ') AS w FROM names)
),
classed AS (
  SELECT w.name, w.word, w.pos,
         CASE WHEN w.word = '' OR (length(w.word) = 1 AND w.word NOT SIMILAR TO '[0-9]') THEN 'stop' ELSE e.class END AS class
  FROM words w LEFT JOIN er_words e ON e.word = w.word
)
SELECT n.name,
       coalesce(string_agg(c.word, ' ' ORDER BY c.pos) FILTER (WHERE c.class IS DISTINCT FROM 'stop' AND c.class IS DISTINCT FROM 'legal'),
                lower(n.name)) AS name_cmp,
       coalesce(list_sort(list_distinct(list(c.word) FILTER (WHERE c.class IS NULL))), []) AS name_tokens
FROM names n LEFT JOIN classed c USING (name)
GROUP BY n.name;

-- A host's registrable domain is remembered between runs (host_domains, a table of the warehouse): the
-- suffix list is asked only about the hosts it was not asked about under the same rules (er_domain_rules,
-- set by curate/resolve.py: the suffix list package's version). Hosts no longer met (by a new row, or one
-- taken from er_row_cache) are forgotten.
CREATE TABLE IF NOT EXISTS host_domains (host VARCHAR NOT NULL, domain VARCHAR NOT NULL, rules VARCHAR NOT NULL);
CREATE OR REPLACE TEMP MACRO er_host(key) AS regexp_extract(key, '^[^/?:]+');
CREATE OR REPLACE TEMP TABLE er_host_names AS
SELECT DISTINCT host
FROM (SELECT er_host(k) AS host FROM (SELECT url_key AS k FROM er_new UNION ALL SELECT chat_key FROM er_new) WHERE k IS NOT NULL)
WHERE host <> '';
DELETE FROM host_domains
WHERE rules <> (SELECT rules FROM er_domain_rules)
   OR (host NOT IN (SELECT host FROM er_host_names)
       AND host NOT IN (SELECT er_host(url_key) FROM er_cached WHERE url_key IS NOT NULL)
       AND host NOT IN (SELECT er_host(chat_key) FROM er_cached WHERE chat_key IS NOT NULL));
INSERT INTO host_domains
SELECT host, er_registrable_domain(host), (SELECT rules FROM er_domain_rules)
FROM er_host_names WHERE host NOT IN (SELECT host FROM host_domains);
CREATE OR REPLACE TEMP TABLE er_hosts AS
SELECT n.host, d.domain FROM er_host_names n JOIN host_domains d USING (host);

-- The new rows' costly features, kept in the cache for the next resolution: a changed or removed row's go.
CREATE OR REPLACE TEMP TABLE er_fresh AS
SELECT e.print, e.row_key, e.url_key, e.chat_key, h.domain,
       coalesce(n.name_cmp, '') AS name_cmp, coalesce(n.name_tokens, []) AS name_tokens
FROM er_new e
LEFT JOIN er_names n ON n.name = e.name
LEFT JOIN er_hosts h ON h.host = er_host(e.url_key);
DELETE FROM er_row_cache c WHERE NOT EXISTS (SELECT 1 FROM er_cached k WHERE k.row_key = c.row_key AND k.print = c.print);
INSERT INTO er_row_cache BY NAME SELECT * FROM er_fresh;

-- A number's key: E.164 numbers as they are; a national short number only inside its country.
CREATE OR REPLACE TEMP MACRO er_phone_key(x, country) AS
  CASE WHEN x LIKE '+%' THEN x WHEN x IS NOT NULL THEN coalesce(country, '??') || ':' || x END;

-- One row of features per input row. rid is a dense integer id (joins on integers are cheap), in row_key order:
-- numbered on the keys alone, then joined (numbering the whole rows took 1.35 s at 1M rows, this 0.43 s).
CREATE OR REPLACE TEMP TABLE er_rows AS
WITH base AS (
  SELECT s.row_key, s.source_id, s.record_id, s.name, s.kind,
         nullif(upper(s.country), '') AS country, s.areas,
         f.url_key, f.chat_key, f.domain, f.name_cmp, f.name_tokens,
         lower(s.email) AS email, s.phone, s.sms,
         [x FOR x IN [s.phone, s.sms] IF x IS NOT NULL] AS numbers
  FROM er_input s JOIN (SELECT * FROM er_cached UNION ALL BY NAME SELECT * FROM er_fresh) f USING (row_key)
)
SELECT k.rid, k.print, b.row_key, b.source_id, b.record_id, b.name, b.kind, b.country, b.areas, b.email,
       list_distinct([er_phone_key(x, b.country) FOR x IN b.numbers]) AS phone_keys,
       list_distinct([x FOR x IN b.numbers IF x NOT LIKE '+%']) AS short_numbers,
       er_phone_key(b.phone, b.country) AS phone_key, er_phone_key(b.sms, b.country) AS sms_key,
       b.url_key, b.chat_key,
       er_host(b.url_key) AS host,
       nullif(substr(b.url_key, length(er_host(b.url_key)) + 1), '') AS path,
       b.domain,
       nullif(regexp_extract(b.email, '@(.+)$', 1), '') AS email_domain,
       CASE WHEN b.kind IN ('helpline', 'text_line', 'chat') THEN 'line'
            WHEN b.kind IN ('online_community', 'forum', 'support_group') THEN 'community'
            WHEN b.kind IN ('online_therapy', 'psychotherapy') THEN 'therapy' ELSE b.kind END AS kind_group,
       -- services used online, wherever a source lists them: their country says little
       coalesce(b.kind IN ('online_community', 'forum', 'chat', 'online_therapy'), false) AS online,
       b.name_cmp, b.name_tokens,
       len(b.name_tokens) = 0 AS generic_name
FROM base b
JOIN (SELECT row_key, print, row_number() OVER (ORDER BY row_key)::INTEGER AS rid FROM er_prints) k USING (row_key);
