-- A number raised by every change to a workflow or a source, committed with the change, so a
-- node can keep what it read of them (each run's target) and check in the run's own insert
-- that nothing has changed since, whichever node or tool changed them. Statement triggers:
-- one raise per statement however many rows it touched (a sync, a cascade).
CREATE TABLE catalogue_version (
    id integer PRIMARY KEY CHECK (id = 0),
    version bigint NOT NULL
);
INSERT INTO catalogue_version (id, version) VALUES (0, 0);

CREATE FUNCTION spark_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalogue_version SET version = version + 1 WHERE id = 0;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflows_catalogue AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflows
    FOR EACH STATEMENT EXECUTE FUNCTION spark_catalogue_changed();
CREATE TRIGGER sources_catalogue AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION spark_catalogue_changed();
