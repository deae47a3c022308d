-- Included at the top of every sql/*.sql: a fresh elfsofa, and ":err" to show
-- the SQLSTATE of the error just raised (LOCATION lines would churn with the C).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS elfsofa CASCADE;
CREATE EXTENSION elfsofa;
RESET client_min_messages;
\set VERBOSITY default
\set err '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
