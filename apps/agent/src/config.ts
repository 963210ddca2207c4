/**
 * Agent configuration: a YAML file, then `RDMAQ_*` environment variables, then command-line flags (each
 * later source wins), validated with zod. Every problem is reported with the key, the offending value
 * (secrets redacted), where the value came from and how to fix it; the CLI prints them all and exits 2.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { IdleStrategySchema, TransportSchema } from '@rdmaq/shared';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AgentError } from './errors.js';

// Ids as the wire protocol (@rdmaq/shared) and rdma-core accept them; link ids default to `a->b`.
const ID_RE = /^[A-Za-z0-9._:@/>-]+$/;
const idString = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(128, { error: `${what} must be at most 128 characters` })
    .regex(ID_RE, { error: `${what} may use letters, digits and . _ : @ / > - only` });

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses `4MiB`, `64k`, `4096` into bytes; NaN when it is not a size. Units are binary (1k = 1024). */
export function parseSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return Number.NaN;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return Number.NaN;
  return Math.round(Number(m[1]) * unit);
}

/** A byte size given as a number or a string with a binary unit. */
const size = (what: string) =>
  z
    .union([z.number(), z.string()], { error: `${what} must be a number of bytes or a size like "4MiB"` })
    .transform((v, ctx) => {
      const n = typeof v === 'number' ? v : parseSize(v);
      if (!Number.isFinite(n) || !Number.isInteger(n) || n < 0) {
        ctx.addIssue({
          code: 'custom',
          message: `${what} must be a whole number of bytes or a size like "4MiB"`,
        });
        return z.NEVER;
      }
      return n;
    });

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a number` })
    .int({ error: `${what} must be a whole number` })
    .min(min, { error: `${what} must be at least ${min}` })
    .max(max, { error: `${what} must be at most ${max}` });

const port = (what: string) => int(what, 0, 65535);

const SizeDistSchema = z.union(
  [
    z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * 1024),
    z.strictObject({ dist: z.literal('fixed'), bytes: int('traffic.size.bytes', 0, 16 * 1024 * 1024) }),
    z
      .strictObject({
        dist: z.literal('uniform'),
        min: int('traffic.size.min', 0, 16 * 1024 * 1024),
        max: int('traffic.size.max', 0, 16 * 1024 * 1024),
      })
      .refine((s) => s.min <= s.max, {
        error: 'traffic.size.min must not exceed traffic.size.max',
        path: ['max'],
      }),
    z.strictObject({
      dist: z.literal('choice'),
      choices: z
        .array(
          z.strictObject({
            bytes: int('traffic.size.choices[].bytes', 0, 16 * 1024 * 1024),
            weight: z.number().positive({ error: 'a choice weight must be > 0' }),
          }),
        )
        .min(1, { error: 'traffic.size.choices needs at least one entry' }),
    }),
  ],
  {
    error:
      'traffic.size must be a byte count, {dist: fixed, bytes}, {dist: uniform, min, max} or {dist: choice, choices: [{bytes, weight}]}',
  },
);
export type SizeDist = z.infer<typeof SizeDistSchema>;

const TrafficSchema = z.strictObject({
  /** Messages per second while the generator is "on". */
  rate: z
    .number({ error: 'traffic.rate must be a number of messages per second' })
    .positive({ error: 'traffic.rate must be > 0 messages per second' })
    .max(10_000_000, { error: 'traffic.rate must be at most 10000000 messages per second' }),
  size: SizeDistSchema.default(64),
  /** On/off pattern: send for onMs, pause for offMs. Absent: steady. */
  burst: z
    .strictObject({
      onMs: int('traffic.burst.onMs', 1, 3_600_000),
      offMs: int('traffic.burst.offMs', 0, 3_600_000),
    })
    .optional(),
});
export type TrafficConfig = z.infer<typeof TrafficSchema>;

const LinkSchema = z.strictObject({
  /** Link id, unique on this node; default `<nodeId>-><peer>`. */
  id: idString('link id').optional(),
  /** Node id of the receiving agent. */
  peer: idString('peer'),
  /** Where the peer's agent listens: `host:port` (fabric) or a unix socket path (shm). */
  address: z.string({ error: 'address must be a string' }).min(1, { error: 'address must not be empty' }),
  transport: z
    .enum(TransportSchema.options, { error: 'transport must be "fabric" or "shm"' })
    .default('fabric'),
  /** libfabric provider for fabric links (e.g. `verbs;ofi_rxm`, `tcp;ofi_rxm`, `net`, `efa`). */
  provider: z
    .string({ error: 'provider must be a string' })
    .regex(/^[a-z0-9_]+(;[a-z0-9_]+)*$/, { error: 'provider must look like "tcp;ofi_rxm" or "verbs"' })
    .optional(),
  ringBytes: size('ringBytes')
    .refine((n) => n >= 65536 && n <= 1024 ** 3, { error: 'ringBytes must be between 64KiB and 1GiB' })
    .refine((n) => (n & (n - 1)) === 0, { error: 'ringBytes must be a power of two' })
    .default(4 * 1024 * 1024),
  idle: z
    .enum(IdleStrategySchema.options, { error: 'idle must be busy-spin, backoff or event' })
    .default('backoff'),
  journal: z.boolean({ error: 'journal must be true or false' }).default(false),
  /**
   * Seal every record with a CRC32C of its payload, checked by the receiver before delivery (rdma-core
   * SenderOptions.checksum): for hosts or paths that may corrupt data. Costs CPU on both ends (README).
   */
  checksum: z.boolean({ error: 'checksum must be true or false' }).default(false),
  traffic: TrafficSchema.optional(),
});
export type LinkConfigInput = z.input<typeof LinkSchema>;

export const ConfigSchema = z.strictObject({
  nodeId: idString('nodeId'),
  /**
   * Labels sent to the hub with the hello, e.g. `{ rack: r07 }`: the dashboard groups large clusters by
   * `rack`. Optional; at most 16, keys ≤ 64 and values ≤ 128 characters.
   */
  labels: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, {
        error: 'labels keys must be names like rack or zone (letters, digits, _ . -; at most 64)',
      }),
      // YAML reads `rack: 7` as a number: a label is its text.
      z.preprocess(
        (v) => (typeof v === 'number' || typeof v === 'boolean' ? String(v) : v),
        z
          .string({ error: 'labels values must be strings' })
          .max(128, { error: 'labels values must be at most 128 characters' }),
      ),
      { error: 'labels must be a map of name: value' },
    )
    .refine((r) => Object.keys(r).length <= 16, { error: 'labels: at most 16' })
    .optional(),
  hub: z
    .strictObject({
      /** ws:// or wss:// URL of the hub; `/ws/agent` is appended when the path is empty. */
      url: z
        .string({ error: 'hub.url must be a string' })
        .refine((u) => /^wss?:\/\/[^/\s]+(\/\S*)?$/.test(u), {
          error: 'hub.url must be a ws:// or wss:// URL',
        }),
      token: z
        .string({ error: 'hub.token must be a string' })
        .min(8, { error: 'hub.token must be at least 8 characters' })
        .max(4096),
      /** How long samples are buffered while the hub is away (10 minutes by default). */
      bufferSeconds: int('hub.bufferSeconds', 1, 86_400).default(600),
      /** Hard cap on the memory the buffer may use. */
      maxBufferBytes: size('hub.maxBufferBytes')
        .refine((n) => n >= 64 * 1024, { error: 'hub.maxBufferBytes must be at least 64KiB' })
        .default(64 * 1024 * 1024),
    })
    .optional(),
  /** Cluster secret both ends of a link prove they hold (HMAC) before any address or key is shared. */
  secret: z
    .string({ error: 'secret must be a string' })
    .min(16, { error: 'secret must be at least 16 characters' })
    .max(4096),
  http: z
    .strictObject({
      host: z.string({ error: 'http.host must be a string' }).min(1).default('0.0.0.0'),
      port: port('http.port').default(9470),
    })
    .prefault({}),
  listen: z
    .strictObject({
      /** Unix socket for incoming shm links (default `/run/rdmaq/<nodeId>.sock`). */
      socket: z
        .string({ error: 'listen.socket must be a string' })
        .refine((p) => isAbsolute(p), { error: 'listen.socket must be an absolute path' })
        .optional(),
      /** Directory of shm ring files. */
      shmDir: z
        .string({ error: 'listen.shmDir must be a string' })
        .refine((p) => isAbsolute(p), { error: 'listen.shmDir must be an absolute path' })
        .default('/dev/shm'),
      /** Accept incoming fabric links on a TCP port (HMAC handshake with `secret`). */
      fabric: z.boolean({ error: 'listen.fabric must be true or false' }).default(true),
      /** TCP address of the handshake listener for incoming fabric links. */
      host: z.string({ error: 'listen.host must be a string' }).min(1).default('0.0.0.0'),
      port: port('listen.port').default(7470),
      /** Accept incoming fabric links of this libfabric provider only (default: whatever the sender asks). */
      provider: z
        .string({ error: 'listen.provider must be a string' })
        .regex(/^[a-z0-9_]+(;[a-z0-9_]+)*$/, {
          error: 'listen.provider must look like "tcp;ofi_rxm" or "verbs"',
        })
        .optional(),
      /** Ring size of incoming links (the ring lives in this host's memory). */
      ringBytes: size('listen.ringBytes')
        .refine((n) => n >= 65536 && n <= 1024 ** 3, {
          error: 'listen.ringBytes must be between 64KiB and 1GiB',
        })
        .refine((n) => (n & (n - 1)) === 0, { error: 'listen.ringBytes must be a power of two' })
        .default(4 * 1024 * 1024),
      /**
       * Idle strategy of the consumers of incoming links. `event` by default: an agent runs many consumers on
       * one event loop, and spinning ones (backoff, busy-spin) take the CPU from each other (bench: 8 links
       * with backoff saturated two cores, p50 ~1 ms; with event p50 ~20 µs).
       */
      idle: z
        .enum(IdleStrategySchema.options, { error: 'listen.idle must be busy-spin, backoff or event' })
        .default('event'),
      /**
       * Incoming links expected on this node (id and sending peer). They show as `connecting` in /healthz
       * until their sender attaches. Senders of other link ids are accepted too (they proved the secret).
       */
      expect: z
        .array(
          z.strictObject({
            id: idString('listen.expect[].id'),
            peer: idString('listen.expect[].peer'),
            transport: z
              .enum(TransportSchema.options, { error: 'listen.expect[].transport must be "fabric" or "shm"' })
              .default('fabric'),
            ringBytes: size('listen.expect[].ringBytes')
              .refine((n) => n >= 65536 && n <= 1024 ** 3 && (n & (n - 1)) === 0, {
                error: 'listen.expect[].ringBytes must be a power of two between 64KiB and 1GiB',
              })
              .optional(),
            idle: z
              .enum(IdleStrategySchema.options, {
                error: 'listen.expect[].idle must be busy-spin, backoff or event',
              })
              .optional(),
          }),
          { error: 'listen.expect must be a list of {id, peer}' },
        )
        .default([]),
      /** Set false for an agent that only sends. */
      enabled: z.boolean({ error: 'listen.enabled must be true or false' }).default(true),
    })
    .prefault({}),
  sampling: z
    .strictObject({ intervalMs: int('sampling.intervalMs', 100, 60_000).default(1000) })
    .prefault({}),
  probe: z
    .strictObject({
      intervalMs: int('probe.intervalMs', 50, 60_000).default(1000),
      /** A link with no probe answer for this long is degraded. */
      timeoutMs: int('probe.timeoutMs', 100, 600_000).default(3000),
    })
    .prefault({}),
  reconnect: z
    .strictObject({
      initialMs: int('reconnect.initialMs', 10, 60_000).default(250),
      maxMs: int('reconnect.maxMs', 100, 600_000).default(30_000),
    })
    .refine((r) => r.initialMs <= r.maxMs, {
      error: 'reconnect.initialMs must not exceed reconnect.maxMs',
      path: ['initialMs'],
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
          error: 'log.level must be one of fatal, error, warn, info, debug, trace, silent',
        })
        .default('info'),
      // YAML turns `pretty: false` into a boolean while env/flags give strings: accept both spellings.
      pretty: z
        .preprocess(
          (v) => (typeof v === 'boolean' ? String(v) : v),
          z.enum(['auto', 'true', 'false'], { error: 'log.pretty must be auto, true or false' }),
        )
        .default('auto'),
    })
    .prefault({}),
  /**
   * Where the links (consumers, senders, traffic, probes) run: `worker` (default) on a worker thread of their
   * own, so sampling, the hub connection, HTTP and GC on the main thread never delay a record; `main` on the
   * main event loop with everything else (tests with a simulated clock).
   */
  dataPath: z.enum(['worker', 'main'], { error: 'dataPath must be "worker" or "main"' }).default('worker'),
  /**
   * Applications' links: each sample reads the statistics files rdma-core keeps per process
   * (/dev/shm/rdmaq-stats-<pid>-<starttime>) and reports their links beside the agent's own, labelled `app`.
   */
  apps: z
    .strictObject({
      enabled: z.boolean({ error: 'apps.enabled must be true or false' }).default(true),
      dir: z
        .string({ error: 'apps.dir must be a string' })
        .refine((p) => isAbsolute(p), { error: 'apps.dir must be an absolute path' })
        .default(process.env.RDMAQ_STATS_DIR || '/dev/shm'),
    })
    .prefault({}),
  /** Directory of the sender journals (links with `journal: true`). */
  journalDir: z
    .string({ error: 'journalDir must be a string' })
    .refine((p) => isAbsolute(p), { error: 'journalDir must be an absolute path' })
    .default('/var/lib/rdmaq'),
  links: z.array(LinkSchema, { error: 'links must be a list' }).default([]),
});

/**
 * Checks that involve more than one field. They run on the raw input even when the schema fails, so one
 * pass names every problem (zod skips refinements of an object whose fields failed).
 */
type CrossIssue = { path: PropertyKey[]; message: string; fix?: string };
function crossChecks(raw: Record<string, unknown>): CrossIssue[] {
  const out: CrossIssue[] = [];
  const nodeId = typeof raw.nodeId === 'string' ? raw.nodeId : undefined;
  const links = Array.isArray(raw.links) ? (raw.links as unknown[]) : [];
  const seen = new Map<string, number>();
  links.forEach((entry, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return;
    const l = entry as Record<string, unknown>;
    const transport = l.transport ?? 'fabric';
    const address = l.address;
    if (typeof address === 'string' && address.length > 0) {
      if (transport === 'fabric' && !/^(\[[0-9a-fA-F:]+\]|[^:\s/]+):\d{1,5}$/.test(address)) {
        out.push({
          path: ['links', i, 'address'],
          message: 'a fabric link needs the peer agent address as host:port',
        });
      }
      if (transport === 'shm' && !isAbsolute(address)) {
        out.push({
          path: ['links', i, 'address'],
          message: "an shm link needs the absolute path of the peer agent's unix socket",
        });
      }
    }
    if (transport === 'shm' && l.journal === true) {
      out.push({
        path: ['links', i, 'journal'],
        message:
          'journal applies to fabric links (an shm ring already lives in a file that survives a sender crash)',
        fix: 'remove journal from this shm link, or use transport: fabric',
      });
    }
    if (transport === 'shm' && l.provider !== undefined && l.provider !== 'shm') {
      out.push({ path: ['links', i, 'provider'], message: 'shm links do not use a libfabric provider' });
    }
    if (typeof l.peer === 'string' && nodeId !== undefined && l.peer === nodeId) {
      out.push({ path: ['links', i, 'peer'], message: 'a link cannot point at its own node' });
    }
    const linkId =
      typeof l.id === 'string' ? l.id : typeof l.peer === 'string' ? `${nodeId}->${l.peer}` : undefined;
    if (linkId === undefined) return;
    const prev = seen.get(linkId);
    if (prev !== undefined) {
      out.push({
        path: ['links', i, l.id === undefined ? 'peer' : 'id'],
        message: `link id "${linkId}" is already used by links.${prev}`,
        fix: 'give each of these links its own id (two links to one peer need explicit ids)',
      });
    }
    seen.set(linkId, i);
  });
  return out;
}

type Parsed = z.output<typeof ConfigSchema>;
export type LinkConfig = Omit<Parsed['links'][number], 'id'> & { id: string };
export type AgentConfig = Omit<Parsed, 'links' | 'listen'> & {
  links: LinkConfig[];
  listen: Parsed['listen'] & { socket: string };
};

/** One problem in the configuration. */
export interface ConfigIssue {
  key: string;
  value: string;
  source: string;
  message: string;
  fix: string;
}

export class ConfigError extends AgentError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('ERR_RDMAQ_CONFIG', formatIssues(issues));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssues(issues: ConfigIssue[]): string {
  const head = `the configuration is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):`;
  const lines = issues.map((i) => `  - ${i.key} = ${i.value} (${i.source}): ${i.message}. Fix: ${i.fix}`);
  return [head, ...lines].join('\n');
}

/** A scalar setting that env variables and flags may override. */
interface Override {
  path: string[];
  env: string;
  flag: string;
  kind: 'string' | 'number' | 'boolean';
  help: string;
}

export const OVERRIDES: readonly Override[] = [
  { path: ['nodeId'], env: 'RDMAQ_NODE_ID', flag: 'node-id', kind: 'string', help: 'node id of this host' },
  { path: ['hub', 'url'], env: 'RDMAQ_HUB_URL', flag: 'hub-url', kind: 'string', help: 'hub WebSocket URL' },
  {
    path: ['hub', 'token'],
    env: 'RDMAQ_HUB_TOKEN',
    flag: 'hub-token',
    kind: 'string',
    help: 'bearer token for the hub (prefer the env variable or hub.tokenFile: flags show in ps)',
  },
  {
    path: ['secret'],
    env: 'RDMAQ_SECRET',
    flag: 'secret',
    kind: 'string',
    help: 'cluster secret for handshakes',
  },
  {
    path: ['http', 'host'],
    env: 'RDMAQ_HTTP_HOST',
    flag: 'http-host',
    kind: 'string',
    help: 'HTTP bind address',
  },
  { path: ['http', 'port'], env: 'RDMAQ_HTTP_PORT', flag: 'http-port', kind: 'number', help: 'HTTP port' },
  {
    path: ['listen', 'host'],
    env: 'RDMAQ_LISTEN_HOST',
    flag: 'listen-host',
    kind: 'string',
    help: 'handshake listener bind address',
  },
  {
    path: ['listen', 'port'],
    env: 'RDMAQ_LISTEN_PORT',
    flag: 'listen-port',
    kind: 'number',
    help: 'handshake listener TCP port',
  },
  {
    path: ['listen', 'socket'],
    env: 'RDMAQ_LISTEN_SOCKET',
    flag: 'listen-socket',
    kind: 'string',
    help: 'unix socket for incoming shm links',
  },
  {
    path: ['sampling', 'intervalMs'],
    env: 'RDMAQ_SAMPLE_INTERVAL_MS',
    flag: 'sample-interval-ms',
    kind: 'number',
    help: 'sampling interval in ms',
  },
  { path: ['log', 'level'], env: 'RDMAQ_LOG_LEVEL', flag: 'log-level', kind: 'string', help: 'log level' },
  {
    path: ['log', 'pretty'],
    env: 'RDMAQ_LOG_PRETTY',
    flag: 'log-pretty',
    kind: 'string',
    help: 'auto | true | false',
  },
  {
    path: ['dataPath'],
    env: 'RDMAQ_DATA_PATH',
    flag: 'data-path',
    kind: 'string',
    help: 'worker (links on their own thread, default) | main',
  },
  {
    path: ['apps', 'enabled'],
    env: 'RDMAQ_APPS',
    flag: 'apps',
    kind: 'boolean',
    help: "report applications' links from their statistics files (default true)",
  },
  {
    path: ['apps', 'dir'],
    env: 'RDMAQ_APPS_DIR',
    flag: 'apps-dir',
    kind: 'string',
    help: 'directory of the statistics files (default /dev/shm)',
  },
  {
    path: ['journalDir'],
    env: 'RDMAQ_JOURNAL_DIR',
    flag: 'journal-dir',
    kind: 'string',
    help: 'directory of link journals',
  },
];

/** How to fix a bad value, by key (`*` stands for a list index). */
const FIXES: Array<[RegExp, string]> = [
  [/^nodeId$/, 'set nodeId to this host\'s name, e.g. "gpu-node-07" (or RDMAQ_NODE_ID / --node-id)'],
  [/^hub$/, 'give hub as a mapping with url and token, or leave it out to run without a hub'],
  [/^hub\.url$/, 'set hub.url to the hub address, e.g. "wss://hub.example:8443/ws/agent" (or RDMAQ_HUB_URL)'],
  [
    /^hub\.token$/,
    'set hub.token (or RDMAQ_HUB_TOKEN, or hub.tokenFile) to the agent token issued by the hub',
  ],
  [/^hub\.tokenFile$/, 'point hub.tokenFile at a readable file holding the agent token'],
  [/^hub\.bufferSeconds$/, 'use a number of seconds, e.g. 600 for 10 minutes'],
  [/^hub\.maxBufferBytes$/, 'use a size such as "64MiB"'],
  [
    /^secret$/,
    'set secret (or RDMAQ_SECRET, or secretFile) to the same random string of ≥ 16 characters on every host',
  ],
  [/^secretFile$/, 'point secretFile at a readable file holding the cluster secret'],
  [/^http\.port$/, 'choose a TCP port between 0 and 65535 (0 = any free port), e.g. 9470'],
  [/^http\.host$/, 'use an address to bind, e.g. "0.0.0.0" or "127.0.0.1"'],
  [/^listen\.port$/, 'choose a TCP port between 0 and 65535 for the handshake listener, e.g. 7470'],
  [/^listen\.socket$/, 'use an absolute path such as "/run/rdmaq/agent.sock"'],
  [
    /^listen\.provider$/,
    'use a provider that `rdmaq-agent check` lists, e.g. "tcp;ofi_rxm" or "verbs;ofi_rxm"',
  ],
  [/^sampling\.intervalMs$/, 'use a whole number of milliseconds between 100 and 60000, e.g. 1000'],
  [/^probe\./, 'use a whole number of milliseconds, e.g. intervalMs: 1000, timeoutMs: 3000'],
  [/^reconnect\./, 'use milliseconds with initialMs ≤ maxMs, e.g. initialMs: 250, maxMs: 30000'],
  [/^log\.level$/, 'use one of fatal, error, warn, info, debug, trace, silent'],
  [/^log\.pretty$/, 'use auto (pretty on a terminal), true or false'],
  [
    /^dataPath$/,
    'use worker (the links run on a thread of their own: queue latency does not wait for the main event loop) or main (everything on one event loop)',
  ],
  [/^journalDir$/, 'use an absolute directory path, e.g. "/var/lib/rdmaq"'],
  [/^links$/, 'give links as a YAML list of mappings (peer, address, transport, ...)'],
  [/^links\.\*$/, 'each entry of links is a mapping with at least peer and address'],
  [/^links\.\*\.id$/, 'give every link a distinct id, or leave id out to use "<nodeId>-><peer>"'],
  [/^links\.\*\.peer$/, "set peer to the other host's nodeId"],
  [/^links\.\*\.address$/, 'use "host:port" of the peer agent for fabric, or its unix socket path for shm'],
  [/^links\.\*\.transport$/, 'use "fabric" (across hosts) or "shm" (same host)'],
  [
    /^links\.\*\.provider$/,
    'use a provider that `rdmaq-agent check` lists, e.g. "verbs;ofi_rxm" or "tcp;ofi_rxm"',
  ],
  [/^links\.\*\.ringBytes$/, 'use a power of two between 64KiB and 1GiB, e.g. "4MiB"'],
  [/^listen\.ringBytes$/, 'use a power of two between 64KiB and 1GiB, e.g. "4MiB"'],
  [/^listen\.idle$/, 'use busy-spin, backoff or event'],
  [/^listen\.fabric$/, 'use true (accept fabric links on listen.port) or false'],
  [/^listen\.shmDir$/, 'use an absolute directory on a tmpfs, e.g. "/dev/shm"'],
  [/^listen\.expect/, 'list incoming links as {id: "a->b", peer: "a"}'],
  [/^links\.\*\.idle$/, 'use busy-spin, backoff or event'],
  [/^links\.\*\.journal$/, 'use true or false'],
  [/^links\.\*\.traffic\.rate$/, 'use messages per second, e.g. 1000'],
  [/^links\.\*\.traffic\.size/, 'use a byte count (64) or {dist: uniform, min: 64, max: 4096}'],
  [/^links\.\*\.traffic\.burst/, 'use {onMs: 100, offMs: 900}'],
  [/^links\.\*\.traffic/, 'see the traffic section of the example config'],
];

function fixFor(key: string, message: string): string {
  const generic = key.replace(/\.\d+(?=\.|$)/g, '.*');
  for (const [re, fix] of FIXES) if (re.test(generic)) return fix;
  if (message.startsWith('unknown key')) return 'remove it or check its spelling against the example config';
  return 'see the example config (apps/agent/agent.example.yaml)';
}

const SECRET_KEYS = /(^|\.)(token|secret)$/;

function showValue(key: string, value: unknown): string {
  if (value === undefined) return '(missing)';
  if (SECRET_KEYS.test(key) && typeof value === 'string') return `(redacted, ${value.length} characters)`;
  const s = JSON.stringify(value);
  if (s === undefined) return String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function getAt(obj: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function setAt(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const p of path.slice(0, -1)) {
    const next = cur[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

export interface LoadOptions {
  /** Path of the YAML file; optional when everything comes from env and flags. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values by flag name (as parsed by the CLI). */
  flags?: Record<string, string | undefined>;
  /** Working directory for relative paths. */
  cwd?: string;
}

/** Reads, merges and validates the configuration. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadOptions = {}): AgentConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const cwd = opts.cwd ?? process.cwd();
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};

  if (opts.file !== undefined) {
    const file = resolvePath(cwd, opts.file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError([
        {
          key: '--config',
          value: JSON.stringify(opts.file),
          source: 'command line',
          message: `cannot read the file (${code})`,
          fix: 'pass the path of an existing, readable YAML file (see apps/agent/agent.example.yaml)',
        },
      ]);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text, { prettyErrors: true });
    } catch (err) {
      throw new ConfigError([
        {
          key: '(file)',
          value: JSON.stringify(opts.file),
          source: file,
          message: `not valid YAML: ${(err as Error).message.split('\n')[0]}`,
          fix: 'correct the YAML syntax at the line named (indent with spaces, quote values containing ":")',
        },
      ]);
    }
    if (doc === null || doc === undefined) doc = {};
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ConfigError([
        {
          key: '(file)',
          value: showValue('', doc),
          source: file,
          message: 'the file must hold a YAML mapping (key: value lines)',
          fix: 'start from apps/agent/agent.example.yaml',
        },
      ]);
    }
    raw = doc as Record<string, unknown>;
    sources.set('', `file ${file}`);
  }

  const overrideIssues: ConfigIssue[] = [];
  for (const o of OVERRIDES) {
    for (const [value, source] of [
      [env[o.env], `env ${o.env}`],
      [flags[o.flag], `flag --${o.flag}`],
    ] as const) {
      if (value === undefined) continue;
      const key = o.path.join('.');
      let v: unknown = value;
      if (o.kind === 'number') {
        v = /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
      }
      setAt(raw, o.path, v);
      sources.set(key, source);
    }
  }

  // Secrets from files: token and secret may live in files readable only by the agent's user.
  readSecretFile(
    raw,
    ['hub', 'tokenFile'],
    ['hub', 'token'],
    env.RDMAQ_HUB_TOKEN_FILE,
    cwd,
    sources,
    overrideIssues,
  );
  readSecretFile(raw, ['secretFile'], ['secret'], env.RDMAQ_SECRET_FILE, cwd, sources, overrideIssues);
  if (overrideIssues.length > 0) throw new ConfigError(overrideIssues);

  const parsed = ConfigSchema.safeParse(raw);
  const cross = crossChecks(raw);
  if (!parsed.success || cross.length > 0) {
    const schemaIssues = parsed.success ? [] : parsed.error.issues;
    const all = [...schemaIssues, ...cross.map((c) => ({ ...c, code: 'custom' as const }))];
    const fixes = new Map(cross.filter((c) => c.fix).map((c) => [c.path.map(String).join('.'), c.fix!]));
    const issues = all.flatMap((iss): ConfigIssue[] => {
      const keys: Array<Array<PropertyKey>> =
        iss.code === 'unrecognized_keys' ? iss.keys.map((k) => [...iss.path, k]) : [iss.path];
      return keys.map((path) => {
        const key = path.length ? path.map(String).join('.') : '(file)';
        const message = iss.code === 'unrecognized_keys' ? 'unknown key' : iss.message;
        return {
          key,
          value: showValue(key, getAt(raw, path)),
          source: sourceOf(sources, key),
          message,
          fix: fixes.get(key) ?? fixFor(key, message),
        };
      });
    });
    throw new ConfigError(issues);
  }

  if (!parsed.success) throw new AgentError('ERR_RDMAQ_CONFIG', 'unreachable: schema failed without issues');
  const c = parsed.data;
  const hubUrl = c.hub ? withDefaultPath(c.hub.url) : undefined;
  return {
    ...c,
    hub: c.hub && hubUrl ? { ...c.hub, url: hubUrl } : undefined,
    listen: { ...c.listen, socket: c.listen.socket ?? `/run/rdmaq/${c.nodeId.replace(/[/>:@]/g, '_')}.sock` },
    links: c.links.map((l) => ({ ...l, id: l.id ?? `${c.nodeId}->${l.peer}` })),
  };
}

function withDefaultPath(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws/agent';
  return u.toString();
}

function sourceOf(sources: Map<string, string>, key: string): string {
  return sources.get(key) ?? sources.get('') ?? 'defaults';
}

function readSecretFile(
  raw: Record<string, unknown>,
  filePath: string[],
  valuePath: string[],
  envFile: string | undefined,
  cwd: string,
  sources: Map<string, string>,
  issues: ConfigIssue[],
): void {
  const fromFile = getAt(raw, filePath);
  const file = envFile ?? fromFile;
  if (file === undefined) return;
  const key = filePath.join('.');
  // Remove the *File key so the strict schema does not report it as unknown.
  const parent = filePath.length > 1 ? getAt(raw, filePath.slice(0, -1)) : raw;
  if (parent && typeof parent === 'object') delete (parent as Record<string, unknown>)[filePath.at(-1)!];
  if (typeof file !== 'string' || file.length === 0) {
    issues.push({
      key,
      value: showValue(key, file),
      source: envFile !== undefined ? 'env' : sourceOf(sources, key),
      message: 'must be a file path',
      fix: fixFor(key, ''),
    });
    return;
  }
  try {
    const value = readFileSync(resolvePath(cwd, file), 'utf8').trim();
    setAt(raw, valuePath, value);
    sources.set(valuePath.join('.'), `file ${file}`);
  } catch (err) {
    issues.push({
      key,
      value: JSON.stringify(file),
      source:
        envFile !== undefined
          ? `env ${filePath.length > 1 ? 'RDMAQ_HUB_TOKEN_FILE' : 'RDMAQ_SECRET_FILE'}`
          : sourceOf(sources, key),
      message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      fix: fixFor(key, ''),
    });
  }
}

/** Default host name used in hello frames. */
export function defaultHostname(): string {
  return hostname();
}
