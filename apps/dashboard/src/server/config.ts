/**
 * Hub configuration: defaults < optional JSON file (`--config`) < environment < command-line flags.
 * Validated with zod; an invalid value stops the start with an error naming the key, the value and the fix.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MAX_FRAME_BYTES } from '@rdmaq/shared';
import { z } from 'zod';
import { DEFAULT_LOGIN_LIMITS } from './auth.js';
import { HubError } from './errors.js';

const url = z.string().url('must be an absolute URL such as http://host:9093');

const httpUrl = (example: string) =>
  z
    .string()
    .url(`must be an absolute URL such as ${example}`)
    .refine((u) => /^https?:\/\//i.test(u), `must be an absolute http(s) URL such as ${example}`);

const TsdbSchema = z
  .object({
    /** Remote-write endpoint, e.g. http://vm:8428/api/v1/write (VictoriaMetrics single node). */
    remoteWriteUrl: httpUrl('http://127.0.0.1:8428/api/v1/write'),
    /** PromQL base URL (…/api/v1/query_range is appended), e.g. http://vm:8428. */
    queryUrl: httpUrl('http://127.0.0.1:8428'),
    /** Extra request headers, e.g. {"X-Scope-OrgID": "rdmaq"} for Mimir tenants or a bearer token. */
    headers: z
      .record(
        z.string().regex(/^[A-Za-z0-9-]+$/, 'header names are letters, digits and dashes'),
        z.string().regex(/^[^\r\n]*$/, 'header values cannot hold line breaks'),
      )
      .default({}),
    basicAuth: z
      .object({ username: z.string().min(1), password: z.string().min(1) })
      .strict()
      .optional(),
    /** PEM file of the CA that signed the TSDB's certificate (https URLs). */
    tlsCaPath: z.string().min(1).optional(),
    /** Points per remote-write request. */
    batchSamples: z.number().int().min(100).max(1_000_000).default(20_000),
    /** Points the hub holds while the TSDB is slow or away (20 bytes each); beyond it new points are dropped. */
    queueSamples: z.number().int().min(1000).max(500_000_000).default(5_000_000),
    /** Longest a point waits for its batch to fill. */
    batchDelayMs: z.number().int().min(1).max(60_000).default(500),
    /** Per request (writes and queries). */
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    /**
     * Write each node's figures at most once per this many seconds (0: every sample, the default). Counters
     * and histograms are cumulative, so rates and percentiles lose nothing over windows ≥ it; gauges lose
     * their 1 s detail. Divides the write volume (and the hub's remote-write CPU) by about this many.
     */
    writeIntervalS: z.number().min(0).max(300).default(0),
    retryBaseMs: z.number().int().min(1).max(60_000).default(500),
    retryMaxMs: z.number().int().min(1).max(600_000).default(30_000),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.batchSamples > t.queueSamples) {
      ctx.addIssue({
        code: 'custom',
        path: ['batchSamples'],
        message: `is larger than queueSamples (${t.queueSamples}); lower it or raise queueSamples`,
      });
    }
    if (t.basicAuth && Object.keys(t.headers).some((h) => h.toLowerCase() === 'authorization')) {
      ctx.addIssue({
        code: 'custom',
        path: ['headers'],
        message: 'has an Authorization header and basicAuth is set too; keep one',
      });
    }
    if (t.tlsCaPath && !t.remoteWriteUrl.startsWith('https:') && !t.queryUrl.startsWith('https:')) {
      ctx.addIssue({
        code: 'custom',
        path: ['tlsCaPath'],
        message: 'is set but neither URL is https://; use https URLs or drop tlsCaPath',
      });
    }
    if (t.retryBaseMs > t.retryMaxMs) {
      ctx.addIssue({ code: 'custom', path: ['retryBaseMs'], message: 'is larger than retryMaxMs' });
    }
  });
export type TsdbConfig = z.infer<typeof TsdbSchema>;

