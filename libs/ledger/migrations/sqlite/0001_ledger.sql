-- The append-only event store / evidence chain (embedded), chain format v2. Same layout as
-- PostgreSQL's; an embedded ledger has no roles: its file's permissions are its access control.
CREATE TABLE ledger_events (
    position       INTEGER PRIMARY KEY CHECK (position >= 0),
    event_id       BLOB    NOT NULL UNIQUE,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    event_type     TEXT    NOT NULL,
    record         BLOB    NOT NULL,
    digest         BLOB    NOT NULL CHECK (length(digest) = 32),
    subtrees       BLOB    NOT NULL,
    -- The commit seal (a signed note) on the last row of each commit; NULL inside a commit.
    seal           TEXT,
    UNIQUE (aggregate_type, aggregate_id, version)
);
CREATE INDEX ledger_events_sealed ON ledger_events (position) WHERE seal IS NOT NULL;

CREATE TABLE ledger_head (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    size        INTEGER NOT NULL,
    last_digest BLOB    NOT NULL
);
INSERT INTO ledger_head (singleton, size, last_digest) VALUES (1, 0, zeroblob(32));

CREATE TABLE ledger_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    root      BLOB    NOT NULL,
    note      TEXT    NOT NULL,
    signed_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE ledger_cursors (
    name          TEXT PRIMARY KEY,
    next_position INTEGER NOT NULL CHECK (next_position >= 0)
);

CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger table ledger_events is append-only: UPDATE refused'); END;
CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger table ledger_events is append-only: DELETE refused'); END;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger table ledger_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger table ledger_checkpoints is append-only: DELETE refused'); END;
