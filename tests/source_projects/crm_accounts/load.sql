-- The rows of data/accounts.csv in PostgreSQL, typed: what the CRM's
-- database would hold. `accounts_wrong` holds the same columns with
-- `employees` as text and without `tier`, for R0013.
CREATE SCHEMA crm;
CREATE TABLE crm.staging (
  "accountId" text, name text, employees text, tier text, tags text,
  revenue text, active text, "updatedAt" text
);
\copy crm.staging FROM 'data/accounts.csv' CSV HEADER
CREATE TYPE crm.tier AS ENUM ('gold', 'silver', 'bronze', 'platinum');
CREATE TABLE crm.accounts (
  "accountId" varchar(20), name text, employees integer, tier crm.tier,
  tags varchar(40)[], revenue numeric(12, 2), active boolean,
  "updatedAt" timestamptz, notes text
);
INSERT INTO crm.accounts
SELECT "accountId", name, employees::integer, tier::crm.tier,
       string_to_array(tags, '|'), revenue::numeric, active::boolean,
       "updatedAt"::timestamptz, 'internal'
FROM crm.staging;
CREATE TABLE crm.accounts_wrong AS
SELECT "accountId", name, employees::text AS employees, tags, revenue, active,
       "updatedAt"
FROM crm.accounts;
