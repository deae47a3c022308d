-- test/pgtap_probe.sql — included (\i) by the pgTAP files that probe roles.
-- Probe: run q as role r with JWT claims, undo everything it did, and return
-- its first column (or 'ok'), or the SQLSTATE it failed with.
CREATE FUNCTION pg_temp.probe(r text, claims text, q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    res text;
BEGIN
    BEGIN
        PERFORM set_config('request.jwt.claims', claims, true);
        PERFORM set_config('role', r, true);
        EXECUTE q INTO res;
        RAISE EXCEPTION USING ERRCODE = 'ES000', MESSAGE = coalesce(res, 'ok');
    EXCEPTION
        WHEN SQLSTATE 'ES000' THEN RETURN SQLERRM;
        WHEN OTHERS THEN RETURN SQLSTATE;
    END;
END
$$;
