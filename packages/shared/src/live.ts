/**
 * Hub ⇄ browser live protocol (WebSocket `/ws/live`, JSON text frames, one message per frame), plus the
 * shapes the REST API (`/api/*`, see apps/dashboard/API.md) shares with the browser.
 *
 *   browser → hub: subscribe / unsubscribe a view, ping
 *   hub → browser: welcome (once), snapshot (after subscribe and after resync), delta (≤ 1 per view per
 *                  second), resync (the next frame for that view is a snapshot; drop local state), pong, error
 *
 * Views: `overview`, `alerts`, `node:<nodeId>`, `link:<linkKey>`, and the windows of the overview's
 * tables `table:links?…` / `table:nodes?…` (sort, filter and paging are part of the view's name, so every
 * browser asking the same window shares one frame). A link key is `<nodeId>~<linkId>` (the
 * hub tracks each link END: the tx side reports back-pressure, the rx side queue latency), `~` being a
 * character that node and link ids cannot contain.
 *
 * Every snapshot and delta carries `seq`, counted per view on the hub (all subscribers of a view get the
 * same frame): a snapshot carries the view's current seq, each later delta seq + 1. A browser applies a delta
 * only on top of the frame with seq − 1; on a gap it unsubscribes and subscribes again. A slow browser
 * (its socket's `bufferedAmount` over the hub's limit) gets no deltas while behind; its pending changes are
 * merged on the hub and, once it has drained, it receives `resync` then a fresh `snapshot`.
 *
 * The overview sends what the page draws (overview.ts): a packed picture of every node and link end whose
 * deltas carry only the entries that visibly changed, and tables as windows of rows. Numbers are plain JSON numbers; latencies are nanoseconds,
 * rates per second, times ms since the epoch. NaN/unknown values are sent as `null`.
 */
import { z } from 'zod';
import { OverviewLayoutDeltaSchema, OverviewLayoutSnapshotSchema, parseTableView } from './overview.js';
import { LinkStateSchema, TransportSchema } from './protocol.js';

/**
 * 2: the overview carries a packed layout (overview.ts) and the tables are their own windowed views. A page
 * names the version it speaks in the upgrade URL (`/ws/live?v=2`); the hub answers a page that speaks
 * another one (or none: protocol 1 pages did not say) with `ERR_RDMAQ_PROTOCOL` for each view: reload.
 */
export const LIVE_PROTOCOL_VERSION = 2;
/** Largest browser → hub frame the hub accepts (bytes). */
export const MAX_LIVE_CLIENT_FRAME_BYTES = 4096;
/** Most views one connection may subscribe at once. */
export const MAX_LIVE_SUBSCRIPTIONS = 32;
/** Separator of a link key `<nodeId>~<linkId>`. */
export const LINK_KEY_SEPARATOR = '~';

export function linkKey(nodeId: string, linkId: string): string {
  return `${nodeId}${LINK_KEY_SEPARATOR}${linkId}`;
}

export function parseLinkKey(key: string): { nodeId: string; linkId: string } | undefined {
  const i = key.indexOf(LINK_KEY_SEPARATOR);
  if (i <= 0 || i === key.length - 1) return undefined;
  return { nodeId: key.slice(0, i), linkId: key.slice(i + 1) };
}

/**
 * `overview` | `alerts` | `node:<nodeId>` | `link:<nodeId>~<linkId>` | `table:links?…` | `table:nodes?…`
 * (a window of the link-end or node table: `sort`, `q` filter, `offset`, `limit`; see overview.ts).
 */
export const ViewSchema = z
  .string()
  .max(300)
  .regex(
    /^(overview|alerts|node:[A-Za-z0-9._:@/>-]{1,128}|link:[A-Za-z0-9._:@/>-]{1,128}~[A-Za-z0-9._:@/>-]{1,128}|table:(links|nodes)(\?[A-Za-z0-9%+=&._~*-]{0,250})?)$/,
    'view must be overview, alerts, node:<nodeId>, link:<nodeId>~<linkId> or table:links|nodes?…',
  )
  .superRefine((v, ctx) => {
    if (!v.startsWith('table:')) return;
    const t = parseTableView(v);
    if (typeof t === 'string') ctx.addIssue({ code: 'custom', message: `view ${v}: ${t}` });
  });
