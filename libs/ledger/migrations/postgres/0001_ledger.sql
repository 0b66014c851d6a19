-- The append-only event store / evidence chain. See docs/chain-format.md.
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
    UNIQUE (aggregate_type, aggregate_id, version)
);

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

-- The application's role: services log in as a member of goose_app, which may read and append
-- but never change or delete events or checkpoints.
DO $$
BEGIN
    CREATE ROLE goose_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of this cluster created it first
END
$$;
GRANT SELECT, INSERT ON ledger_events, ledger_checkpoints TO goose_app;
GRANT SELECT, UPDATE ON ledger_head TO goose_app;
GRANT SELECT, INSERT, UPDATE ON ledger_cursors TO goose_app;
GRANT USAGE ON SEQUENCE ledger_checkpoints_id_seq TO goose_app;
