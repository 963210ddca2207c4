/**
 * The SQLite store (better-sqlite3, synchronous, one connection on the event-loop thread).
 *
 * Safety rules: migrations run first on a staging copy (checked with PRAGMA integrity_check and the app's
 * own checks), each in a transaction, after an online backup; backups also run on a schedule and the
 * newest N are kept; every DELETE/UPDATE goes through `destructive()`, which refuses SQL without a WHERE.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HubError } from '../errors.js';
import type { Logger } from '../log.js';
import { MIGRATIONS, type Migration, REQUIRED_COLUMNS, REQUIRED_TABLES } from './migrations.js';

export const DB_FILE = 'rdmaq.db';
export const BACKUP_DIR = 'backups';

export interface MigrationReport {
  from: number;
  to: number;
  applied: Array<{ version: number; name: string }>;
  dryRun: boolean;
  backup?: string;
}

export interface OpenOptions {
  dataDir: string;
  log: Logger;
  migrations?: Migration[];
  backupKeep?: number;
  /** Extra checks run on the staging copy after migrating; return problems (empty = fine). */
  checks?: (db: Database.Database) => string[];
}

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').replace('Z', '');
}

function rmDbFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${file}${suffix}`, { force: true });
}

function configure(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

/** Problems found by SQLite's own check and the app's checks; empty when the database is sound. */
export function checkDatabase(
  db: Database.Database,
  expectVersion: number,
  extra?: (db: Database.Database) => string[],
): string[] {
  const problems: string[] = [];
  const integrity = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  const bad = integrity.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  if (bad.length) problems.push(`integrity_check: ${bad.slice(0, 3).join('; ')}`);
  const fk = db.pragma('foreign_key_check') as unknown[];
  if (fk.length) problems.push(`foreign_key_check: ${fk.length} violation(s)`);
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== expectVersion) problems.push(`user_version is ${version}, expected ${expectVersion}`);
  if (expectVersion >= 1) {
    const tables = new Set(
      (
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
      ).map((r) => r.name),
    );
    const missing = Object.entries(REQUIRED_TABLES)
      .filter(([t, since]) => since <= expectVersion && !tables.has(t))
      .map(([t]) => t);
    if (missing.length) problems.push(`missing tables: ${missing.join(', ')}`);
    const missingCols = Object.entries(REQUIRED_COLUMNS)
      .filter(([, c]) => c.since <= expectVersion && tables.has(c.table))
      .filter(([name, c]) => {
        const cols = db.prepare(`PRAGMA table_info(${c.table})`).all() as Array<{ name: string }>;
        return !cols.some((col) => col.name === name.split('.')[1]);
      })
      .map(([name]) => name);
    if (missingCols.length) problems.push(`missing columns: ${missingCols.join(', ')}`);
  }
  if (extra) problems.push(...extra(db));
  return problems;
}

/** Online backup of `db` into `<dataDir>/backups/rdmaq-<time>-<label>.db`; keeps the newest `keep`. */
export async function backupDatabase(db: Database.Database, dataDir: string, label: string, keep: number) {
  const dir = path.join(dataDir, BACKUP_DIR);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `rdmaq-${stamp()}-${label.replace(/[^a-z0-9-]/gi, '_')}.db`);
  await db.backup(file);
  pruneBackups(dataDir, keep);
  return file;
}

export function listBackups(dataDir: string): Array<{ file: string; bytes: number; mtimeMs: number }> {
  const dir = path.join(dataDir, BACKUP_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^rdmaq-.*\.db$/.test(f))
    .sort()
    .map((f) => {
      const st = statSync(path.join(dir, f));
      return { file: path.join(dir, f), bytes: st.size, mtimeMs: st.mtimeMs };
    });
}

export function pruneBackups(dataDir: string, keep: number): string[] {
  const all = listBackups(dataDir);
  const drop = all.slice(0, Math.max(0, all.length - keep));
  for (const b of drop) unlinkSync(b.file);
  return drop.map((b) => b.file);
}

/**
 * Brings `db` to the newest migration: backup, then every pending migration on a staging copy (each in a
 * transaction), checks, and only then the same on the real database. Throws ERR_RDMAQ_MIGRATION with the
 * real database unchanged when the staging copy fails.
 */
export async function migrateDatabase(
  db: Database.Database,
  opts: {
    dataDir: string;
    log: Logger;
    migrations?: Migration[];
    dryRun?: boolean;
    backupKeep?: number;
    checks?: (db: Database.Database) => string[];
  },
): Promise<MigrationReport> {
  const migrations = [...(opts.migrations ?? MIGRATIONS)].sort((a, b) => a.version - b.version);
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (from > latest) {
    throw new HubError(
      'ERR_RDMAQ_DB_NEWER',
      `database schema v${from} is newer than this dashboard knows (v${latest}); upgrade the dashboard or restore an older backup`,
    );
  }
  const pending = migrations.filter((m) => m.version > from);
  const report: MigrationReport = {
    from,
    to: pending.at(-1)?.version ?? from,
    applied: pending.map((m) => ({ version: m.version, name: m.name })),
    dryRun: !!opts.dryRun,
  };
  if (!pending.length) return report;

  const fresh =
    from === 0 && (db.prepare('SELECT count(*) AS n FROM sqlite_master').get() as { n: number }).n === 0;
  if (!opts.dryRun && !fresh) {
    report.backup = await backupDatabase(db, opts.dataDir, `pre-v${report.to}`, opts.backupKeep ?? 8);
    opts.log.info({ backup: report.backup }, 'backup taken before migration');
  }

  const staging = path.join(opts.dataDir, `staging-${process.pid}-${Date.now()}.db`);
  try {
    await db.backup(staging);
    const st = new Database(staging);
    try {
      st.pragma('foreign_keys = ON');
      applyMigrations(st, pending);
      const problems = checkDatabase(st, report.to, opts.checks);
      if (problems.length) throw new Error(`checks failed: ${problems.join('; ')}`);
    } finally {
      st.close();
    }
  } catch (err) {
    throw new HubError(
      'ERR_RDMAQ_MIGRATION',
      `migration to v${report.to} failed on the staging copy, the database was NOT changed (still v${from}): ${(err as Error).message}`,
      500,
      { cause: err },
    );
  } finally {
    rmDbFiles(staging);
  }
  if (opts.dryRun) return report;

  try {
    applyMigrations(db, pending);
  } catch (err) {
    const now = db.pragma('user_version', { simple: true }) as number;
    throw new HubError(
      'ERR_RDMAQ_MIGRATION',
      `migration failed on the real database after passing on staging; it is at v${now} (each migration is atomic)${
        report.backup ? `; backup: ${report.backup}` : ''
      }: ${(err as Error).message}`,
      500,
      { cause: err },
    );
  }
  opts.log.info({ from, to: report.to }, 'database migrated');
  return report;
}

function applyMigrations(db: Database.Database, pending: Migration[]): void {
  for (const m of pending) {
    db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

/** Refuses DELETE/UPDATE without a WHERE clause (the "no destructive statement unbounded" rule). */
export function assertBounded(sql: string): void {
  const s = sql.replace(/\s+/g, ' ').trim();
  if (/^(DELETE|UPDATE)\b/i.test(s) && !/\bWHERE\b/i.test(s)) {
    throw new HubError('ERR_RDMAQ_UNBOUNDED', `refusing a destructive statement without WHERE: ${s}`);
  }
}

export class Store {
  readonly db: Database.Database;
  readonly file: string;
  readonly dataDir: string;
  private readonly log: Logger;
  private readonly keep: number;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  lastMigration: MigrationReport | undefined;

  private constructor(db: Database.Database, opts: OpenOptions) {
    this.db = db;
    this.dataDir = opts.dataDir;
    this.file = path.join(opts.dataDir, DB_FILE);
    this.log = opts.log;
    this.keep = opts.backupKeep ?? 8;
  }

  /** Opens (creating if needed) and migrates `<dataDir>/rdmaq.db`. */
  static async open(opts: OpenOptions): Promise<Store> {
    mkdirSync(opts.dataDir, { recursive: true });
    const db = new Database(path.join(opts.dataDir, DB_FILE));
    try {
      configure(db);
      const store = new Store(db, opts);
      store.lastMigration = await migrateDatabase(db, {
        dataDir: opts.dataDir,
        log: opts.log,
        ...(opts.migrations ? { migrations: opts.migrations } : {}),
        ...(opts.checks ? { checks: opts.checks } : {}),
        backupKeep: store.keep,
      });
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Prepares a DELETE/UPDATE after checking it is bounded by a WHERE. */
  destructive(sql: string): Database.Statement {
    assertBounded(sql);
    return this.db.prepare(sql);
  }

  async backup(label = 'manual'): Promise<string> {
    const file = await backupDatabase(this.db, this.dataDir, label, this.keep);
    this.log.info({ file }, 'database backup written');
    return file;
  }

  /** Backs up every `intervalMs` (never two at once); errors are logged, never thrown. */
  startBackupSchedule(intervalMs: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.inflight) return;
      this.inflight = this.backup('scheduled')
        .then(() => undefined)
        .catch((err: Error) => this.log.error({ err }, 'scheduled backup failed'))
        .finally(() => {
          this.inflight = undefined;
        });
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a backup in progress to finish. */
  async stopBackupSchedule(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inflight;
  }

  getSetting(key: string): string | undefined {
    return (
      this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined
    )?.value;
  }

  setSetting(key: string, value: string): void {
    this.db
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(key, value);
  }

  /** Closes the database (call `stopBackupSchedule()` first when a schedule ran). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.db.open) this.db.close();
  }
}

/** A pid lock so `db restore` refuses to run under a live server. */
export function acquireLock(dataDir: string): () => void {
  const file = path.join(dataDir, 'rdmaq.lock');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new HubError(
        'ERR_RDMAQ_LOCKED',
        `data folder ${dataDir} is in use by process ${pid}; stop that dashboard first`,
      );
    }
  }
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces the database in `dataDir` by the content of backup `file`: checks the file, backs the current
 * database up, copies with the SQLite backup API, then migrates if the backup is from an older schema.
 */
export async function restoreDatabase(dataDir: string, file: string, log: Logger, keep = 8) {
  if (!existsSync(file)) throw new HubError('ERR_RDMAQ_RESTORE', `backup file ${file} does not exist`);
  const src = new Database(file, { readonly: true, fileMustExist: true });
  let version: number;
  try {
    const v = src.pragma('user_version', { simple: true }) as number;
    const problems = checkDatabase(src, v);
    if (problems.length) {
      throw new HubError(
        'ERR_RDMAQ_RESTORE',
        `${file} is not a sound rdmaq database: ${problems.join('; ')}`,
      );
    }
    version = v;
    const release = acquireLock(dataDir);
    try {
      const target = path.join(dataDir, DB_FILE);
      let safety: string | undefined;
      if (existsSync(target)) {
        const cur = new Database(target);
        try {
          safety = await backupDatabase(cur, dataDir, 'pre-restore', keep + 1);
        } finally {
          cur.close();
        }
      }
      rmDbFiles(target);
      await src.backup(target);
      const store = await Store.open({ dataDir, log, backupKeep: keep });
      store.close();
      return { restoredFrom: file, schemaVersion: version, previousBackup: safety };
    } finally {
      release();
    }
  } finally {
    src.close();
  }
}
