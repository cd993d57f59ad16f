-- materialized: view
-- People the CRM does not have yet: seen only in Zoom, with the last name
-- Salesforce requires. `weft demo` upserts them into Salesforce Contacts by
-- the email as external id; once Salesforce holds them (the next run reads
-- them back), they are no longer "zoom only" and leave this model, and an
-- upsert sync sends nothing for them.
-- Portable SQL: it runs in DuckDB and PostgreSQL alike.
SELECT email, first_name, last_name
FROM models.people
WHERE sources = 'zoom'
  AND last_name IS NOT NULL
  AND trim(last_name) <> ''
