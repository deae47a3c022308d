-- elfsofa 1.0 -> 1.1 (ALTER EXTENSION elfsofa UPDATE).
--
-- 1.0 is the install script users have (src/sql/versions/elfsofa--1.0.sql,
-- frozen); every SQL change since lives here, and a new install runs the
-- current script (src/sql/*.sql) instead.  The C library keeps every entry
-- point a 1.0 definition names, with the same meaning, so a 1.0 database works
-- against the 1.1 library before and after this script runs.
\echo Use "ALTER EXTENSION elfsofa UPDATE TO '1.1'" to load this file. \quit

-- No SQL object changed so far: 1.1 changed the C library (its layout, order
-- numbers' year under elfsofa.order_number_timezone, the restore hook) and the
-- install script's restore branch, which runs only in CREATE EXTENSION.
