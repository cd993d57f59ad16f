-- materialized: table
-- One row per person: Zoom webinar registrants and Salesforce contacts,
-- de-duplicated by normalised email (lower(trim(email))). The name is the
-- most recently updated one; `sources` lists where the person was seen.
-- Portable SQL: it runs in DuckDB and PostgreSQL alike.
WITH seen AS (
    SELECT lower(trim(email)) AS email,
           first_name,
           last_name,
           'zoom' AS source,
           create_time AS updated_at
    FROM zoom.webinar_registrants
    UNION ALL
    SELECT lower(trim("Email")),
           "FirstName",
           "LastName",
           'salesforce',
           "LastModifiedDate"
    FROM salesforce."Contact"
    WHERE "_weft_deleted_at" IS NULL
),
people AS (
    SELECT * FROM seen WHERE email IS NOT NULL AND email <> ''
),
latest AS (
    SELECT email, first_name, last_name
    FROM (
        SELECT email, first_name, last_name,
               row_number() OVER (
                   PARTITION BY email
                   ORDER BY updated_at DESC NULLS LAST, source, first_name, last_name
               ) AS newest_first
        FROM people
    ) ranked
    WHERE newest_first = 1
),
origins AS (
    SELECT email,
           string_agg(DISTINCT source, ',' ORDER BY source) AS sources,
           max(updated_at) AS updated_at
    FROM people
    GROUP BY email
)
SELECT latest.email, latest.first_name, latest.last_name,
       trim(concat_ws(' ', latest.first_name, latest.last_name)) AS full_name,
       origins.sources, origins.updated_at
FROM latest
JOIN origins USING (email)
ORDER BY latest.email