export type View = z.infer<typeof ViewSchema>;

export type ViewKind = 'overview' | 'alerts' | 'node' | 'link' | 'table';
export function viewKind(view: string): ViewKind {
  if (view === 'overview' || view === 'alerts') return view;
  if (view.startsWith('table:')) return 'table';
  return view.startsWith('node:') ? 'node' : 'link';
}

// ───────────────────────────── browser → hub ─────────────────────────────

export const SubscribeSchema = z.object({ type: z.literal('subscribe'), view: ViewSchema });
export const UnsubscribeSchema = z.object({ type: z.literal('unsubscribe'), view: ViewSchema });
export const PingSchema = z.object({
  type: z.literal('ping'),
  id: z.number().int().nonnegative().optional(),
});
export const LiveClientFrameSchema = z.discriminatedUnion('type', [
  SubscribeSchema,
  UnsubscribeSchema,
  PingSchema,
]);
export type LiveClientFrame = z.infer<typeof LiveClientFrameSchema>;

// ───────────────────────────── shared shapes ─────────────────────────────

const num = z.number().nullable();

export const RoleSchema = z.enum(['viewer', 'operator', 'admin']);
export type Role = z.infer<typeof RoleSchema>;

export const FreshnessSchema = z.enum(['fresh', 'stale', 'offline']);
export type Freshness = z.infer<typeof FreshnessSchema>;

/** One host as the hub sees it. */
export const NodeSummarySchema = z.object({
  id: z.string(),
  hostname: z.string(),
  /** Agent connected to the hub right now. */
  connected: z.boolean(),
  version: z.string(),
  providers: z.array(z.string()),
  /** Time of the last sample received (ms), null if none yet. */
  lastSampleTs: num,
  cpuPercent: num,
  rssBytes: num,
  eventLoopLagMs: num,
  /** Lag of the agent's data-path thread (null: the links run on the main loop, or no sample yet). */
  dataPathLagMs: num.optional(),
  uptimeS: num,
  linkCount: z.number(),
  linksUp: z.number(),
  /**
   * How current this node's figures are (hub clock): `fresh` while samples arrive, `stale` once a few
   * sample periods passed without one (figures frozen, shown greyed with their age), `offline` when the
   * agent is disconnected or silent past the hub's `freshness.offlineAfterS`.
   */
  freshness: FreshnessSchema.optional(),
  /** Hub clock (ms) when the last sample of this node arrived; null if none since the hub started. */
  lastDataAt: num.optional(),
  /** Links of this node that are down because their peer is the host at fault (offline, stale or cut off). */
  linksDownByPeer: z.number().optional(),
  /**
   * Worst state of the node's own fault: `offline`/`stale` from freshness, else the worst state of its
   * link ends, not counting ends that are down only because their peer is the host at fault.
   */
  health: z.enum(['ok', 'degraded', 'down', 'stale', 'offline']),
  /** The agent's labels from its hello (absent when it sent none). */
  labels: z.record(z.string(), z.string()).optional(),
});
export type NodeSummary = z.infer<typeof NodeSummarySchema>;

/** One link end (per node), figures of its latest sample. */
export const LinkSummarySchema = z.object({
  /** `<nodeId>~<linkId>`. */
  key: z.string(),
  id: z.string(),
  node: z.string(),
  peer: z.string(),
  direction: z.enum(['tx', 'rx']),
  transport: TransportSchema,
  provider: z.string(),
  state: LinkStateSchema,
  reason: z.string().optional(),
  /** Agent timestamp of the sample these figures come from (ms). */
  ts: z.number(),
  recordsPerS: z.number(),
  bytesPerS: z.number(),
  completionsPerS: z.number(),
  backpressurePerS: z.number(),
  errorsPerS: z.number(),
  /** Ring occupancy as a fraction of capacity, 0..1. */
  occupancy: z.number(),
  occupancyBytes: z.number(),
  capacityBytes: z.number(),
  /** Queue latency quantiles of the last sample's histogram delta (ns); null when no record passed. */
  p50Ns: num,
  p99Ns: num,
  p999Ns: num,
  /** Probe round trip p50 (ns), null when no probe. */
  rttP50Ns: num,
  /** Freshness of the node that reports this end: figures of a stale/offline node are frozen. */
  freshness: FreshnessSchema.optional(),
  /**
   * The peer as the end reported it, when the hub resolved it to a node (`peer` is then that node): an
   * application connects to an address (`10.0.0.12:7600`), and its receive end cannot name its peer.
   */
  peerAddress: z.string().optional(),
  /** The application owning this end (links an application runs itself, read from its statistics file). */
  app: z.string().optional(),
  /**
   * When this end is not up: the host at fault as both ends' fresh data tell it — the peer when the peer
   * is offline/stale or cut off from most of its peers, else this end's own node.
   */
  blame: z.string().optional(),
});
export type LinkSummary = z.infer<typeof LinkSummarySchema>;

