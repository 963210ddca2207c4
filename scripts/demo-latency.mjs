// Queue latency of a running rdmaq cluster, per link end, judged against targets: reads the hub's HTTP API
// (the demo's by default), prints p50 and p99 over the last N minutes and the firing alerts, then PASS/FAIL.
//
//   node scripts/demo-latency.mjs [--url http://127.0.0.1:3000] [--user admin] [--password PW |
//        --password-file .data/demo/admin-password] [--minutes 2] [--p50 200us] [--p99 5ms]
//
// Exit code: 0 every link end within target, 1 some over target (or no records at all), 2 the hub could not
// be reached, refused the login or the request. Percentiles are computed here from the hub's histogram
// buckets (GET /api/latency?slots=1), merged with the shared histogram maths (scripts/lib/latency-report.mjs).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(new URL('..', import.meta.url).pathname);
const USAGE = `usage: node scripts/demo-latency.mjs [options]
  --url URL              the hub (default http://127.0.0.1:$PORT or :3000, as make demo starts it)
  --user NAME            login name (default admin)
  --password PW          password (default: read from --password-file)
  --password-file FILE   default .data/demo/admin-password (written by make demo)
  --minutes N            window, 0.5..(the hub's history.latencyWindowS, 2 min by default) (default 2)
  --p50 DURATION         target for every link end's p50 (default 200us)
  --p99 DURATION         target for every link end's p99 (default 5ms)
exit: 0 pass, 1 fail, 2 cannot reach or query the hub`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? '3000'}` },
      user: { type: 'string', default: 'admin' },
      password: { type: 'string' },
      'password-file': { type: 'string', default: join(root, '.data', 'demo', 'admin-password') },
      minutes: { type: 'string', default: '2' },
      p50: { type: 'string', default: '200us' },
      p99: { type: 'string', default: '5ms' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  console.error(`demo-latency: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

function cannot(msg) {
  console.error(`demo-latency: ${msg}`);
  process.exit(2);
}

let lib;
try {
  lib = await import('./lib/latency-report.mjs');
} catch (err) {
  cannot(
    `cannot load the histogram maths (${err.message}); build @rdmaq/shared first: make setup, or pnpm --filter @rdmaq/shared build`,
  );
}

let targets;
try {
  targets = { p50: lib.parseDuration(opts.p50), p99: lib.parseDuration(opts.p99) };
} catch (err) {
  cannot(err.message);
}
const minutes = Number(opts.minutes);
if (!(minutes >= 0.5 && minutes <= 15))
  cannot(`--minutes ${opts.minutes}: give a number of minutes, 0.5 to 15`);
const windowS = Math.round(minutes * 60);

let password = opts.password;
if (password === undefined) {
  const file = resolve(opts['password-file']);
  if (!existsSync(file))
    cannot(`no --password and no password file ${file} (is the demo running from here?)`);
  password = readFileSync(file, 'utf8').trim();
}

const base = opts.url.replace(/\/+$/, '');

async function call(path, init = {}) {
  let res;
  try {
    res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    cannot(`cannot reach the hub at ${base}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
  }
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    cannot(`${path}: HTTP ${res.status}, not JSON (is ${base} an rdmaq hub?)`);
  }
  if (!res.ok) cannot(`${path}: HTTP ${res.status}: ${body?.error?.message ?? text}`);
  return { res, body };
}

// POST /api/auth/login → session cookie (API.md, Auth).
const { res: login } = await call('/api/auth/login', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ name: opts.user, password }),
});
const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
if (!cookie) cannot('the login answered without a session cookie');
const headers = { cookie };

const { body: latency } = await call(`/api/latency?windowS=${windowS}&slots=1`, { headers });
const { body: alerts } = await call('/api/alerts', { headers });
// Best effort: ends the session this script opened.
await fetch(`${base}/api/auth/logout`, { method: 'POST', headers }).catch(() => undefined);

const report = lib.buildReport(latency, alerts, targets);
for (const line of lib.formatReport(report)) console.log(line);
process.exit(report.pass ? 0 : 1);
