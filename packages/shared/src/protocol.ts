/**
 * Agent ⇄ hub wire protocol (WebSocket `/ws/agent`, JSON text frames, one message per frame).
 *
 *   agent → hub: hello, then sample (every interval) and event frames, in any order
 *   hub → agent: welcome (answer to hello), ack (highest sample seq stored), error (then close)
 *
 * Every frame carries `v` (PROTOCOL_VERSION). The hub validates each frame with these schemas and refuses
 * anything else with a close code from `CloseCode`; it never trusts an agent's numbers blindly.
 *
 * Samples are numbered per agent process (`seq`, from 1, +1 per sample) under a `runId` chosen at agent
 * start, so the hub can deduplicate replayed samples after a reconnect: it keeps the highest seq stored per
 * (node, runId) and tells the agent in `welcome.lastSeq`; the agent replays only what came after.
 */
import { z } from 'zod';
import { BUCKET_COUNT } from './histogram.js';

export const PROTOCOL_VERSION = 1;
/** Largest frame either side accepts (bytes). A sample of 256 links with busy histograms fits easily. */
export const MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_LINKS_PER_SAMPLE = 1024;

/** WebSocket close codes used by the hub (4000–4999 is the application range). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  TooBig: 1009,
  BadFrame: 4000,
  Unauthorized: 4001,
  ProtocolVersion: 4002,
  Duplicate: 4003,
  Forbidden: 4004,
} as const;

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@/>-]+$/, 'use letters, digits and . _ : @ / - > only');

const count = z.number().int().nonnegative().finite();
const nonNeg = z.number().nonnegative().finite();

export const TransportSchema = z.enum(['shm', 'fabric']);
export type Transport = z.infer<typeof TransportSchema>;

export const IdleStrategySchema = z.enum(['busy-spin', 'backoff', 'event']);
export type IdleStrategy = z.infer<typeof IdleStrategySchema>;

/**
 * `degraded`: connected, but the agent's probes go unanswered; `stalled`: connected, but records wait and none
 * have moved for a while (rdma-core's own verdict from both ends' heartbeats: a consumer that does not
 * consume, or a fabric path that delivers nothing).
 */
export const LinkStateSchema = z.enum(['connecting', 'up', 'degraded', 'stalled', 'down']);
export type LinkState = z.infer<typeof LinkStateSchema>;

/** Sparse histogram buckets: [index, count] pairs, index ascending. */
export const SparseBucketsSchema = z
  .array(
    z.tuple([
      z
        .number()
        .int()
        .min(0)
        .max(BUCKET_COUNT - 1),
      count,
    ]),
  )
  .max(BUCKET_COUNT);

export const LinkCountersSchema = z.object({
  records: count,
  bytes: count,
  completions: count,
  creditUpdates: count,
  backpressure: count,
  wraps: count,
  resends: count,
  reconnects: count,
  /** Errors by kind (e.g. bad_header, handshake, peer_gone), cumulative. */
  errors: z.record(z.string().max(64), count),
});
export type LinkCounters = z.infer<typeof LinkCountersSchema>;

/** Counters of a link that has carried nothing yet (a fresh object each call: callers mutate it). */
export function emptyLinkCounters(): LinkCounters {
  return {
    records: 0,
    bytes: 0,
    completions: 0,
    creditUpdates: 0,
    backpressure: 0,
    wraps: 0,
    resends: 0,
    reconnects: 0,
    errors: {},
  };
}

export const LinkSampleSchema = z.object({
  id,
  /** Node id of the host at the other end. */
  peer: id,
  /** tx: this node sends on the link; rx: it receives. A bidirectional connection is two links. */
  direction: z.enum(['tx', 'rx']),
  transport: TransportSchema,
  provider: z.string().max(64),
  state: LinkStateSchema,
  reason: z.string().max(512).optional(),
  /** Cumulative since the link object was created on this agent run. */
  counters: LinkCountersSchema,
  gauges: z.object({
    occupancyBytes: count,
    peakOccupancyBytes: count,
    capacityBytes: count,
  }),
  /** Histogram bucket counts added since the previous sample (deltas, so the hub merges by adding). */
  latency: z.object({
    queue: SparseBucketsSchema,
    rtt: SparseBucketsSchema,
  }),
  /**
   * Who holds this end: the agent itself (absent or 'agent') or an application process on the node that uses
   * rdma-core directly ('app'; read from its statistics file). Optional: older agents omit it.
   */
  origin: z.enum(['agent', 'app']).optional(),
  /** The application's name (origin 'app'): what it set with setAppName(), else its command line. */
  app: z.string().max(128).optional(),
  /** The application's process exited or closed the link: this is the link's last sample. */
  gone: z.boolean().optional(),
});
export type LinkSample = z.infer<typeof LinkSampleSchema>;

export const HostFiguresSchema = z.object({
  cpuPercent: nonNeg,
  rssBytes: count,
  /** Lag of the agent's main event loop (sampling, WebSocket, HTTP). */
  eventLoopLagMs: nonNeg,
  /**
   * Lag of the thread that runs the links (consumers, traffic, probes) when it is not the main one: what
   * queue latency waits behind. Absent from agents that run their links on the main loop.
   */
  dataPathLagMs: nonNeg.optional(),
  uptimeS: nonNeg,
});
export type HostFigures = z.infer<typeof HostFiguresSchema>;