export const KpiSchema = z.object({
  nodesTotal: z.number(),
  /** Nodes whose agent is connected AND sending (fresh). */
  nodesConnected: z.number(),
  nodesStale: z.number().optional(),
  nodesOffline: z.number().optional(),
  linksTotal: z.number(),
  linksUp: z.number(),
  linksDegraded: z.number(),
  linksDown: z.number(),
  /** Link ends reported by a stale/offline node: their figures are frozen, their state unknown. */
  linksFrozen: z.number().optional(),
  /** Sum over link ends with direction rx (each record counted once). */
  recordsPerS: z.number(),
  bytesPerS: z.number(),
  /** Highest and median link p99 queue latency (ns) among links with traffic. */
  p99MaxNs: num,
  p99MedianNs: num,
  /** Highest ring occupancy fraction. */
  occupancyMax: z.number(),
  alertsFiring: z.number(),
  alertsPending: z.number(),
  /** Agent samples ingested per second by the hub (last second). */
  samplesPerS: z.number(),
});
export type Kpi = z.infer<typeof KpiSchema>;

export const SeveritySchema = z.enum(['info', 'warning', 'critical']);
export type Severity = z.infer<typeof SeveritySchema>;

export const AlertAckSchema = z.object({ by: z.string(), at: z.number(), comment: z.string() });
export type AlertAck = z.infer<typeof AlertAckSchema>;

/** An active (pending or firing) alert instance, or a resolved one in history. */
export const AlertSchema = z.object({
  /** Stable fingerprint of rule + labels. */
  id: z.string(),
  ruleId: z.string(),
  ruleName: z.string(),
  state: z.enum(['pending', 'firing', 'resolved']),
  severity: SeveritySchema,
  labels: z.record(z.string(), z.string()),
  summary: z.string(),
  /** The rule's metric (`MetricName`), so every reader formats value and threshold in its unit (format.ts). */
  metric: z.string().optional(),
  /** Value of the metric at the last evaluation. */
  value: num,
  threshold: z.number(),
  /** When the condition first became true (pending since), ms. */
  activeAt: z.number(),
  /** When it started firing, null while pending. */
  firedAt: num,
  resolvedAt: num,
  ack: AlertAckSchema.nullable(),
  /** Ids of silences that match it now; a silenced alert is not notified. */
  silencedBy: z.array(z.string()),
});
export type Alert = z.infer<typeof AlertSchema>;

export const LivePointSchema = z.object({
  ts: z.number(),
  recordsPerS: num,
  bytesPerS: num,
  completionsPerS: num,
  backpressurePerS: num,
  errorsPerS: num,
  occupancyBytes: num,
  p50Ns: num,
  p99Ns: num,
  p999Ns: num,
});
export type LivePoint = z.infer<typeof LivePointSchema>;

export const HostPointSchema = z.object({
  ts: z.number(),
  cpuPercent: num,
  rssBytes: num,
  eventLoopLagMs: num,
});
export type HostPoint = z.infer<typeof HostPointSchema>;

// ───────────────────────────── view payloads ─────────────────────────────

/** The overview: KPIs, firing alerts and the packed picture of every node and link end (overview.ts). */
export const OverviewSnapshotSchema = z.object({
  layout: OverviewLayoutSnapshotSchema,
  kpi: KpiSchema,
  /** Firing alerts (what every page shows in its banner). */
  alerts: z.array(AlertSchema),
});
export type OverviewSnapshot = z.infer<typeof OverviewSnapshotSchema>;

