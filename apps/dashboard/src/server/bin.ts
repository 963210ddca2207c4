#!/usr/bin/env node
/**
 * rdmaq-dashboard serve [--port N] [--data DIR] [--host H] [--config FILE]
 * rdmaq-dashboard db backup | db restore <file> | db migrate [--dry-run]   [--data DIR]
 * rdmaq-dashboard check   (the configuration, and whether a configured TSDB answers)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { HubError } from './errors.js';
import { createLogger } from './log.js';
import { acquireLock, backupDatabase, DB_FILE, migrateDatabase, restoreDatabase } from './store/store.js';
import { checkTsdb } from './tsdb/index.js';

const USAGE = `usage:
  rdmaq-dashboard serve [--port N] [--data DIR] [--host ADDR] [--config FILE.json]
  rdmaq-dashboard db backup              [--data DIR]
  rdmaq-dashboard db restore <file>      [--data DIR]   (stop the server first)
  rdmaq-dashboard db migrate [--dry-run] [--data DIR]
  rdmaq-dashboard check [--data DIR] [--config FILE.json]   (config valid? TSDB answers?)
environment: PORT, RDMAQ_DATA, RDMAQ_HOST, RDMAQ_ADMIN_USER/RDMAQ_ADMIN_PASSWORD, RDMAQ_TLS_CERT/RDMAQ_TLS_KEY,
  RDMAQ_ALLOWED_ORIGINS, RDMAQ_WEBHOOK_URLS, RDMAQ_ALERTMANAGER_URL, RDMAQ_BACKUP_INTERVAL_S, RDMAQ_BACKUP_KEEP,
  RDMAQ_LOG_LEVEL, RDMAQ_TSDB_URL (or RDMAQ_TSDB_WRITE_URL/RDMAQ_TSDB_QUERY_URL), RDMAQ_TSDB_USER/RDMAQ_TSDB_PASSWORD,
  RDMAQ_TSDB_HEADERS, RDMAQ_TSDB_CA (see README.md)`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string' },
      config: { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, arg] = positionals;
  if (values.help || !cmd) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const flags = {
    ...(values.port !== undefined ? { port: values.port } : {}),
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.config !== undefined ? { config: values.config } : {}),
  };
  const config = loadConfig({ flags });
  const log = createLogger(config.logLevel);

  if (cmd === 'serve') {
    const app = await buildApp({ config, logger: log });
    const addr = await app.listen();
    log.info({ url: app.url(), port: addr.port, data: config.dataDir }, 'rdmaq dashboard listening');
    if (app.setupToken) {
      // Printed on stdout on purpose: the one way to create the first admin when none was configured.
      console.log(
        `\n  No user exists yet. Create the first admin at ${app.url()}/setup or with\n  curl -X POST ${app.url()}/api/auth/setup -H 'content-type: application/json' \\\n    -d '{"token":"${app.setupToken}","name":"admin","password":"<at least 10 characters>"}'\n  (this setup token works once)\n`,
      );
    }
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      app
        .close()
        .then(() => process.exit(0))
        .catch((err: Error) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    return -1;
  }

  if (cmd === 'check') {
    console.log('configuration: valid');
    if (!config.tsdb) {
      console.log('TSDB: none configured (history from SQLite roll-ups)');
      return 0;
    }
    const r = await checkTsdb(config.tsdb);
    for (const l of r.lines) console.log(`TSDB ${l}`);
    return r.ok ? 0 : 1;
  }

  if (cmd === 'db') {
    const file = path.join(config.dataDir, DB_FILE);
    if (sub === 'backup') {
      if (!existsSync(file))
        throw new HubError('ERR_RDMAQ_NO_DB', `no database at ${file}; check --data / RDMAQ_DATA`);
      // An online backup is safe while the server runs (WAL: readers do not block the writer).
      const db = new Database(file, { fileMustExist: true });
      try {
        const out = await backupDatabase(db, config.dataDir, 'manual', config.backup.keep);
        console.log(out);
      } finally {
        db.close();
      }
      return 0;
    }
    if (sub === 'restore') {
      if (!arg) throw new HubError('ERR_RDMAQ_USAGE', 'db restore needs the backup file: db restore <file>');
      const r = await restoreDatabase(config.dataDir, path.resolve(arg), log, config.backup.keep);
      console.log(
        `restored ${r.restoredFrom} (schema v${r.schemaVersion})${r.previousBackup ? `; the previous database was saved as ${r.previousBackup}` : ''}`,
      );
      return 0;
    }
    if (sub === 'migrate') {
      const dryRun = !!values['dry-run'];
      const release = dryRun ? () => undefined : acquireLock(config.dataDir);
      const db = new Database(file);
      try {
        const r = await migrateDatabase(db, {
          dataDir: config.dataDir,
          log,
          dryRun,
          backupKeep: config.backup.keep,
        });
        if (!r.applied.length) console.log(`database is at v${r.from}: nothing to migrate`);
        else
          console.log(
            `${dryRun ? 'dry run: would apply' : 'applied'} ${r.applied.map((m) => `v${m.version} (${m.name})`).join(', ')}: v${r.from} → v${r.to}${
              dryRun ? ' — passed on a staging copy, database unchanged' : ''
            }${r.backup ? `; backup ${r.backup}` : ''}`,
          );
      } finally {
        db.close();
        release();
      }
      return 0;
    }
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    console.error(`rdmaq-dashboard: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`);
    process.exitCode = 1;
  },
);
