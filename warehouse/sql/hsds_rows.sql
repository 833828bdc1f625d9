-- hsds_rows: the rows of the HSDS package's tables, made by DuckDB from a release's listings (curate/hsds_sql.py):
-- the same rows, in the same order, as curate/hsds.py's listing_records makes of them in Python.
--
-- Expects (made by curate/hsds_sql.py on a connection of its own):
--   hsds_listings(...)                 the listings' table, verified_at and updated_at as the text a listing holds;
--   hsds_order(id, ord, part)          the listings wanted: each one's place among them and its HSDS part;
--   hsds_places(code, name)            the locations' names;
--   hsds_languages(tag, name, code)    each language tag's English name and ISO 639 code;
--   hsds_costs(cost, description)      the cost terms (not "unknown") and what fees_description says of them;
--   hsds_taxonomies(field, taxonomy)   the taxonomy of each field whose values are attributes;
--   hsds_always_open(freq, ...)        the 24/7 schedule, one row;
--   hsds_namespace()                   a macro: the namespace of the rows' UUIDs, as a BLOB.
-- Each table's section (named as its file, without .csv) gives part, ord (the listing's place), g and k (a row's place among its listing's) and the
-- cells of the table's columns by name, as text (NULL: empty); hsds_sql.py writes them as CSV records in the
-- specification's column order. Columns named id or ending in _id hold UUIDs made by hsds_uuid.

-- name: macros
-- uuid.uuid5(namespace, name) as text: the SHA-1's hex digits, the version digit 5, the variant's digit 8 to b
CREATE OR REPLACE TEMP MACRO hsds_uuid_of(h) AS
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-5' || substr(h, 14, 3) || '-'
    || translate(substr(h, 17, 1), '0123456789abcdef', '89ab89ab89ab89ab') || substr(h, 18, 3) || '-' || substr(h, 21, 12);
CREATE OR REPLACE TEMP MACRO hsds_uuid(name) AS hsds_uuid_of(sha1(hsds_namespace() || encode(name)));
-- schemas.hsds.hsds_id's name: "<table>:<key>", then ":<part>" when there is a part
CREATE OR REPLACE TEMP MACRO hsds_name(tbl, key, part) AS tbl || ':' || key || CASE WHEN part <> '' THEN ':' || part ELSE '' END;

-- name: base
CREATE OR REPLACE TEMP TABLE hsds_base AS
SELECT o.part, o.ord, l.lid, l.name, l.kind, l.description, l.url, l.chat_url, l.phone, l.sms, l.email, l.areas, l.languages,
       l.topics, l.audience, l.cost, l.hours, l.always_open, l.verified_at, l.updated_at,
       hsds_uuid(hsds_name('service', l.lid, NULL)) AS sid, hsds_uuid(hsds_name('organization', l.lid, NULL)) AS oid
FROM (SELECT *, CAST(id AS VARCHAR) AS lid FROM hsds_listings) l JOIN hsds_order o ON l.lid = o.id;

-- name: organizations
SELECT part, ord, 0 AS g, 0 AS k, oid AS id, name, email, url AS website,
       CASE WHEN description <> '' THEN description ELSE coalesce(name, 'None') END AS description
FROM hsds_base;

-- name: services
SELECT b.part, b.ord, 0 AS g, 0 AS k, b.sid AS id, b.oid AS organization_id, b.name, b.description, b.email,
       b.verified_at AS assured_date, b.updated_at AS last_modified, 'active' AS status,
       CASE WHEN b.url <> '' THEN b.url ELSE b.chat_url END AS url,
       concat_ws(' ', CASE WHEN b.phone <> '' THEN 'Call ' || b.phone || '.' END,
                      CASE WHEN b.sms <> '' THEN 'Text ' || b.sms || '.' END,
                      CASE WHEN b.chat_url <> '' THEN 'Chat at ' || b.chat_url || '.' END,
                      CASE WHEN b.url <> '' THEN 'Web: ' || b.url || '.' END) AS application_process,
       c.description AS fees_description,
       CASE WHEN len(b.audience) > 0
            THEN 'For: ' || array_to_string(list_transform(b.audience, lambda a: replace(a, '_', ' ')), ', ') || '.' END
           AS eligibility_description