/** Changes since the previous frame: the entries whose picture changed; KPIs and alerts replace. */
export const OverviewDeltaSchema = z.object({
  layout: OverviewLayoutDeltaSchema,
  kpi: KpiSchema,
  /** Full list of firing alerts (small), replaces the previous list. */
  alerts: z.array(AlertSchema),
});
export type OverviewDelta = z.infer<typeof OverviewDeltaSchema>;

/**
 * A window of a table view: `total` rows match the filter, `rows` are those from `offset` in the view's
 * sort order (at most its `limit`). Link tables carry LinkSummary rows, node tables NodeSummary rows.
 */
export const TableSnapshotSchema = z.object({
  table: z.enum(['links', 'nodes']),
  total: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  rows: z.union([z.array(LinkSummarySchema), z.array(NodeSummarySchema)]),
});
export type TableSnapshot = z.infer<typeof TableSnapshotSchema>;

/**
 * Changes of a window: rows new to it (whole), the fields that changed of rows it already held (`patches`,
 * each naming its row by `key` or `id`), and the window's order when it changed.
 */
export const TableDeltaSchema = z.object({
  table: z.enum(['links', 'nodes']),
  total: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  /** Keys (links) or ids (nodes) of the window in order; absent: same as before. */
  order: z.array(z.string()).optional(),
  rows: z.union([z.array(LinkSummarySchema), z.array(NodeSummarySchema)]),
  patches: z
    .union([
      z.array(LinkSummarySchema.partial().extend({ key: z.string() })),
      z.array(NodeSummarySchema.partial().extend({ id: z.string() })),
    ])
    .optional(),
});
export type TableDelta = z.infer<typeof TableDeltaSchema>;

type TableRow = LinkSummary | NodeSummary;
const rowKeyOf = (r: TableRow) => ('key' in r ? r.key : r.id);

/**
 * A window after a delta (browser and tests): rows sent whole replace, patches merge into held rows, the
 * order is the hub's when it sent one; unchanged rows keep their identity. Throws when the delta names a
 * row the window does not hold (a lost frame): the caller subscribes again.
 */
export function applyTableDelta(prev: TableSnapshot, d: TableDelta): TableSnapshot {
  const by = new Map<string, TableRow>(prev.rows.map((r) => [rowKeyOf(r), r]));
  for (const r of d.rows) by.set(rowKeyOf(r), r);
  for (const p of d.patches ?? []) {
    const k = 'key' in p ? p.key : p.id;
    const held = by.get(k);
    if (!held) throw new Error(`table delta: patch of row ${k}, which is not held`);
    by.set(k, { ...held, ...p } as TableRow);
  }
  const order = d.order ?? prev.rows.map(rowKeyOf);
  const rows: TableRow[] = [];
  for (const k of order) {
    const r = by.get(k);
    if (!r) throw new Error(`table delta: row ${k} is neither held nor sent`);
    rows.push(r);
  }
  return { table: d.table, total: d.total, offset: d.offset, rows: rows as TableSnapshot['rows'] };
}

export const AlertsSnapshotSchema = z.object({
  /** Pending and firing alerts. */
  active: z.array(AlertSchema),
  /** Most recent resolved alerts (newest first, up to 100). */
  recent: z.array(AlertSchema),
});
export type AlertsSnapshot = z.infer<typeof AlertsSnapshotSchema>;

export const AlertsDeltaSchema = z.object({
  /** Alerts that appeared or changed (state, ack, silences, value). */
  upserted: z.array(AlertSchema),
  /** Ids no longer active (their resolved form, if any, is in `resolved`). */
  removed: z.array(z.string()),
  resolved: z.array(AlertSchema),
});
export type AlertsDelta = z.infer<typeof AlertsDeltaSchema>;

export const NodeSnapshotSchema = z.object({
  node: NodeSummarySchema,
  links: z.array(LinkSummarySchema),
  /** Host figures, 1 s points, last 5 minutes (older: REST history). */
  points: z.array(HostPointSchema),
  alerts: z.array(AlertSchema),
});
export type NodeSnapshot = z.infer<typeof NodeSnapshotSchema>;

