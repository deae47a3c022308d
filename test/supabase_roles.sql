-- Supabase's API roles, created the way Supabase does: anon, authenticated and
-- service_role cannot log in; service_role bypasses row-level security;
-- PostgREST logs in as authenticator (NOINHERIT) and switches to one of them.
-- No default privileges (Supabase's explicit-grants mode for the Data API).
-- Roles are cluster-wide and tests share the server: create only what is missing.
-- Include with \i test/supabase_roles.sql (pg_regress) or from pgTAP files.
SET client_min_messages = warning;
DO $$
BEGIN
    IF to_regrole('anon') IS NULL THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
    IF to_regrole('authenticated') IS NULL THEN CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
    IF to_regrole('service_role') IS NULL THEN CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
    IF to_regrole('authenticator') IS NULL THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END
$$;
GRANT anon, authenticated, service_role TO authenticator;
-- The Data API in explicit-grants mode: no default privileges for the API
-- roles, so what they reach is what elfsofa.grant_api() granted.  Refuse to
-- run the tests in a database that has any.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                WHERE a.grantee IN (SELECT oid FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role'))) THEN
        RAISE EXCEPTION 'default privileges for anon/authenticated/service_role in this database: the tests expect explicit-grants mode';
    END IF;
END
$$;
RESET client_min_messages;
