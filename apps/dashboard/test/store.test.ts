import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { loadConfig } from '../src/server/config.js';
import { MIGRATIONS, type Migration } from '../src/server/store/migrations.js';
import { assertBounded, DB_FILE, listBackups, restoreDatabase, Store } from '../src/server/store/store.js';
import { tempDir } from './helpers.js';

const log = pino({ level: 'silent' });
const LATEST = MIGRATIONS.at(-1)!.version;
const dirs: string[] = [];
const fresh = () => {
  const d = tempDir('rdmaq-store-');
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const addUser = (s: Store, name: string) =>
  s.db.prepare("INSERT INTO users (name, role, hash, created_at) VALUES (?, 'viewer', 'x', 1)").run(name);
const users = (db: Database.Database) =>
  (db.prepare('SELECT name FROM users ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
const tables = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
    (r) => r.name,
  );

describe('store: staged migrations, backups, restore', () => {
  it('migrates a fresh database to the newest version', async () => {
    const dir = fresh();
    const s = await Store.open({ dataDir: dir, log });
    expect(s.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    expect(s.lastMigration?.applied.map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    s.close();
  });

  it('upgrades an older database: backup first, data kept', async () => {
    const dir = fresh();
    const old = await Store.open({ dataDir: dir, log, migrations: MIGRATIONS.slice(0, 2) });
    addUser(old, 'olga');
    old.close();
    const s = await Store.open({ dataDir: dir, log });
    expect(s.lastMigration).toMatchObject({ from: 2, to: LATEST });
    expect(users(s.db)).toEqual(['olga']);
    expect(tables(s.db)).toContain('alerts_active');
    s.close();
    const b = new Database(listBackups(dir)[0]!.file, { readonly: true });
    expect(b.pragma('user_version', { simple: true })).toBe(2);
    expect(users(b)).toEqual(['olga']);
    b.close();
  });

  it('v4 keeps agent tokens working (bound to any node, as before) and replay positions, after a backup', async () => {
    const dir = fresh();
    const v3 = MIGRATIONS.filter((m) => m.version <= 3);
    const old = await Store.open({ dataDir: dir, log, migrations: v3 });
    old.db
      .prepare(
        "INSERT INTO agent_tokens (id, name, hash, created_at, created_by) VALUES ('t1', 'rack', 'h1', 1, 'admin')",
      )
      .run();
    old.db
      .prepare(
        "INSERT INTO agent_runs (node_id, run_id, last_seq, updated_at) VALUES ('n1', 'r1', 42, 5), ('n2', 'r9', 7, 6)",
      )
      .run();
    old.close();
    const s = await Store.open({ dataDir: dir, log });
    expect(s.lastMigration).toMatchObject({ from: 3, to: LATEST });
    expect(s.lastMigration?.applied.map((m) => m.version)).toContain(4);
    expect(s.db.prepare('SELECT id, nodes FROM agent_tokens').all()).toEqual([{ id: 't1', nodes: '["*"]' }]);
    expect(
      s.db.prepare('SELECT node_id, run_id, token_id, last_seq FROM agent_runs ORDER BY node_id').all(),
    ).toEqual([
      { node_id: 'n1', run_id: 'r1', token_id: '', last_seq: 42 },
      { node_id: 'n2', run_id: 'r9', token_id: '', last_seq: 7 },
    ]);
    // One position per (node, run, token) now.
    s.db
      .prepare(
        "INSERT INTO agent_runs (node_id, run_id, token_id, last_seq, updated_at) VALUES ('n1', 'r1', 't1', 1, 1)",
      )
      .run();
    s.close();
    const backup = listBackups(dir).find((b) => b.file.includes('pre-v'))!;
    const b = new Database(backup.file, { readonly: true });
    expect(b.pragma('user_version', { simple: true })).toBe(3);
    expect(b.prepare('SELECT count(*) AS n FROM agent_runs').get()).toEqual({ n: 2 });
    b.close();
  });

  it('v4 is atomic: a failure after its first statement leaves v3 as it was', async () => {
    const dir = fresh();
    const v3 = MIGRATIONS.filter((m) => m.version <= 3);
    const old = await Store.open({ dataDir: dir, log, migrations: v3 });
    old.db
      .prepare("INSERT INTO agent_runs (node_id, run_id, last_seq, updated_at) VALUES ('n1', 'r1', 42, 5)")
      .run();
    old.close();
    const v4 = MIGRATIONS.find((m) => m.version === 4)!;
    const broken: Migration = {
      ...v4,
      up: (db) => {
        v4.up(db);
        if (!db.name.includes('staging-')) throw new Error('power cut (simulated)');
      },
    };
    await expect(Store.open({ dataDir: dir, log, migrations: [...v3, broken] })).rejects.toMatchObject({
      code: 'ERR_RDMAQ_MIGRATION',
    });
    const db = new Database(path.join(dir, DB_FILE));
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    const cols = (t: string) =>
      (db.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>).map((c) => c.name);
    expect(cols('agent_tokens')).not.toContain('nodes');
    expect(cols('agent_runs')).not.toContain('token_id');
    expect(db.prepare('SELECT last_seq FROM agent_runs').all()).toEqual([{ last_seq: 42 }]);
    db.close();
  });

  it('a migration failing halfway leaves the database as it was, and a backup exists', async () => {
    const dir = fresh();
    const s = await Store.open({ dataDir: dir, log });
    addUser(s, 'alice');
    s.close();
    const failing: Migration = {
      version: LATEST + 1,
      name: 'fails halfway',
      up: (db) => {
        db.exec('CREATE TABLE extra (x INTEGER)');
        db.exec('INSERT INTO extra VALUES (1)');
        db.exec("UPDATE users SET role = 'admin' WHERE name = 'alice'");
        throw new Error('boom in the middle of migration 3');
      },
    };
    await expect(
      Store.open({ dataDir: dir, log, migrations: [...MIGRATIONS, failing] }),
    ).rejects.toMatchObject({
      code: 'ERR_RDMAQ_MIGRATION',
      message: expect.stringMatching(/staging copy.*NOT changed.*boom/),
    });
    const db = new Database(path.join(dir, DB_FILE));
    expect(db.pragma('user_version', { simple: true })).toBe(LATEST);
    expect(tables(db)).not.toContain('extra');
    expect(db.prepare("SELECT role FROM users WHERE name = 'alice'").get()).toEqual({ role: 'viewer' });
    db.close();
    const backups = listBackups(dir);
    expect(backups.length).toBe(1);
    const b = new Database(backups[0]!.file, { readonly: true });
    expect(users(b)).toEqual(['alice']);
    b.close();
    // No staging copy is left behind.
    expect(existsSync(path.join(dir, 'backups'))).toBe(true);
  });

  it('a migration that passes staging but fails on the real database is rolled back (own transaction)', async () => {
    const dir = fresh();
    (await Store.open({ dataDir: dir, log })).close();
    const onlyReal: Migration = {
      version: LATEST + 1,
      name: 'fails on the real one only',
      up: (db) => {
        db.exec('CREATE TABLE extra2 (x INTEGER)');
        if (!db.name.includes('staging-')) throw new Error('disk full (simulated)');
      },
    };
    await expect(
      Store.open({ dataDir: dir, log, migrations: [...MIGRATIONS, onlyReal] }),
    ).rejects.toMatchObject({
      code: 'ERR_RDMAQ_MIGRATION',
      message: expect.stringMatching(new RegExp(`real database.*v${LATEST}`)),
    });
    const db = new Database(path.join(dir, DB_FILE));
    expect(db.pragma('user_version', { simple: true })).toBe(LATEST);
    expect(tables(db)).not.toContain('extra2');
    db.close();
  });

  it('a migration whose result fails the app checks is refused on staging', async () => {
    const dir = fresh();
    (await Store.open({ dataDir: dir, log })).close();
    const dropsTable: Migration = {
      version: LATEST + 1,
      name: 'drops a needed table',
      up: (db) => db.exec('DROP TABLE silences'),
    };
    await expect(Store.open({ dataDir: dir, log, migrations: [...MIGRATIONS, dropsTable] })).rejects.toThrow(
      /missing tables: silences/,
    );
    const db = new Database(path.join(dir, DB_FILE));
    expect(tables(db)).toContain('silences');
    db.close();
  });

  it('restore brings back the backed-up content', async () => {
    const dir = fresh();
    const s = await Store.open({ dataDir: dir, log });
    addUser(s, 'alice');
    const backup = await s.backup();
    addUser(s, 'mallory');
    s.destructive("DELETE FROM users WHERE name = 'alice'").run();
    expect(users(s.db)).toEqual(['mallory']);
    s.close();
    const r = await restoreDatabase(dir, backup, log);
    expect(r.previousBackup).toBeDefined();
    const db = new Database(path.join(dir, DB_FILE));
    expect(users(db)).toEqual(['alice']);
    db.close();
    // The state before the restore was itself saved.
    const prev = new Database(r.previousBackup!, { readonly: true });
    expect(users(prev)).toEqual(['mallory']);
    prev.close();
  });

  it('restore refuses a file that is not a sound database', async () => {
    const dir = fresh();
    (await Store.open({ dataDir: dir, log })).close();
    await expect(restoreDatabase(dir, path.join(dir, 'nope.db'), log)).rejects.toThrow(/does not exist/);
  });

  it('the scheduled backup runs and keeps the newest N', async () => {
    const dir = fresh();
    const s = await Store.open({ dataDir: dir, log, backupKeep: 2 });
    addUser(s, 'bob');
    const backups = vi.spyOn(s, 'backup');
    s.startBackupSchedule(100);
    // More scheduled backups written than it keeps, so pruning had to happen.
    const written = () => backups.mock.settledResults.filter((r) => r.type === 'fulfilled').length;
    await waitFor('four scheduled backups written', () => written() >= 4, 20_000);
    await s.stopBackupSchedule();
    expect(backups.mock.calls.every(([label]) => label === 'scheduled')).toBe(true);
    expect(listBackups(dir).length).toBeLessThanOrEqual(2);
    expect(listBackups(dir).every((b) => b.file.includes('scheduled'))).toBe(true);
    const b = new Database(listBackups(dir).at(-1)!.file, { readonly: true });
    expect(users(b)).toEqual(['bob']);
    b.close();
    s.close();
  });

  it('refuses destructive SQL without a WHERE', () => {
    expect(() => assertBounded('DELETE FROM users')).toThrow(/without WHERE/);
    expect(() => assertBounded('update users set role = 1')).toThrow(/without WHERE/);
    expect(() => assertBounded('DELETE FROM users WHERE name = ?')).not.toThrow();
  });
});

describe('config', () => {
  it('names the bad key and how to set it', () => {
    expect(() => loadConfig({ env: { RDMAQ_DATA: '/tmp/x', PORT: '99999' } })).toThrow(
      /port: .*--port or PORT/s,
    );
    expect(() => loadConfig({ env: { PORT: '80' } })).toThrow(/dataDir: .*--data or RDMAQ_DATA/s);
    expect(() => loadConfig({ env: { RDMAQ_DATA: '/tmp/x', PORT: 'eighty' } })).toThrow(
      /PORT="eighty" is not a number/,
    );
    expect(() =>
      loadConfig({ env: { RDMAQ_DATA: '/tmp/x', RDMAQ_ADMIN_USER: 'a', RDMAQ_ADMIN_PASSWORD: 'short' } }),
    ).toThrow(/admin.password: use at least 10 characters/);
    const c = loadConfig({
      flags: { port: '9000', data: 'rel' },
      env: { PORT: '80', RDMAQ_BACKUP_KEEP: '3' },
    });
    expect(c.port).toBe(9000);
    expect(path.isAbsolute(c.dataDir)).toBe(true);
    expect(c.backup).toEqual({ intervalS: 21600, keep: 3 });
  });
});

const BIN = fileURLToPath(new URL('../dist/server/bin.js', import.meta.url));
describe('rdmaq-dashboard db commands (built bin)', () => {
  it('backup, migrate --dry-run and restore work from the command line', async () => {
    if (!existsSync(BIN)) throw new Error(`build the package first: ${BIN} is missing`);
    const dir = fresh();
    const s = await Store.open({ dataDir: dir, log });
    addUser(s, 'carol');
    s.close();
    const run = (...args: string[]) =>
      execFileSync(process.execPath, [BIN, ...args, '--data', dir], {
        encoding: 'utf8',
        env: { ...process.env, RDMAQ_LOG_LEVEL: 'silent' },
      });
    expect(run('db', 'migrate', '--dry-run')).toMatch(/nothing to migrate/);
    const older = fresh();
    (await Store.open({ dataDir: older, log, migrations: MIGRATIONS.slice(0, 2) })).close();
    const dry = execFileSync(process.execPath, [BIN, 'db', 'migrate', '--dry-run', '--data', older], {
      encoding: 'utf8',
      env: { ...process.env, RDMAQ_LOG_LEVEL: 'silent' },
    });
    expect(dry).toMatch(new RegExp(`dry run: would apply v3 .*v2 → v${LATEST}.*database unchanged`));
    const still = new Database(path.join(older, DB_FILE), { readonly: true });
    expect(still.pragma('user_version', { simple: true })).toBe(2);
    still.close();
    const file = run('db', 'backup').trim();
    expect(existsSync(file)).toBe(true);
    const db = new Database(path.join(dir, DB_FILE));
    db.prepare("DELETE FROM users WHERE name = 'carol'").run();
    db.close();
    expect(run('db', 'restore', file)).toMatch(/restored/);
    const after = new Database(path.join(dir, DB_FILE));
    expect(users(after)).toEqual(['carol']);
    after.close();
  });
});