export const NodeDeltaSchema = z.object({
  node: NodeSummarySchema,
  links: z.array(LinkSummarySchema),
  removedLinks: z.array(z.string()),
  /** New 1 s points since the previous frame (append). */
  points: z.array(HostPointSchema),
  alerts: z.array(AlertSchema),
});
export type NodeDelta = z.infer<typeof NodeDeltaSchema>;

export const LinkSnapshotSchema = z.object({
  link: LinkSummarySchema,
  /** Cumulative counters of the latest sample (this agent run). */
  counters: z.object({
    records: z.number(),
    bytes: z.number(),
    completions: z.number(),
    creditUpdates: z.number(),
    backpressure: z.number(),
    wraps: z.number(),
    resends: z.number(),
    reconnects: z.number(),
    errors: z.record(z.string(), z.number()),
  }),
  /** 1 s points, last 5 minutes (older: REST history). */
  points: z.array(LivePointSchema),
  alerts: z.array(AlertSchema),
});
export type LinkSnapshot = z.infer<typeof LinkSnapshotSchema>;

export const LinkDeltaSchema = LinkSnapshotSchema;
export type LinkDelta = LinkSnapshot;

// ───────────────────────────── hub → browser ─────────────────────────────

export const LiveWelcomeSchema = z.object({
  type: z.literal('welcome'),
  v: z.literal(LIVE_PROTOCOL_VERSION),
  user: z.object({ name: z.string(), role: RoleSchema }),
  hubVersion: z.string(),
  serverTime: z.number(),
});

const frameBase = { view: z.string(), seq: z.number().int().positive(), ts: z.number() };

export const LiveSnapshotSchema = z.discriminatedUnion('kind', [
  z.object({
    type: z.literal('snapshot'),
    kind: z.literal('overview'),
    ...frameBase,
    data: OverviewSnapshotSchema,
  }),
  z.object({
    type: z.literal('snapshot'),
    kind: z.literal('alerts'),
    ...frameBase,
    data: AlertsSnapshotSchema,
  }),
  z.object({ type: z.literal('snapshot'), kind: z.literal('node'), ...frameBase, data: NodeSnapshotSchema }),
  z.object({ type: z.literal('snapshot'), kind: z.literal('link'), ...frameBase, data: LinkSnapshotSchema }),
  z.object({
    type: z.literal('snapshot'),
    kind: z.literal('table'),
    ...frameBase,
    data: TableSnapshotSchema,
  }),
]);
export type LiveSnapshot = z.infer<typeof LiveSnapshotSchema>;

export const LiveDeltaSchema = z.discriminatedUnion('kind', [
  z.object({
    type: z.literal('delta'),
    kind: z.literal('overview'),
    ...frameBase,
    data: OverviewDeltaSchema,
  }),
  z.object({ type: z.literal('delta'), kind: z.literal('alerts'), ...frameBase, data: AlertsDeltaSchema }),
  z.object({ type: z.literal('delta'), kind: z.literal('node'), ...frameBase, data: NodeDeltaSchema }),
  z.object({ type: z.literal('delta'), kind: z.literal('link'), ...frameBase, data: LinkDeltaSchema }),
  z.object({ type: z.literal('delta'), kind: z.literal('table'), ...frameBase, data: TableDeltaSchema }),
]);
export type LiveDelta = z.infer<typeof LiveDeltaSchema>;

export const LiveResyncSchema = z.object({
  type: z.literal('resync'),
  view: z.string(),
  /** e.g. "slow consumer: 12 deltas merged while the socket was backed up". */
  reason: z.string(),
});

/** A view that does not exist (unknown node or link) is answered with `error` code `ERR_RDMAQ_NO_VIEW`. */
export const LiveErrorSchema = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  view: z.string().optional(),
});

export const PongSchema = z.object({
  type: z.literal('pong'),
  id: z.number().optional(),
  serverTime: z.number(),
});

export type LiveServerFrame =
  | z.infer<typeof LiveWelcomeSchema>
  | LiveSnapshot
  | LiveDelta
  | z.infer<typeof LiveResyncSchema>
  | z.infer<typeof LiveErrorSchema>
  | z.infer<typeof PongSchema>;

