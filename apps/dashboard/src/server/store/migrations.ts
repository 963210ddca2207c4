/**
 * Numbered schema migrations. Each runs in its own transaction, first on a staging copy of the database,
 * and sets `PRAGMA user_version` to its number. Append new ones; never edit an applied one.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  up: (db: Database.Database) => void;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: (db) => {
      db.exec(`
        CREATE TABLE users (
          name TEXT PRIMARY KEY,
          role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
          hash TEXT NOT NULL,
          created_at INTEGER NOT NULL
        );
        CREATE TABLE sessions (
          id TEXT PRIMARY KEY,
          user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
          created_at INTEGER NOT NULL,
          expires_at INTEGER NOT NULL
        );
        CREATE TABLE agent_tokens (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          hash TEXT NOT NULL UNIQUE,
          created_at INTEGER NOT NULL,
          created_by TEXT NOT NULL,
          last_used_at INTEGER,
          revoked_at INTEGER
        );
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE nodes (
          id TEXT PRIMARY KEY,
          hostname TEXT NOT NULL,
          version TEXT NOT NULL,
          providers TEXT NOT NULL,
          first_seen INTEGER NOT NULL,
          last_seen INTEGER NOT NULL
        );
        CREATE TABLE agent_runs (
          node_id TEXT NOT NULL,
          run_id TEXT NOT NULL,
          last_seq INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (node_id, run_id)
        );
        CREATE TABLE rollup_1m (
          link_key TEXT NOT NULL,
          ts INTEGER NOT NULL,
          seconds REAL NOT NULL,
          up_s REAL NOT NULL,
          records REAL NOT NULL,
          bytes REAL NOT NULL,
          completions REAL NOT NULL,
          backpressure REAL NOT NULL,
          errors REAL NOT NULL,
          occ_sum REAL NOT NULL,
          occ_max REAL NOT NULL,
          samples INTEGER NOT NULL,
          hist BLOB,
          PRIMARY KEY (link_key, ts)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_1h (
          link_key TEXT NOT NULL,
          ts INTEGER NOT NULL,
          seconds REAL NOT NULL,
          up_s REAL NOT NULL,
          records REAL NOT NULL,
          bytes REAL NOT NULL,
          completions REAL NOT NULL,
          backpressure REAL NOT NULL,
          errors REAL NOT NULL,
          occ_sum REAL NOT NULL,
          occ_max REAL NOT NULL,
          samples INTEGER NOT NULL,
          hist BLOB,
          PRIMARY KEY (link_key, ts)
        ) WITHOUT ROWID;
        CREATE TABLE host_1m (
          node_id TEXT NOT NULL,
          ts INTEGER NOT NULL,
          samples INTEGER NOT NULL,
          cpu_sum REAL NOT NULL,
          rss_sum REAL NOT NULL,
          lag_sum REAL NOT NULL,
          PRIMARY KEY (node_id, ts)
        ) WITHOUT ROWID;
        CREATE TABLE host_1h (
          node_id TEXT NOT NULL,
          ts INTEGER NOT NULL,
          samples INTEGER NOT NULL,
          cpu_sum REAL NOT NULL,
          rss_sum REAL NOT NULL,
          lag_sum REAL NOT NULL,
          PRIMARY KEY (node_id, ts)
        ) WITHOUT ROWID;
        CREATE TABLE alert_rules (
          id TEXT PRIMARY KEY,
          json TEXT NOT NULL,
          updated_at INTEGER NOT NULL,
          updated_by TEXT NOT NULL
        );
        CREATE TABLE alert_events (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          ts INTEGER NOT NULL,
          alert_id TEXT NOT NULL,
          rule_id TEXT NOT NULL,
          state TEXT NOT NULL,
          severity TEXT NOT NULL,
          labels TEXT NOT NULL,
          value REAL,
          by TEXT,
          comment TEXT
        );
        CREATE TABLE silences (
          id TEXT PRIMARY KEY,
          matchers TEXT NOT NULL,
          starts_at INTEGER NOT NULL,
          ends_at INTEGER NOT NULL,
          created_by TEXT NOT NULL,
          comment TEXT NOT NULL,
          created_at INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    name: 'indexes for retention and history',
    up: (db) => {
      db.exec(`
        CREATE INDEX rollup_1m_ts ON rollup_1m(ts);
        CREATE INDEX rollup_1h_ts ON rollup_1h(ts);
        CREATE INDEX host_1m_ts ON host_1m(ts);
        CREATE INDEX host_1h_ts ON host_1h(ts);
        CREATE INDEX alert_events_ts ON alert_events(ts);
        CREATE INDEX sessions_expires ON sessions(expires_at);
      `);
    },
  },
  {
    version: 3,
    name: 'active alerts survive restarts',
    up: (db) => {
      db.exec(`
        CREATE TABLE alerts_active (
          id TEXT PRIMARY KEY,
          rule_id TEXT NOT NULL,
          series_key TEXT NOT NULL,
          json TEXT NOT NULL,
          notified INTEGER NOT NULL,
          keep_until INTEGER
        );
      `);
    },
  },
  {
    version: 4,
    name: 'agent tokens bound to node ids; replay positions owned by a token',
    up: (db) => {
      // Tokens from before could speak for any node: they keep doing so (["*"]) until an admin binds them
      // (PATCH /api/agent-tokens/:id); the hub warns about each at start. New tokens name their nodes.
      // A run's replay position is kept per token that wrote it (primary key node, run, token): a run id
      // named by another token starts over and never moves the owner's position. Positions from before
      // have token '' and are taken over by the first token that names the run.
      db.exec(`
        ALTER TABLE agent_tokens ADD COLUMN nodes TEXT NOT NULL DEFAULT '["*"]';
        CREATE TABLE agent_runs_v4 (
          node_id TEXT NOT NULL,
          run_id TEXT NOT NULL,
          token_id TEXT NOT NULL DEFAULT '',
          last_seq INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (node_id, run_id, token_id)
        );
        INSERT INTO agent_runs_v4 (node_id, run_id, token_id, last_seq, updated_at)
          SELECT node_id, run_id, '', last_seq, updated_at FROM agent_runs;
        DROP TABLE agent_runs;
        ALTER TABLE agent_runs_v4 RENAME TO agent_runs;
      `);
    },
  },
  {
    version: 5,
    name: 'audit trail of state-changing API calls',
    up: (db) => {
      // Bounded sizes (audit.ts clips to the same limits); retention prunes by ts and by id, both indexed.
      db.exec(`
        CREATE TABLE audit (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          ts INTEGER NOT NULL,
          user TEXT NOT NULL CHECK (length(user) <= 64),
          role TEXT NOT NULL CHECK (role IN ('', 'viewer', 'operator', 'admin')),
          action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
          target TEXT NOT NULL DEFAULT '' CHECK (length(target) <= 256),
          detail TEXT NOT NULL DEFAULT '{}' CHECK (length(detail) <= 4096 AND json_valid(detail)),
          address TEXT CHECK (address IS NULL OR length(address) <= 64)
        );
        CREATE INDEX audit_ts ON audit(ts);
      `);
    },
  },
];

/** Columns the application needs, with the schema version that introduced each (checked after migrating). */
export const REQUIRED_COLUMNS: Record<string, { table: string; since: number }> = {
  'agent_tokens.nodes': { table: 'agent_tokens', since: 4 },
  'agent_runs.token_id': { table: 'agent_runs', since: 4 },
};

/** Tables the application needs, with the schema version that introduced each (checked after migrating). */
export const REQUIRED_TABLES: Record<string, number> = {
  users: 1,
  sessions: 1,
  agent_tokens: 1,
  settings: 1,
  nodes: 1,
  agent_runs: 1,
  rollup_1m: 1,
  rollup_1h: 1,
  host_1m: 1,
  host_1h: 1,
  alert_rules: 1,
  alert_events: 1,
  silences: 1,
  alerts_active: 3,
  audit: 5,
};
