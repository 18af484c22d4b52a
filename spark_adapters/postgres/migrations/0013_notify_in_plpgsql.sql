-- spark_notify was a SQL function with a WHERE clause: PostgreSQL cannot inline such a
-- function, and (before PostgreSQL 18) parses and plans its body again on every call. It is
-- called for every task a statement writes, a run's release included, most of them with no
-- hint to send. In PL/pgSQL the body's plan is kept for the session, and a call with nothing to
-- send runs no statement at all.
CREATE OR REPLACE FUNCTION spark_notify(kind text, id text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF kind IS NOT NULL THEN
        PERFORM pg_notify(spark_channel(), json_build_object('kind', kind, 'id', id)::text);
    END IF;
END;
$$;