FROM hsds_base b LEFT JOIN hsds_costs c ON b.cost = c.cost;

-- name: phones
SELECT part, ord, 0 AS g, 0 AS k, hsds_uuid(hsds_name('phone', lid, 'phone')) AS id, sid AS service_id, phone AS number, 'voice' AS type
FROM hsds_base WHERE phone <> ''
UNION ALL
SELECT part, ord, 1, 0, hsds_uuid(hsds_name('phone', lid, 'sms')), sid, sms, 'text'
FROM hsds_base WHERE sms <> '';

-- name: service_areas
SELECT a.part, a.ord, 0 AS g, a.k, hsds_uuid(hsds_name('service_area', a.lid, a.code)) AS id, a.sid AS service_id,
       coalesce(p.name, a.code) AS name, a.code AS extent, 'text' AS extent_type
FROM (SELECT part, ord, lid, sid, unnest(areas) AS code, generate_subscripts(areas, 1) AS k FROM hsds_base) a
LEFT JOIN hsds_places p ON a.code = p.code;

-- name: languages
SELECT l.part, l.ord, 0 AS g, l.k, hsds_uuid(hsds_name('language', l.lid, l.tag)) AS id, l.sid AS service_id, n.name, n.code
FROM (SELECT part, ord, lid, sid, unnest(languages) AS tag, generate_subscripts(languages, 1) AS k FROM hsds_base) l
LEFT JOIN hsds_languages n ON l.tag = n.tag;

-- name: schedules
SELECT b.part, b.ord, 0 AS g, 0 AS k, hsds_uuid(hsds_name('schedule', b.lid, NULL)) AS id, b.sid AS service_id,
       s.freq, s."interval", s.byday, s.opens_at, s.closes_at,
       CASE WHEN b.always_open THEN s.description ELSE b.hours END AS description
FROM hsds_base b LEFT JOIN hsds_always_open s ON b.always_open
WHERE b.always_open OR b.hours <> '';

-- name: attribute_values
-- each value of the fields whose values are terms (a kind; each topic, each audience), in that order
CREATE OR REPLACE TEMP TABLE hsds_attributes AS
SELECT v.*, t.taxonomy
FROM (
    SELECT part, ord, lid, sid, 0 AS g, 0 AS k, 'kind' AS field, kind AS value FROM hsds_base WHERE kind IS NOT NULL
    UNION ALL
    SELECT part, ord, lid, sid, 1, generate_subscripts(topics, 1), 'topics', unnest(topics) FROM hsds_base
    UNION ALL
    SELECT part, ord, lid, sid, 2, generate_subscripts(audience, 1), 'audience', unnest(audience) FROM hsds_base
) v JOIN hsds_taxonomies t ON v.field = t.field;

-- name: attributes
SELECT a.part, a.ord, a.g, a.k, hsds_uuid(hsds_name('attribute', a.lid, a.taxonomy || '/' || a.value)) AS id, a.sid AS link_id,
       t.id AS taxonomy_term_id, a.field AS link_type, 'service' AS link_entity, a.value
FROM hsds_attributes a
JOIN (SELECT taxonomy, value, hsds_uuid(hsds_name('taxonomy_term', taxonomy, value)) AS id
      FROM (SELECT DISTINCT taxonomy, value FROM hsds_attributes)) t
  ON a.taxonomy = t.taxonomy AND a.value = t.value;

-- name: terms_used
-- the terms each part uses, by taxonomy
SELECT part, taxonomy, list(DISTINCT value) AS terms FROM hsds_attributes GROUP BY part, taxonomy;