export const ConfigSchema = z
  .object({
    port: z.number().int().min(0).max(65_535).default(8080),
    host: z.string().min(1).default('0.0.0.0'),
    /** Folder holding rdmaq.db and backups/. */
    dataDir: z.string().min(1),
    /** Serve HTTPS/WSS when both are given. */
    tls: z.object({ certPath: z.string().min(1), keyPath: z.string().min(1) }).optional(),
    /** Extra browser origins allowed on /ws/live and for cookie-authenticated writes (own host always is). */
    allowedOrigins: z.array(z.string().url()).default([]),
    /** URL browsers reach the dashboard at; used in alert links. */
    externalUrl: z.string().url().optional(),
    /** Host the Next.js UI; false serves the hub (API + WebSockets) only. */
    ui: z.boolean().default(true),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    sessionTtlS: z
      .number()
      .int()
      .min(60)
      .default(12 * 3600),
    admin: z
      .object({ user: z.string().min(1).max(64), password: z.string().min(10, 'use at least 10 characters') })
      .optional(),
    /** Login throttling and password hashing (see SECURITY.md). */
    auth: z
      .object({
        maxFailuresPerAccount: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(DEFAULT_LOGIN_LIMITS.maxFailuresPerAccount),
        maxFailuresPerAddress: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(DEFAULT_LOGIN_LIMITS.maxFailuresPerAddress),
        lockoutBaseS: z.number().min(0.01).max(3600).default(DEFAULT_LOGIN_LIMITS.lockoutBaseS),
        lockoutMaxS: z.number().min(1).max(86_400).default(DEFAULT_LOGIN_LIMITS.lockoutMaxS),
        maxConcurrentHashes: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(DEFAULT_LOGIN_LIMITS.maxConcurrentHashes),
        maxQueuedHashes: z.number().int().min(0).max(10_000).default(DEFAULT_LOGIN_LIMITS.maxQueuedHashes),
      })
      .default(DEFAULT_LOGIN_LIMITS),
    history: z
      .object({
        memoryS: z.number().int().min(60).max(3600).default(900),
        /**
         * Seconds of queue-latency histograms kept per link end (5 s slots): the longest `windowS` an alert
         * rule may use and the longest window `GET /api/latency` answers. ~8 bytes per bucket per slot.
         */
        latencyWindowS: z.number().int().min(30).max(900).default(120),
        minuteRetentionDays: z.number().min(1).max(366).default(7),
        hourRetentionDays: z.number().min(1).max(3660).default(90),
        /** How often finished minutes are written to SQLite. */
        flushIntervalMs: z.number().int().min(100).default(10_000),
      })
      .default({
        memoryS: 900,
        latencyWindowS: 120,
        minuteRetentionDays: 7,
        hourRetentionDays: 90,
        flushIntervalMs: 10_000,
      }),
    /** Set by `make demo` only: the demo's chaos socket, which turns on the admins' chaos buttons. */
    demo: z.object({ chaosSocket: z.string().min(1).max(4096).optional() }).default({}),
    /**
     * When figures stop being believed: a node is `stale` after `staleAfterSamples` of its sample periods
     * without a sample (at least 2.5 s), `offline` after `offlineAfterS` (its connection is then closed).
     */
    freshness: z
      .object({
        staleAfterSamples: z.number().int().min(2).max(60).default(3),
        offlineAfterS: z.number().min(3).max(3600).default(10),
      })
      .default({ staleAfterSamples: 3, offlineAfterS: 10 }),
    backup: z
      .object({
        intervalS: z
          .number()
          .min(0.05)
          .default(6 * 3600),
        keep: z.number().int().min(1).max(1000).default(8),
      })
      .default({ intervalS: 6 * 3600, keep: 8 }),
    ingest: z
      .object({
        maxFrameBytes: z.number().int().min(1024).max(MAX_FRAME_BYTES).default(MAX_FRAME_BYTES),
        helloTimeoutMs: z.number().int().min(100).default(10_000),
        maxAgents: z.number().int().min(1).default(20_000),
        /**
         * Oldest sample (and event) accepted, in seconds before the hub's clock: an agent replays what it
         * buffered while the hub was away (hub.bufferSeconds, at most a day). Older ones are refused (and
         * acked, so they are not replayed again): a sample from 1970 must not make the hub catch up 56 years.
         * Never more than the minute retention.
         */
        maxSampleAgeS: z
          .number()
          .int()
          .min(60)
          .max(366 * 86_400)
          .default(86_400),
        /** Newest sample accepted, in ms ahead of the hub's clock (clock skew between hosts). */
        maxSampleAheadMs: z.number().int().min(0).max(600_000).default(5_000),
        /** Most nodes the hub keeps (known node ids, connected or not); a hello for one more is refused. */
        maxNodes: z.number().int().min(1).max(1_000_000).default(20_000),
        /** Most link ends the hub keeps in memory (each holds memoryS seconds of points, ~27 KB at 900 s). */
        maxLinkEnds: z.number().int().min(1).max(1_000_000).default(65_536),
      })
      .default({
        maxFrameBytes: MAX_FRAME_BYTES,
        helloTimeoutMs: 10_000,
        maxAgents: 20_000,
        maxSampleAgeS: 86_400,
        maxSampleAheadMs: 5_000,
        maxNodes: 20_000,
        maxLinkEnds: 65_536,
      }),
    live: z
      .object({
        tickMs: z.number().int().min(1000, 'at most one delta per view per second: use ≥ 1000').default(1000),
        /** A browser socket holding more than this many unsent bytes is slow: deltas are merged. */
        maxBufferedBytes: z
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 * 1024),
        maxClients: z.number().int().min(1).default(1000),
        maxClientsPerUser: z.number().int().min(1).default(32),
      })
      .default({ tickMs: 1000, maxBufferedBytes: 4 * 1024 * 1024, maxClients: 1000, maxClientsPerUser: 32 }),
    alerts: z
      .object({
        evalIntervalMs: z.number().int().min(50).default(1000),
        webhooks: z.array(url).default([]),
        webhookTimeoutMs: z.number().int().min(100).default(5000),
        webhookRetries: z.number().int().min(0).max(20).default(5),
        webhookRetryBaseMs: z.number().int().min(10).default(1000),
        /** Base URL of an Alertmanager to push to (POST /api/v2/alerts), e.g. http://127.0.0.1:9093. */
        alertmanagerUrl: url.optional(),
        /** Firing alerts are re-sent this often (Alertmanager resolves alerts it stops hearing about). */
        alertmanagerResendMs: z.number().int().min(100).default(30_000),
      })
      .default({
        evalIntervalMs: 1000,
        webhooks: [],
        webhookTimeoutMs: 5000,
        webhookRetries: 5,
        webhookRetryBaseMs: 1000,
        alertmanagerResendMs: 30_000,
      }),
    /**
     * A Prometheus-compatible TSDB (VictoriaMetrics, Mimir, Thanos Receive): every accepted sample is sent
     * by remote write, and history beyond the hub's memory is read with PromQL (see tsdb/, README). Absent:
     * SQLite roll-ups only (the default).
     */
    tsdb: TsdbSchema.optional(),
    /** The audit trail (GET /api/audit): newest `maxRows` rows, none older than `retentionDays`. */
    audit: z
      .object({
        retentionDays: z.number().min(1).max(3660).default(90),
        maxRows: z.number().int().min(100).max(10_000_000).default(100_000),
      })
      .default({ retentionDays: 90, maxRows: 100_000 }),
  })
  .strict();

