-- Included at the top of every sql/*.sql: a fresh elfsofa, and ":err" to show
-- the SQLSTATE of the error just raised (LOCATION lines would churn with the C).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS elfsofa CASCADE;
-- ES_INSTALL=upgrade (test/scripts/90_upgrade.sh): 1.0, then ALTER EXTENSION UPDATE
SELECT current_setting('elfsofa_test.install', true) IS NOT DISTINCT FROM 'upgrade' AS es_upgrade \gset
\if :es_upgrade
CREATE EXTENSION elfsofa VERSION '1.0';
ALTER EXTENSION elfsofa UPDATE;
\else
CREATE EXTENSION elfsofa;
\endif
RESET client_min_messages;
\set VERBOSITY default
\set err '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
