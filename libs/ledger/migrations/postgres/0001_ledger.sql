-- The append-only event store / evidence chain, chain format v2. See docs/chain-format.md.
CREATE TABLE ledger_events (
    position       BIGINT PRIMARY KEY CHECK (position >= 0),
    event_id       UUID   NOT NULL UNIQUE,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    version        BIGINT NOT NULL CHECK (version >= 1),
    event_type     TEXT   NOT NULL,
    -- The canonical record, byte for byte what is hashed (bytea: never re-encoded).
    record         BYTEA  NOT NULL,
    digest         BYTEA  NOT NULL CHECK (length(digest) = 32),
    -- Merkle subtree hashes completed by this leaf (levels 1..trailing_ones(position)).
    subtrees       BYTEA  NOT NULL,
    -- The commit seal (a signed note) on the last row of each commit; NULL inside a commit.
    seal           TEXT,
    UNIQUE (aggregate_type, aggregate_id, version)
);
CREATE INDEX ledger_events_sealed ON ledger_events (position) WHERE seal IS NOT NULL;

-- One row: the size of the log and the digest of its last event. Appenders lock it
-- (SELECT ... FOR UPDATE) so positions are assigned in commit order and never leave gaps.
CREATE TABLE ledger_head (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    size        BIGINT NOT NULL,
    last_digest BYTEA  NOT NULL
);
INSERT INTO ledger_head (singleton, size, last_digest) VALUES (TRUE, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE ledger_checkpoints (
    id        BIGSERIAL PRIMARY KEY,
    tree_size BIGINT      NOT NULL CHECK (tree_size >= 0),
    root      BYTEA       NOT NULL,
    note      TEXT        NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Durable cursors of log followers (the outbox relay's progress, say).
CREATE TABLE ledger_cursors (
    name          TEXT PRIMARY KEY,
    next_position BIGINT NOT NULL CHECK (next_position >= 0)
);

-- Refuse UPDATE, DELETE and TRUNCATE for everyone. Owners and superusers can disable a trigger:
-- this stops mistakes; tamper evidence comes from the chain and the signed checkpoints.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER ledger_events_append_only BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Roles. Services log in as members of these, never as the tables' owner:
--   goose_app          reads the log; appends ONLY through ledger_lock_head() + ledger_append(),
--                      which set positions and the head themselves; no direct INSERT or UPDATE.
--   goose_checkpointer inserts checkpoints (the service that signs them: evidence).
DO $$
BEGIN
    CREATE ROLE goose_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of this cluster created it first
END
$$;
DO $$
BEGIN
    CREATE ROLE goose_checkpointer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Locks the head for this transaction and returns it: the first step of every append.
CREATE FUNCTION ledger_lock_head(OUT size BIGINT, OUT last_digest BYTEA)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT size, last_digest FROM public.ledger_head FOR UPDATE
$$;

-- Appends one commit. The head moves only here, to exactly the rows inserted: positions must
-- continue the log, the first record must name the head's position and link to its digest,
-- and the commit's last row must carry its seal. What the database cannot check (SHA3
-- digests, links inside the commit, Merkle nodes, the seal's signature) `goosectl verify`
-- checks.
CREATE FUNCTION ledger_append(
    p_positions BIGINT[], p_event_ids UUID[], p_types TEXT[], p_ids TEXT[], p_versions BIGINT[],
    p_event_types TEXT[], p_records BYTEA[], p_digests BYTEA[], p_subtrees BYTEA[], p_seals TEXT[])
RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head_size   BIGINT;
    head_digest BYTEA;
    n           INT := coalesce(cardinality(p_positions), 0);
    lo          BIGINT;
    hi          BIGINT;
BEGIN
    SELECT h.size, h.last_digest INTO head_size, head_digest FROM public.ledger_head h FOR UPDATE;
    IF n = 0 THEN
        RAISE EXCEPTION 'ledger_append: empty commit' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_records) <> n OR cardinality(p_digests) <> n OR cardinality(p_seals) <> n THEN
        RAISE EXCEPTION 'ledger_append: arrays of different lengths' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Positions: n distinct values (the primary key) from head_size to head_size + n - 1, so
    -- exactly the next n. The first record names the head's position and links to the head's
    -- digest; the last row carries the seal and becomes the head. (Links inside the commit,
    -- digests and the seal's signature are the verifier's: SQL cannot hash SHA3.)
    SELECT min(x), max(x) INTO lo, hi FROM UNNEST(p_positions) AS x;
    IF lo <> head_size OR hi <> head_size + n - 1
       OR substring(p_records[1] FROM 13 FOR 8) <> int8send(head_size)
       OR substring(p_records[1] FROM 21 FOR 32) <> head_digest
       OR p_seals[n] IS NULL THEN
        RAISE EXCEPTION 'ledger_append: the commit does not continue the log at position % (positions %..%, first record''s position and link, seal on the last row)',
            head_size, lo, hi USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.ledger_events
        (position, event_id, aggregate_type, aggregate_id, version, event_type, record, digest, subtrees, seal)
    SELECT * FROM UNNEST(p_positions, p_event_ids, p_types, p_ids, p_versions, p_event_types,
                         p_records, p_digests, p_subtrees, p_seals);
    UPDATE public.ledger_head SET size = head_size + n, last_digest = p_digests[n];
    PERFORM pg_notify('goose_ledger', (head_size + n)::text);
    RETURN head_size + n;
END
$$;

REVOKE ALL ON FUNCTION ledger_lock_head() FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger_append(BIGINT[], UUID[], TEXT[], TEXT[], BIGINT[], TEXT[], BYTEA[], BYTEA[], BYTEA[], TEXT[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_lock_head() TO goose_app;
GRANT EXECUTE ON FUNCTION ledger_append(BIGINT[], UUID[], TEXT[], TEXT[], BIGINT[], TEXT[], BYTEA[], BYTEA[], BYTEA[], TEXT[]) TO goose_app;
GRANT SELECT ON ledger_events, ledger_checkpoints, ledger_head TO goose_app, goose_checkpointer;
GRANT SELECT, INSERT, UPDATE ON ledger_cursors TO goose_app;
GRANT INSERT ON ledger_checkpoints TO goose_checkpointer;
GRANT USAGE ON SEQUENCE ledger_checkpoints_id_seq TO goose_checkpointer;
-- Services that log in as these roles still run the (already applied) migrations at start.
GRANT SELECT ON _sqlx_migrations TO goose_app, goose_checkpointer;