export type HubConfig = z.infer<typeof ConfigSchema>;
export type HubConfigInput = z.input<typeof ConfigSchema>;

const ENV_HINT: Record<string, string> = {
  port: '--port or PORT',
  dataDir: '--data or RDMAQ_DATA',
  host: '--host or RDMAQ_HOST',
  tls: 'RDMAQ_TLS_CERT and RDMAQ_TLS_KEY',
  allowedOrigins: 'RDMAQ_ALLOWED_ORIGINS (comma-separated URLs)',
  admin: 'RDMAQ_ADMIN_USER and RDMAQ_ADMIN_PASSWORD',
  backup: 'RDMAQ_BACKUP_INTERVAL_S / RDMAQ_BACKUP_KEEP',
  freshness: 'RDMAQ_STALE_AFTER_SAMPLES / RDMAQ_OFFLINE_AFTER_S',
  alerts: 'RDMAQ_WEBHOOK_URLS / RDMAQ_ALERTMANAGER_URL',
  tsdb: 'RDMAQ_TSDB_URL or RDMAQ_TSDB_WRITE_URL + RDMAQ_TSDB_QUERY_URL, RDMAQ_TSDB_USER / RDMAQ_TSDB_PASSWORD, RDMAQ_TSDB_HEADERS, RDMAQ_TSDB_CA, or "tsdb" in the config file',
};

/** Validates a config object; throws ERR_RDMAQ_CONFIG naming every bad key. */
export function parseConfig(input: unknown): HubConfig {
  const r = ConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.slice(0, 8).map((i) => {
    const key = i.path.join('.') || '(config)';
    const hint = ENV_HINT[String(i.path[0])];
    return `  ${key}: ${i.message}${hint ? ` (set with ${hint})` : ''}`;
  });
  throw new HubError('ERR_RDMAQ_CONFIG', `invalid dashboard configuration:\n${lines.join('\n')}`);
}

function num(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) {
    throw new HubError('ERR_RDMAQ_CONFIG', `${name}=${JSON.stringify(raw)} is not a number; set a number`);
  }
  return n;
}

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : v;
  }
  return out;
}

