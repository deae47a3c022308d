-- Supabase's API roles, created the way Supabase does: anon, authenticated and
-- service_role cannot log in; service_role bypasses row-level security;
-- PostgREST logs in as authenticator (NOINHERIT) and switches to one of them.
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
RESET client_min_messages;