/**
 * Operator labels of a host (agent config `labels:`), e.g. `{ rack: "r07", role: "gpu" }`: the dashboard
 * groups large clusters by `rack`. Bounded: ≤ 16 keys, key ≤ 64 and value ≤ 128 characters.
 */
export const MAX_LABELS = 16;
export const LabelsSchema = z
  .record(z.string().min(1).max(64), z.string().max(128))
  .refine((r) => Object.keys(r).length <= MAX_LABELS, { message: `at most ${MAX_LABELS} labels` });
export type Labels = z.infer<typeof LabelsSchema>;

export const HelloSchema = z.object({
  type: z.literal('hello'),
  v: z.literal(PROTOCOL_VERSION),
  nodeId: id,
  runId: id,
  hostname: z.string().max(256),
  version: z.string().max(64),
  providers: z.array(z.string().max(64)).max(64),
  startedAt: count,
  intervalMs: z.number().int().min(100).max(60_000),
  /** Optional (agents before labels send none; hubs before labels ignore it). */
  labels: LabelsSchema.optional(),
  /**
   * The host's own non-loopback IP addresses (optional, ≤ 16): the hub resolves link peers given as an
   * address (an application's `connect('10.0.0.12:7600')`) to this node, so blame and inhibition reach them.
   */
  addresses: z.array(z.string().min(2).max(45)).max(16).optional(),
});
export type Hello = z.infer<typeof HelloSchema>;

export const SampleSchema = z.object({
  type: z.literal('sample'),
  v: z.literal(PROTOCOL_VERSION),
  seq: z.number().int().positive(),
  /** Wall-clock time of the sample, ms since the epoch. */
  ts: count,
  host: HostFiguresSchema,
  links: z.array(LinkSampleSchema).max(MAX_LINKS_PER_SAMPLE),
});
export type Sample = z.infer<typeof SampleSchema>;

export const EventKindSchema = z.enum(['link_state', 'link_error', 'agent', 'hub_error']);
export const EventSchema = z.object({
  type: z.literal('event'),
  v: z.literal(PROTOCOL_VERSION),
  ts: count,
  kind: EventKindSchema,
  severity: z.enum(['info', 'warning', 'critical']),
  link: id.optional(),
  state: LinkStateSchema.optional(),
  code: z.string().max(64).optional(),
  message: z.string().max(2048),
});
export type AgentEvent = z.infer<typeof EventSchema>;

export const AgentFrameSchema = z.discriminatedUnion('type', [HelloSchema, SampleSchema, EventSchema]);
export type AgentFrame = z.infer<typeof AgentFrameSchema>;

export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  v: z.literal(PROTOCOL_VERSION),
  hubVersion: z.string().max(64),
  /** Highest sample seq the hub already holds for this (nodeId, runId); 0 if none. Replay starts after it. */
  lastSeq: count,
});
export type Welcome = z.infer<typeof WelcomeSchema>;

export const AckSchema = z.object({
  type: z.literal('ack'),
  v: z.literal(PROTOCOL_VERSION),
  seq: count,
});
export type Ack = z.infer<typeof AckSchema>;

export const HubErrorSchema = z.object({
  type: z.literal('error'),
  v: z.literal(PROTOCOL_VERSION),
  code: z.string().max(64),
  message: z.string().max(2048),
});
export type HubError = z.infer<typeof HubErrorSchema>;

export const HubFrameSchema = z.discriminatedUnion('type', [WelcomeSchema, AckSchema, HubErrorSchema]);
export type HubFrame = z.infer<typeof HubFrameSchema>;

/** Result of decoding one frame: either the typed frame or a reason fit for a log line and a close frame. */
export type Decoded<T> = { ok: true; frame: T } | { ok: false; reason: string; closeCode: number };

/** Parses and validates raw frame bytes with a schema; never throws. */
export function decodeFrame<T>(schema: z.ZodType<T>, raw: string | Buffer): Decoded<T> {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size > MAX_FRAME_BYTES) {
    return {
      ok: false,
      reason: `frame of ${size} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`,
      closeCode: CloseCode.TooBig,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    return {
      ok: false,
      reason: `frame is not JSON: ${(err as Error).message}`,
      closeCode: CloseCode.BadFrame,
    };
  }
  if (json && typeof json === 'object' && 'v' in json && (json as { v: unknown }).v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      reason: `protocol version ${String((json as { v: unknown }).v)} is not supported (this side speaks ${PROTOCOL_VERSION}); upgrade the older side`,
      closeCode: CloseCode.ProtocolVersion,
    };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    return { ok: false, reason: describeZodError(parsed.error), closeCode: CloseCode.BadFrame };
  return { ok: true, frame: parsed.data };
}

/** One line naming each bad field: `links.0.counters.bytes: expected number, received string`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(frame)'}: ${i.message}`)
    .join('; ');
}