/** `Name: value; Other: value` (RDMAQ_TSDB_HEADERS). */
function headerList(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(';')) {
    if (!part.trim()) continue;
    const i = part.indexOf(':');
    if (i <= 0) {
      throw new HubError(
        'ERR_RDMAQ_CONFIG',
        `RDMAQ_TSDB_HEADERS: ${JSON.stringify(part.trim())} is not "Name: value"; separate headers with ";"`,
      );
    }
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export interface ConfigSources {
  flags?: { port?: string; data?: string; config?: string; host?: string };
  env?: Record<string, string | undefined>;
}

/** Builds the config from a file, the environment and flags (later wins), then validates it. */
export function loadConfig({ flags = {}, env = process.env }: ConfigSources = {}): HubConfig {
  let file: Obj = {};
  const configPath = flags.config ?? env.RDMAQ_CONFIG;
  if (configPath) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(configPath, 'utf8'));
      if (!isObj(parsed)) throw new Error('top level must be an object');
      file = parsed;
    } catch (err) {
      throw new HubError(
        'ERR_RDMAQ_CONFIG',
        `cannot read config file ${configPath}: ${(err as Error).message}; give a JSON object (see README)`,
      );
    }
  }
  const fromEnv: Obj = {
    port: num('PORT', env.PORT),
    host: env.RDMAQ_HOST || undefined,
    dataDir: env.RDMAQ_DATA || undefined,
    logLevel: env.RDMAQ_LOG_LEVEL || undefined,
    ui:
      env.RDMAQ_UI === undefined || env.RDMAQ_UI === ''
        ? undefined
        : !['0', 'false', 'off', 'no'].includes(env.RDMAQ_UI),
    externalUrl: env.RDMAQ_EXTERNAL_URL || undefined,
    allowedOrigins: env.RDMAQ_ALLOWED_ORIGINS
      ? env.RDMAQ_ALLOWED_ORIGINS.split(',').map((s) => s.trim())
      : undefined,
    tls:
      env.RDMAQ_TLS_CERT || env.RDMAQ_TLS_KEY
        ? { certPath: env.RDMAQ_TLS_CERT ?? '', keyPath: env.RDMAQ_TLS_KEY ?? '' }
        : undefined,
    admin:
      env.RDMAQ_ADMIN_USER || env.RDMAQ_ADMIN_PASSWORD
        ? { user: env.RDMAQ_ADMIN_USER ?? '', password: env.RDMAQ_ADMIN_PASSWORD ?? '' }
        : undefined,
    backup: {
      intervalS: num('RDMAQ_BACKUP_INTERVAL_S', env.RDMAQ_BACKUP_INTERVAL_S),
      keep: num('RDMAQ_BACKUP_KEEP', env.RDMAQ_BACKUP_KEEP),
    },
    demo: { chaosSocket: env.RDMAQ_DEMO_CHAOS_SOCKET || undefined },
    freshness: {
      staleAfterSamples: num('RDMAQ_STALE_AFTER_SAMPLES', env.RDMAQ_STALE_AFTER_SAMPLES),
      offlineAfterS: num('RDMAQ_OFFLINE_AFTER_S', env.RDMAQ_OFFLINE_AFTER_S),
    },
    alerts: {
      webhooks: env.RDMAQ_WEBHOOK_URLS ? env.RDMAQ_WEBHOOK_URLS.split(',').map((s) => s.trim()) : undefined,
      alertmanagerUrl: env.RDMAQ_ALERTMANAGER_URL || undefined,
    },
  };
  // RDMAQ_TSDB_URL: one base URL for both directions (VictoriaMetrics single node: <base>/api/v1/write and
  // <base>/api/v1/query_range). The _WRITE_/_QUERY_ variants override either (cluster, Mimir, Thanos).
  const tsdbBase = env.RDMAQ_TSDB_URL ? env.RDMAQ_TSDB_URL.replace(/\/+$/, '') : undefined;
  const tsdbEnv: Obj = {
    remoteWriteUrl: env.RDMAQ_TSDB_WRITE_URL || (tsdbBase ? `${tsdbBase}/api/v1/write` : undefined),
    queryUrl: env.RDMAQ_TSDB_QUERY_URL || tsdbBase,
    basicAuth:
      env.RDMAQ_TSDB_USER || env.RDMAQ_TSDB_PASSWORD
        ? { username: env.RDMAQ_TSDB_USER ?? '', password: env.RDMAQ_TSDB_PASSWORD ?? '' }
        : undefined,
    headers: env.RDMAQ_TSDB_HEADERS ? headerList(env.RDMAQ_TSDB_HEADERS) : undefined,
    tlsCaPath: env.RDMAQ_TSDB_CA || undefined,
    writeIntervalS: num('RDMAQ_TSDB_WRITE_INTERVAL_S', env.RDMAQ_TSDB_WRITE_INTERVAL_S),
  };
  if (Object.values(tsdbEnv).some((v) => v !== undefined)) fromEnv.tsdb = tsdbEnv;
  const fromFlags: Obj = {
    port: num('--port', flags.port),
    dataDir: flags.data,
    host: flags.host,
  };
  let merged = deepMerge(deepMerge(file, fromEnv), fromFlags);
  // Drop sub-objects that ended up empty so their defaults apply.
  merged = Object.fromEntries(
    Object.entries(merged).filter(([, v]) => !(isObj(v) && Object.keys(v).length === 0)),
  );
  if (typeof merged.dataDir === 'string') merged.dataDir = path.resolve(merged.dataDir);
  return parseConfig(merged);
}