/** Close codes of `/ws/live` (besides CloseCode of the agent protocol). */
export const LiveCloseCode = {
  Unauthorized: 4001,
  BadFrame: 4000,
  Forbidden: 4004,
  TooManySubscriptions: 4005,
} as const;

// ───────────────────────────── REST shapes shared with the browser ─────────────────────────────

export const MetricNameSchema = z.enum([
  'latency_p50',
  'latency_p99',
  'latency_p999',
  'records_rate',
  'bytes_rate',
  'completions_rate',
  'backpressure_rate',
  'errors_rate',
  'occupancy_ratio',
  'link_down',
  'link_stalled',
  /** Seconds a link's ring has been ≥ 95 % full with no record delivered, judged on both ends (0: moving). */
  'ring_stuck',
  'agent_offline',
]);
export type MetricName = z.infer<typeof MetricNameSchema>;

export const ComparisonSchema = z.enum(['>', '>=', '<', '<=']);

/** An alert rule; `for`/`keepFiringFor` in seconds. Firing clears only once the value passes `clear`. */
export const AlertRuleSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'rule id: lower-case letters, digits, _ and -'),
  name: z.string().min(1).max(128),
  metric: MetricNameSchema,
  comparison: ComparisonSchema,
  threshold: z.number().finite(),
  /** Hysteresis: once firing, resolves only when the value no longer satisfies `comparison clear`. */
  clear: z.number().finite(),
  forS: z.number().nonnegative().max(86_400),
  keepFiringForS: z.number().nonnegative().max(86_400),
  /**
   * Latency metrics only: 0 judges each sample's own histogram (the latest second); N > 0 judges the
   * quantile of the histogram merged over the last N seconds (in 5 s slots, so 30 means the last 30–35 s),
   * which is what a tail percentile needs to mean anything. At most the hub's `history.latencyWindowS`.
   */
  windowS: z.number().int().nonnegative().max(3600).default(0),
  severity: SeveritySchema,
  labels: z.record(z.string().max(64), z.string().max(256)).default({}),
  enabled: z.boolean().default(true),
  /**
   * Only evaluate link ends / nodes whose labels equal these (node, link, peer, direction, transport,
   * provider, provider_class — see providers.ts).
   */
  match: z.record(z.string().max(64), z.string().max(256)).default({}),
});
export type AlertRule = z.infer<typeof AlertRuleSchema>;

export const MatcherSchema = z.object({
  name: z.string().min(1).max(64),
  value: z.string().max(256),
  isRegex: z.boolean().default(false),
  isEqual: z.boolean().default(true),
});
export type Matcher = z.infer<typeof MatcherSchema>;

export const SilenceSchema = z.object({
  id: z.string(),
  matchers: z.array(MatcherSchema).min(1),
  startsAt: z.number(),
  endsAt: z.number(),
  createdBy: z.string(),
  comment: z.string(),
  /** active: now within [startsAt, endsAt); expired; pending: startsAt in the future. */
  status: z.enum(['active', 'pending', 'expired']),
  /**
   * Set on a stored silence the hub cannot use under its current rules (e.g. a regex it cannot match in
   * linear time): the reason. Such a silence silences nothing; expire it and create a new one.
   */
  invalid: z.string().optional(),
});
export type Silence = z.infer<typeof SilenceSchema>;

export const HistoryPointSchema = LivePointSchema.extend({
  /** 1 when the link was up during the whole bucket, 0 when down throughout. */
  upRatio: num,
});
export type HistoryPoint = z.infer<typeof HistoryPointSchema>;

export const HistoryResponseSchema = z.object({
  link: z.string(),
  from: z.number(),
  to: z.number(),
  /** Source resolution used: 1 s (memory), 60 s or 3600 s (SQLite roll-ups). */
  resolutionS: z.union([z.literal(1), z.literal(60), z.literal(3600)]),
  /** Width of each returned point in ms (≥ resolution; points ≤ requested). */
  stepMs: z.number(),
  points: z.array(HistoryPointSchema),
});
export type HistoryResponse = z.infer<typeof HistoryResponseSchema>;

export const MeSchema = z.object({ name: z.string(), role: RoleSchema });
export type Me = z.infer<typeof MeSchema>;
