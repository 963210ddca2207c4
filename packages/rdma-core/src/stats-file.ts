/**
 * Reader of the per-process statistics files (native/stats_file.h has the layout and the memory-ordering
 * rules): every process that uses rdma-core publishes its links in /dev/shm/rdmaq-stats-<pid>-<starttime>;
 * the agent and `rdmaq-stat` read them here.
 *
 * Two ways in, one validator:
 *  - native (default when the addon loads): a read-only mapping per file; `snapshot()` copies each slot under
 *    its seqlock (bounded retries, never blocking the writer), SIGBUS-guarded, into a compact buffer;
 *  - fs (no addon, or `useNative: false`): positional reads of the header, the slot metadata (each slot read
 *    until two copies agree and its sequence is even) and the histogram ranges the bitmaps name, assembled
 *    into the same compact buffer.
 * `parseSnapshot` then checks every field (magic, version, sizes, counts, strings, histogram sums) and returns
 * typed links, or a StatsFileError naming the file and the reason. A slot with a bad field is reported and
 * skipped; the rest of the file is still read — a process can only garble its own links.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { NativeAddon, NativeStatsMap } from './native.js';
import type { LinkState, SparseBuckets } from './types.js';

export const STATS_FILE_PREFIX = 'rdmaq-stats-';
export const STATS_LAYOUT_VERSION = 1;
const MAGIC = 'RDMAQSTF';
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1');
const HEADER = 4096;
const META = 2048;
const BUCKETS = 3712;
const BITMAP_WORDS = 58;
const HIST_BYTES = BUCKETS * 8;
const SLOT_HIST = 2 * HIST_BYTES;
const MAX_SLOTS = 4096;
const APP_MAX = 256;
const READ_TRIES = 64;

// Header and slot offsets (stats_file.h namespaces H and M).
const H = {
  version: 8,
  headerSize: 12,
  metaSize: 16,
  slotHistSize: 20,
  slotCount: 24,
  buckets: 28,
  pid: 32,
  flags: 36,
  startTime: 40,
  createdMs: 48,
  heartbeatMs: 56,
  appSeq: 64,
  appLen: 72,
  droppedLinks: 76,
  highWater: 80,
  app: 128,
} as const;
const M = {
  inUse: 8,
  generation: 12,
  role: 16,
  transport: 17,
  state: 18,
  errorKinds: 19,
  idLen: 20,
  peerLen: 22,
  providerLen: 24,
  /** u16, moved by the writer with every string change after allocation (readers compare bytes 8..32). */
  namesSeq: 26,
  epoch: 32,
  openedMs: 40,
  updatedMonoMs: 48,
  counters: 56,
  gauges: 136,
  queueHist: 160,
  rttHist: 184,
  errors: 208,
  linkId: 464,
  peer: 720,
  provider: 848,
  queueBitmap: 1024,
  rttBitmap: 1488,
} as const;

export const LINK_STATES: readonly LinkState[] = ['connecting', 'up', 'degraded', 'stalled', 'down'];

export interface StatsLink {
  /** Slot index and its generation: together they name this link end for as long as it is open. */
  slot: number;
  generation: number;
  linkId: string;
  peer: string;
  role: 'sender' | 'receiver';
  direction: 'tx' | 'rx';
  transport: 'shm' | 'fabric';
  provider: string;
  state: LinkState;
  epoch: number;
  openedMs: number;
  /** CLOCK_MONOTONIC ms of the last publication with a clock reading (0 if none yet). */
  updatedMonoMs: number;
  counters: {
    records: number;
    bytes: number;
    completions: number;
    creditUpdates: number;
    backpressure: number;
    wraps: number;
    resends: number;
    reconnects: number;
    wakeups: number;
    errors: Record<string, number>;
  };
  /** peakOccupancyBytes: highest occupancy of the last 1–2 s (the writer's window). */
  gauges: { occupancyBytes: number; peakOccupancyBytes: number; capacityBytes: number };
  /**
   * Cumulative sparse buckets ([index, count], index ascending), @rdmaq/shared layout; min/max in ns.
   * queueDelta/rttDelta: what was added since the previous scan of the same StatsReader (all of it at the
   * first), for samplers that ship increments.
   */
  latency: {
    queue: SparseBuckets;
    rtt: SparseBuckets;
    queueDelta: SparseBuckets;
    rttDelta: SparseBuckets;
    queueMinNs: number;
    queueMaxNs: number;
    rttMinNs: number;
    rttMaxNs: number;
  };
}

export interface StatsFileSnapshot {
  path: string;
  pid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTime: number;
  app: string;
  /** The file belongs to an rdmaq agent (header flag). */
  agent: boolean;
  /** Inode of the process's network namespace (/proc/<pid>/ns/net), when readable. */
  netns?: number;
  createdMs: number;
  heartbeatMs: number;
  slotCount: number;
  /** Links that found no free slot (the file is full: RDMAQ_STATS_SLOTS). */
  droppedLinks: number;
  links: StatsLink[];
  /** Slots that never held still long enough for a consistent copy (a writer mid-update every time). */
  busySlots: number;
  /** Slots skipped because a field was invalid, with the reason. */
  badSlots: Array<{ slot: number; reason: string }>;
}

/** A statistics file that cannot be read: `file` names it, `reason` says why. */
export class StatsFileError extends Error {
  readonly code = 'ERR_RDMAQ_STATS_FILE';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`statistics file ${file}: ${reason}`);
    this.name = 'StatsFileError';
  }
}

export function defaultStatsDir(): string {
  return process.env.RDMAQ_STATS_DIR || '/dev/shm';
}

/** pid and start time from a file name, or undefined if it is not a statistics file name. */
export function parseStatsFileName(name: string): { pid: number; startTime: number } | undefined {
  const m = /^rdmaq-stats-(\d{1,10})-(\d{1,20})$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const startTime = Number(m[2]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !Number.isSafeInteger(startTime)) return undefined;
  return { pid, startTime };
}

/** Start time (field 22 of /proc/<pid>/stat) of a live process, or undefined when there is none. */
export function processStartTime(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return startTimeOf(text);
}

/** A process the reader watches: its open /proc/<pid>/comm and (once read) its network namespace. */
interface ProcWatch {
  fd: number;
  netns: number | undefined;
}

function startTimeOf(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field 22 is fields[19].
  const v = Number(fields[19]);
  return Number.isFinite(v) ? v : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads little-endian integers from a buffer, refusing values beyond 2^53 (they are not counts). */
class View {
  readonly dv: DataView;
  constructor(readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(o: number): number {
    return this.buf[o]!;
  }
  u16(o: number): number {
    return this.dv.getUint16(o, true);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, true);
  }
  /** u64 as a number, or -1 if ≥ 2^53. */
  u64(o: number): number {
    const hi = this.dv.getUint32(o + 4, true);
    if (hi >= 0x200000) return -1;
    return hi * 4294967296 + this.dv.getUint32(o, true);
  }
  str(o: number, len: number): string {
    return utf8.decode(this.buf.subarray(o, o + len));
  }
}

class SlotError extends Error {}

function count(v: View, o: number, what: string): number {
  const n = v.u64(o);
  if (n < 0) throw new SlotError(`${what} is beyond 2^53`);
  return n;
}

function text(v: View, o: number, len: number, max: number, what: string, min = 0): string {
  if (len < min || len > max) throw new SlotError(`${what} length ${len} outside ${min}..${max}`);
  try {
    return v.str(o, len);
  } catch {
    throw new SlotError(`${what} is not valid UTF-8`);
  }
}

function buckets(v: View, at: number, n: number, what: string): { list: SparseBuckets; sum: number } {
  const list: SparseBuckets = new Array(n);
  let prev = -1;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = at + i * 16;
    const idx = v.u32(o);
    if (idx >= BUCKETS || idx <= prev)
      throw new SlotError(`${what} bucket index ${idx} out of order or range`);
    prev = idx;
    const c = v.u64(o + 8);
    if (c < 0) throw new SlotError(`${what} bucket ${idx} count is beyond 2^53`);
    sum += c;
    list[i] = [idx, c];
  }
  if (sum > Number.MAX_SAFE_INTEGER) throw new SlotError(`${what} buckets sum beyond 2^53`);
  return { list: list.filter((p) => p[1] > 0), sum };
}

/** The header of a compact snapshot, validated; `memo` caches the decoded application name. */
function parseHeader(
  path: string,
  v: View,
  fileSize: number,
  memo?: FileMemo,
): { snap: StatsFileSnapshot; highWater: number } {
  const buf = v.buf;
  const bad = (why: string): never => {
    throw new StatsFileError(path, why);
  };
  if (fileSize < HEADER || buf.length < HEADER)
    bad(`file is ${fileSize} bytes, smaller than the ${HEADER}-byte header (truncated)`);
  let magicOk = buf.length >= 8;
  for (let k = 0; k < 8 && magicOk; k++) magicOk = buf[k] === MAGIC_BYTES[k];
  const magic = magicOk ? MAGIC : Buffer.from(buf.subarray(0, 8)).toString('latin1');
  if (magic !== MAGIC)
    bad(
      magic === '\0\0\0\0\0\0\0\0'
        ? 'no magic yet (file being created, or zeroed)'
        : `bad magic ${JSON.stringify(magic)} (expected ${MAGIC}): not an rdmaq statistics file`,
    );
  const version = v.u32(H.version);
  if (version !== STATS_LAYOUT_VERSION)
    bad(
      `layout version ${version}, this reader knows ${STATS_LAYOUT_VERSION}: run an agent/rdmaq-stat of the same rdmaq version as the application`,
    );
  const sizes: Array<[string, number, number]> = [
    ['header size', v.u32(H.headerSize), HEADER],
    ['slot metadata size', v.u32(H.metaSize), META],
    ['slot histogram size', v.u32(H.slotHistSize), SLOT_HIST],
    ['histogram bucket count', v.u32(H.buckets), BUCKETS],
  ];
  for (const [what, got, want] of sizes) if (got !== want) bad(`${what} ${got}, expected ${want}`);
  const slotCount = v.u32(H.slotCount);
  if (slotCount < 1 || slotCount > MAX_SLOTS) bad(`slot count ${slotCount} outside 1..${MAX_SLOTS}`);
  const need = HEADER + slotCount * (META + SLOT_HIST);
  if (fileSize < need) bad(`file is ${fileSize} bytes, ${slotCount} slots need ${need} (truncated)`);
  const highWater = v.u32(H.highWater);
  if (highWater > slotCount) bad(`${highWater} slots used of ${slotCount}`);
  const pid = v.u32(H.pid);
  if (pid < 1) bad('pid 0');
  const startTime = count(v, H.startTime, 'start time');
  const appLen = v.u32(H.appLen);
  const appSeq = v.u64(H.appSeq);
  let app: string;
  if (memo && memo.appSeq === appSeq && appSeq % 2 === 0 && memo.appLen === appLen) app = memo.app;
  else {
    try {
      app = text(v, H.app, appLen, APP_MAX, 'application name');
    } catch (e) {
      return bad((e as Error).message);
    }
    // An odd sequence: the name is being rewritten right now; decode it again next time.
    if (memo) {
      memo.app = app;
      memo.appLen = appLen;
      memo.appSeq = appSeq % 2 === 0 ? appSeq : -1;
    }
  }
  const snap: StatsFileSnapshot = {
    path,
    pid,
    startTime,
    app,
    agent: (v.u32(H.flags) & 1) === 1,
    createdMs: Math.max(0, v.u64(H.createdMs)),
    heartbeatMs: Math.max(0, v.u64(H.heartbeatMs)),
    slotCount,
    droppedLinks: v.u32(H.droppedLinks),
    links: [],
    busySlots: 0,
    badSlots: [],
  };
  return { snap, highWater };
}

/**
 * Validates a compact snapshot (see stats_file.h `snapshot()`) of the file `path` whose size is `fileSize`.
 * Throws StatsFileError for anything wrong with the file as a whole.
 */
export function parseSnapshot(path: string, buf: Uint8Array, fileSize: number): StatsFileSnapshot {
  const v = new View(buf);
  const { snap, highWater } = parseHeader(path, v, fileSize);
  const bad = (why: string): never => {
    throw new StatsFileError(path, why);
  };
  let at = HEADER;
  for (let slot = 0; slot < highWater; slot++) {
    if (at + META + 8 > buf.length) bad(`snapshot ends inside slot ${slot}`);
    const nq = v.u32(at + META);
    const nr = v.u32(at + META + 4);
    if (nq > BUCKETS || nr > BUCKETS) bad(`slot ${slot} lists ${nq}/${nr} histogram buckets`);
    const next = at + META + 8 + (nq + nr) * 16;
    if (next > buf.length) bad(`snapshot ends inside slot ${slot}'s histograms`);
    try {
      const seq = v.u64(at);
      if (seq < 0 || seq % 2 === 1) snap.busySlots++;
      else {
        const link = parseSlot(v, at, slot, nq, nr);
        if (link) snap.links.push(link);
      }
    } catch (e) {
      if (!(e instanceof SlotError)) throw e;
      snap.badSlots.push({ slot, reason: e.message });
    }
    at = next;
  }
  return snap;
}

function parseSlot(v: View, at: number, slot: number, nq: number, nr: number): StatsLink | undefined {
  const inUse = v.u32(at + M.inUse);
  if (inUse === 0) return undefined;
  if (inUse !== 1) throw new SlotError(`in-use flag ${inUse}`);
  const role = v.u8(at + M.role);
  const transport = v.u8(at + M.transport);
  const state = v.u8(at + M.state);
  const kinds = v.u8(at + M.errorKinds);
  if (role !== 1 && role !== 2) throw new SlotError(`role ${role}`);
  if (transport !== 1 && transport !== 2) throw new SlotError(`transport ${transport}`);
  if (state >= LINK_STATES.length) throw new SlotError(`state ${state}`);
  if (kinds > 8) throw new SlotError(`${kinds} error kinds (at most 8)`);
  const linkId = text(v, at + M.linkId, v.u16(at + M.idLen), 256, 'link id', 1);
  const peer = text(v, at + M.peer, v.u16(at + M.peerLen), 128, 'peer');
  const provider = text(v, at + M.provider, v.u16(at + M.providerLen), 64, 'provider');
  const c = at + M.counters;
  const names = [
    'records',
    'bytes',
    'completions',
    'creditUpdates',
    'backpressure',
    'wraps',
    'resends',
    'reconnects',
    'wakeups',
  ] as const;
  const counters = { errors: {} as Record<string, number> } as StatsLink['counters'];
  names.forEach((n, i) => {
    counters[n] = count(v, c + i * 8, n);
  });
  for (let i = 0; i < kinds; i++) {
    const e = at + M.errors + i * 32;
    const end = v.buf.indexOf(0, e);
    const len = end < 0 || end > e + 24 ? 24 : end - e;
    const kind = text(v, e, len, 24, 'error kind', 1);
    counters.errors[kind] = count(v, e + 24, `errors.${kind}`);
  }
  const occ = count(v, at + M.gauges, 'occupancy');
  const peak = count(v, at + M.gauges + 8, 'peak occupancy');
  const cap = count(v, at + M.gauges + 16, 'capacity');
  if (cap > 2 ** 40) throw new SlotError(`capacity ${cap}`);
  if (occ > cap || peak > cap) throw new SlotError(`occupancy ${occ}/${peak} above capacity ${cap}`);
  const qCount = count(v, at + M.queueHist, 'queue histogram count');
  const rCount = count(v, at + M.rttHist, 'rtt histogram count');
  const hq = buckets(v, at + META + 8, nq, 'queue');
  const hr = buckets(v, at + META + 8 + nq * 16, nr, 'rtt');
  // Buckets are written before the count is published: they hold at least the published count.
  if (hq.sum < qCount)
    throw new SlotError(`queue histogram buckets sum to ${hq.sum}, below its count ${qCount}`);
  if (hr.sum < rCount)
    throw new SlotError(`rtt histogram buckets sum to ${hr.sum}, below its count ${rCount}`);
  return {
    slot,
    generation: v.u32(at + M.generation),
    linkId,
    peer,
    role: role === 1 ? 'sender' : 'receiver',
    direction: role === 1 ? 'tx' : 'rx',
    transport: transport === 1 ? 'shm' : 'fabric',
    provider,
    state: LINK_STATES[state]!,
    epoch: count(v, at + M.epoch, 'epoch'),
    openedMs: count(v, at + M.openedMs, 'opened time'),
    updatedMonoMs: count(v, at + M.updatedMonoMs, 'update time'),
    counters,
    gauges: { occupancyBytes: occ, peakOccupancyBytes: Math.max(peak, occ), capacityBytes: cap },
    latency: {
      queue: hq.list,
      rtt: hr.list,
      queueDelta: hq.list,
      rttDelta: hr.list,
      queueMinNs: count(v, at + M.queueHist + 8, 'queue min'),
      queueMaxNs: count(v, at + M.queueHist + 16, 'queue max'),
      rttMinNs: count(v, at + M.rttHist + 8, 'rtt min'),
      rttMaxNs: count(v, at + M.rttHist + 16, 'rtt max'),
    },
  };
}

// ---- incremental path: only what changed since the previous scan ------------------------------------------
//
// The agent reads every file every second; most slots did not change (idle links) or were republished with
// the same figures (the heartbeat). The native snapshotDelta() marks those slots unchanged (same seqlock
// sequence, or the same bytes), and the parse below keeps one object per slot across scans: unchanged slots
// cost a tag check, changed ones update their object in place (strings decoded only when the identity bytes
// changed), and histograms live in typed arrays per slot, with the increments since the previous scan computed
// in place. Bucket lists ([index, count] pairs) are built only when someone reads them (LinkLatency's getters;
// an empty increment list is one shared frozen array).

/** Metadata bytes of a changed slot in a delta snapshot: with the strings (identity changed) or without. */
const DELTA_META = 1024;
const DELTA_FIGURES = 464;

/** The increments of a histogram that did not move: one frozen list (most links, most scans), not one each. */
const NO_BUCKETS = Object.freeze([]) as unknown as SparseBuckets;

/** One histogram of one slot: cumulative buckets and the increments of the last scan, as typed arrays. */
class HistMemo {
  idx = new Uint16Array(32);
  cum = new Float64Array(32);
  n = 0;
  /** Spare arrays the next update writes into (then swapped): no allocation in steady state. */
  private idx2 = new Uint16Array(32);
  private cum2 = new Float64Array(32);
  dIdx = new Uint16Array(32);
  dCnt = new Float64Array(32);
  dn = 0;
  /** Sum of the cumulative buckets. */
  sum = 0;
  private list: SparseBuckets | undefined;
  private dlist: SparseBuckets | undefined;

  /** No new records since the previous scan. */
  still(): void {
    if (this.dn !== 0) this.dlist = undefined;
    this.dn = 0;
  }
  reset(): void {
    this.n = 0;
    this.sum = 0;
    this.dn = 0;
    this.list = undefined;
    this.dlist = undefined;
  }

  /**
   * Takes the changed buckets at `at` (snapshotDelta: index ascending, cumulative counts; validated: index in
   * range and ascending, counts < 2^53), updates the cumulative arrays in place (a merge only when a bucket
   * is new) and records the increments; returns the sum of all buckets. A bucket below its previous value
   * (not possible from a sane writer) counts from 0.
   */
  update(v: View, at: number, n: number, what: string): number {
    this.dn = 0;
    this.dlist = undefined;
    if (n === 0) return this.sum;
    this.list = undefined;
    if (this.dIdx.length < n) {
      const cap = Math.min(BUCKETS, Math.max(n, this.dIdx.length * 2));
      this.dIdx = new Uint16Array(cap);
      this.dCnt = new Float64Array(cap);
    }
    const oi = this.idx;
    const on = this.n;
    // Pass 1: validate, and count the buckets that are new.
    let prev = -1;
    let j = 0;
    let fresh = 0;
    for (let i = 0; i < n; i++) {
      const o = at + i * 16;
      const b = v.u32(o);
      if (b >= BUCKETS || b <= prev) throw new SlotError(`${what} bucket index ${b} out of order or range`);
      prev = b;
      if (v.u64(o + 8) < 0) throw new SlotError(`${what} bucket ${b} count is beyond 2^53`);
      while (j < on && oi[j]! < b) j++;
      if (j >= on || oi[j] !== b) fresh++;
    }
    let sum = this.sum;
    let dn = 0;
    if (fresh === 0) {
      // Pass 2, in place: every changed bucket is already known.
      const oc = this.cum;
      j = 0;
      for (let i = 0; i < n; i++) {
        const o = at + i * 16;
        const b = v.u32(o);
        const c = v.u64(o + 8);
        while (oi[j]! < b) j++;
        const before = oc[j]!;
        oc[j] = c;
        sum += c - before;
        const d = c >= before ? c - before : c;
        if (d > 0) {
          this.dIdx[dn] = b;
          this.dCnt[dn] = d;
          dn++;
        }
      }
    } else {
      // Pass 2, merge: old and changed lists into the spare arrays, then swap.
      const need = on + fresh;
      if (this.idx2.length < need) {
        const cap = Math.min(BUCKETS, Math.max(need, this.idx2.length * 2));
        this.idx2 = new Uint16Array(cap);
        this.cum2 = new Float64Array(cap);
      }
      const ni = this.idx2;
      const nc = this.cum2;
      const oc = this.cum;
      let m = 0;
      j = 0;
      for (let i = 0; i < n; i++) {
        const o = at + i * 16;
        const b = v.u32(o);
        const c = v.u64(o + 8);
        while (j < on && oi[j]! < b) {
          ni[m] = oi[j]!;
          nc[m] = oc[j]!;
          m++;
          j++;
        }
        let before = 0;
        if (j < on && oi[j] === b) {
          before = oc[j]!;
          j++;
        }
        sum += c - before;
        const d = c >= before ? c - before : c;
        if (d > 0) {
          this.dIdx[dn] = b;
          this.dCnt[dn] = d;
          dn++;
        }
        ni[m] = b;
        nc[m] = c;
        m++;
      }
      while (j < on) {
        ni[m] = oi[j]!;
        nc[m] = oc[j]!;
        m++;
        j++;
      }
      this.idx2 = oi;
      this.cum2 = oc;
      this.idx = ni;
      this.cum = nc;
      this.n = m;
    }
    if (sum > Number.MAX_SAFE_INTEGER) throw new SlotError(`${what} buckets sum beyond 2^53`);
    this.sum = sum;
    this.dn = dn;
    return sum;
  }

  get buckets(): SparseBuckets {
    if (!this.list) {
      const l: SparseBuckets = [];
      for (let i = 0; i < this.n; i++) if (this.cum[i]! > 0) l.push([this.idx[i]!, this.cum[i]!]);
      this.list = l;
    }
    return this.list;
  }
  get delta(): SparseBuckets {
    if (this.dn === 0) return NO_BUCKETS;
    if (!this.dlist) {
      const l: SparseBuckets = new Array(this.dn);
      for (let i = 0; i < this.dn; i++) l[i] = [this.dIdx[i]!, this.dCnt[i]!];
      this.dlist = l;
    }
    return this.dlist;
  }
}

/**
 * A link's latency view over its slot's histogram memos: the bucket lists are built only when read. Getters on
 * the prototype (one shape for every link: the sampler reads 6,400 of these a second, and per-object accessors
 * made each read a slow dictionary lookup); `toJSON()` gives the plain object (rdmaq-stat --json). A spread
 * sees only the min/max fields: read the lists by name.
 */
class LinkLatency {
  queueMinNs = 0;
  queueMaxNs = 0;
  rttMinNs = 0;
  rttMaxNs = 0;
  readonly #q: HistMemo;
  readonly #r: HistMemo;
  constructor(q: HistMemo, r: HistMemo) {
    this.#q = q;
    this.#r = r;
  }
  get queue(): SparseBuckets {
    return this.#q.buckets;
  }
  get rtt(): SparseBuckets {
    return this.#r.buckets;
  }
  get queueDelta(): SparseBuckets {
    return this.#q.delta;
  }
  get rttDelta(): SparseBuckets {
    return this.#r.delta;
  }
  toJSON(): StatsLink['latency'] {
    return {
      queue: this.queue,
      rtt: this.rtt,
      queueDelta: this.queueDelta,
      rttDelta: this.rttDelta,
      queueMinNs: this.queueMinNs,
      queueMaxNs: this.queueMaxNs,
      rttMinNs: this.rttMinNs,
      rttMaxNs: this.rttMaxNs,
    };
  }
}

/** One slot across scans. */
class SlotMemo {
  kind: 'free' | 'busy' | 'bad' | 'link' = 'free';
  reason = '';
  readonly q = new HistMemo();
  readonly r = new HistMemo();
  link: StatsLink | undefined;
  generation = -1;
  /** Error kinds of the last read (the errors object is rebuilt only while there are some). */
  errorKinds = 0;

  /** The slot's link object, made once per slot: later scans update it in place. */
  linkObject(slot: number): StatsLink {
    if (this.link) return this.link;
    const latency = new LinkLatency(this.q, this.r);
    this.link = {
      slot,
      generation: 0,
      linkId: '',
      peer: '',
      role: 'sender',
      direction: 'tx',
      transport: 'shm',
      provider: '',
      state: 'connecting',
      epoch: 0,
      openedMs: 0,
      updatedMonoMs: 0,
      counters: {
        records: 0,
        bytes: 0,
        completions: 0,
        creditUpdates: 0,
        backpressure: 0,
        wraps: 0,
        resends: 0,
        reconnects: 0,
        wakeups: 0,
        errors: {},
      },
      gauges: { occupancyBytes: 0, peakOccupancyBytes: 0, capacityBytes: 0 },
      latency,
    };
    return this.link;
  }
}

/** What a reader keeps of one file between scans (its mapping's snapshotDelta() state is the other half). */
export class FileMemo {
  app = '';
  appLen = -1;
  appSeq = -1;
  slots: SlotMemo[] = [];
}

/** Applies a changed slot (tag 2) to its memo, validating every field it reads; throws SlotError. */
function updateSlot(
  v: View,
  at: number,
  metaLen: number,
  slot: number,
  nq: number,
  nr: number,
  ident: boolean,
  sm: SlotMemo,
): void {
  const inUse = v.u32(at + M.inUse);
  if (inUse === 0) {
    sm.kind = 'free';
    return;
  }
  if (inUse !== 1) throw new SlotError(`in-use flag ${inUse}`);
  const role = v.u8(at + M.role);
  const transport = v.u8(at + M.transport);
  const state = v.u8(at + M.state);
  const kinds = v.u8(at + M.errorKinds);
  if (role !== 1 && role !== 2) throw new SlotError(`role ${role}`);
  if (transport !== 1 && transport !== 2) throw new SlotError(`transport ${transport}`);
  if (state >= LINK_STATES.length) throw new SlotError(`state ${state}`);
  if (kinds > 8) throw new SlotError(`${kinds} error kinds (at most 8)`);
  const generation = v.u32(at + M.generation);
  const l = sm.linkObject(slot);
  if (ident) {
    l.linkId = text(v, at + M.linkId, v.u16(at + M.idLen), 256, 'link id', 1);
    l.peer = text(v, at + M.peer, v.u16(at + M.peerLen), 128, 'peer');
    l.provider = text(v, at + M.provider, v.u16(at + M.providerLen), 64, 'provider');
  } else if (l.linkId === '' || generation !== sm.generation) {
    // Only a changed identity comes with its strings (and a new generation is a changed identity).
    throw new SlotError('identity not sent for a slot read for the first time');
  }
  if (generation !== sm.generation) {
    // A new link in this slot: its histograms start from nothing.
    sm.q.reset();
    sm.r.reset();
  }
  const c = at + M.counters;
  const counters = l.counters;
  counters.records = count(v, c, 'records');
  counters.bytes = count(v, c + 8, 'bytes');
  counters.completions = count(v, c + 16, 'completions');
  counters.creditUpdates = count(v, c + 24, 'creditUpdates');
  counters.backpressure = count(v, c + 32, 'backpressure');
  counters.wraps = count(v, c + 40, 'wraps');
  counters.resends = count(v, c + 48, 'resends');
  counters.reconnects = count(v, c + 56, 'reconnects');
  counters.wakeups = count(v, c + 64, 'wakeups');
  if (kinds > 0 || sm.errorKinds > 0) {
    sm.errorKinds = kinds;
    const errors: Record<string, number> = {};
    for (let i = 0; i < kinds; i++) {
      const e = at + M.errors + i * 32;
      const end = v.buf.indexOf(0, e);
      const len = end < 0 || end > e + 24 ? 24 : end - e;
      const kind = text(v, e, len, 24, 'error kind', 1);
      errors[kind] = count(v, e + 24, `errors.${kind}`);
    }
    counters.errors = errors;
  }
  const occ = count(v, at + M.gauges, 'occupancy');
  const peak = count(v, at + M.gauges + 8, 'peak occupancy');
  const cap = count(v, at + M.gauges + 16, 'capacity');
  if (cap > 2 ** 40) throw new SlotError(`capacity ${cap}`);
  if (occ > cap || peak > cap) throw new SlotError(`occupancy ${occ}/${peak} above capacity ${cap}`);
  const qCount = count(v, at + M.queueHist, 'queue histogram count');
  const rCount = count(v, at + M.rttHist, 'rtt histogram count');
  const qSum = sm.q.update(v, at + metaLen + 8, nq, 'queue');
  const rSum = sm.r.update(v, at + metaLen + 8 + nq * 16, nr, 'rtt');
  if (qSum < qCount) throw new SlotError(`queue histogram buckets sum to ${qSum}, below its count ${qCount}`);
  if (rSum < rCount) throw new SlotError(`rtt histogram buckets sum to ${rSum}, below its count ${rCount}`);
  const lat = l.latency;
  lat.queueMinNs = count(v, at + M.queueHist + 8, 'queue min');
  lat.queueMaxNs = count(v, at + M.queueHist + 16, 'queue max');
  lat.rttMinNs = count(v, at + M.rttHist + 8, 'rtt min');
  lat.rttMaxNs = count(v, at + M.rttHist + 16, 'rtt max');
  l.epoch = count(v, at + M.epoch, 'epoch');
  l.openedMs = count(v, at + M.openedMs, 'opened time');
  l.updatedMonoMs = count(v, at + M.updatedMonoMs, 'update time');
  const g = l.gauges;
  g.occupancyBytes = occ;
  g.peakOccupancyBytes = Math.max(peak, occ);
  g.capacityBytes = cap;
  l.generation = generation;
  l.role = role === 1 ? 'sender' : 'receiver';
  l.direction = role === 1 ? 'tx' : 'rx';
  l.transport = transport === 1 ? 'shm' : 'fabric';
  l.state = LINK_STATES[state]!;
  sm.generation = generation;
  sm.kind = 'link';
}

/**
 * Validates an incremental snapshot (stats_file.h `snapshotDelta()`) against what `memo` kept from the
 * previous one of the same mapping. Same checks and result as parseSnapshot; the link objects are the memo's,
 * updated in place (do not keep them across scans expecting old values: copy what you need).
 */
export function parseDelta(
  path: string,
  buf: Uint8Array,
  fileSize: number,
  memo: FileMemo,
  forget?: (slot: number) => void,
): StatsFileSnapshot {
  const v = new View(buf);
  const { snap, highWater } = parseHeader(path, v, fileSize, memo);
  const bad = (why: string): never => {
    throw new StatsFileError(path, why);
  };
  const slots = memo.slots;
  while (slots.length < highWater) slots.push(new SlotMemo());
  let at = HEADER;
  for (let slot = 0; slot < highWater; slot++) {
    const sm = slots[slot]!;
    if (at + 8 > buf.length) bad(`snapshot ends inside slot ${slot}`);
    const tag = v.u32(at);
    const flags = v.u32(at + 4);
    at += 8;
    if (tag === 2) {
      const ident = (flags & 1) === 1;
      const metaLen = ident ? DELTA_META : DELTA_FIGURES;
      if (at + metaLen + 8 > buf.length) bad(`snapshot ends inside slot ${slot}`);
      const nq = v.u32(at + metaLen);
      const nr = v.u32(at + metaLen + 4);
      if (nq > BUCKETS || nr > BUCKETS) bad(`slot ${slot} lists ${nq}/${nr} histogram buckets`);
      const next = at + metaLen + 8 + (nq + nr) * 16;
      if (next > buf.length) bad(`snapshot ends inside slot ${slot}'s histograms`);
      try {
        const seq = v.u64(at);
        if (seq < 0 || seq % 2 === 1) sm.kind = 'busy';
        else updateSlot(v, at, metaLen, slot, nq, nr, ident, sm);
      } catch (e) {
        if (!(e instanceof SlotError)) throw e;
        sm.kind = 'bad';
        sm.reason = e.message;
        sm.generation = -1;
        // Half applied: the next delta of this slot must be whole.
        sm.q.reset();
        sm.r.reset();
        forget?.(slot);
      }
      at = next;
    } else if (tag === 1) {
      sm.kind = 'busy';
    } else if (tag === 0) {
      sm.q.still();
      sm.r.still();
    } else bad(`slot ${slot} has tag ${tag}`);
    if (sm.kind === 'link') snap.links.push(sm.link!);
    else if (sm.kind === 'busy') snap.busySlots++;
    else if (sm.kind === 'bad') snap.badSlots.push({ slot, reason: sm.reason });
  }
  return snap;
}

// ---- fs path: the compact snapshot from positional reads ----------------------------------------------

function preadExact(fd: number, buf: Uint8Array, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** The compact snapshot of `path` read with fs (no addon): see the module comment. */
export function snapshotWithFs(path: string): { buf: Buffer; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new StatsFileError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(HEADER);
    if (preadExact(fd, header, 0) < HEADER) return { buf: header.subarray(0, 0), size };
    const v = new View(header);
    const slotCount = v.u32(H.slotCount);
    const highWater = v.u32(H.highWater);
    const ok =
      header.toString('latin1', 0, 8) === MAGIC &&
      v.u32(H.metaSize) === META &&
      v.u32(H.slotHistSize) === SLOT_HIST &&
      v.u32(H.buckets) === BUCKETS &&
      slotCount >= 1 &&
      slotCount <= MAX_SLOTS &&
      highWater <= slotCount &&
      size >= HEADER + slotCount * (META + SLOT_HIST);
    if (!ok) return { buf: header, size };
    const parts: Buffer[] = [header];
    const histBase = HEADER + slotCount * META;
    const a = Buffer.alloc(META);
    const b = Buffer.alloc(META);
    for (let slot = 0; slot < highWater; slot++) {
      const pos = HEADER + slot * META;
      let stable = false;
      for (let i = 0; i < READ_TRIES && !stable; i++) {
        preadExact(fd, a, pos);
        if (a.readUInt32LE(0) % 2 === 1) continue;
        preadExact(fd, b, pos);
        stable = a.equals(b);
      }
      const meta = Buffer.from(a);
      const counts = Buffer.alloc(8);
      if (!stable) meta.writeUInt32LE(1, 0);
      const pairs: Buffer[] = [];
      if (stable && meta.readUInt32LE(M.inUse) === 1) {
        for (let h = 0; h < 2; h++) {
          const bm = h === 0 ? M.queueBitmap : M.rttBitmap;
          const idx: number[] = [];
          for (let w = 0; w < BITMAP_WORDS; w++) {
            const lo = meta.readUInt32LE(bm + w * 8);
            const hi = meta.readUInt32LE(bm + w * 8 + 4);
            for (let bit = 0; bit < 64; bit++) {
              const set = bit < 32 ? (lo >>> bit) & 1 : (hi >>> (bit - 32)) & 1;
              if (set && w * 64 + bit < BUCKETS) idx.push(w * 64 + bit);
            }
          }
          if (idx.length) {
            const first = idx[0]!;
            const span = Buffer.alloc((idx[idx.length - 1]! - first + 1) * 8);
            preadExact(fd, span, histBase + slot * SLOT_HIST + h * HIST_BYTES + first * 8);
            for (const i of idx) {
              const p = Buffer.alloc(16);
              p.writeUInt32LE(i, 0);
              span.copy(p, 8, (i - first) * 8, (i - first) * 8 + 8);
              pairs.push(p);
            }
          }
          counts.writeUInt32LE(idx.length, h * 4);
        }
      }
      parts.push(meta, counts, ...pairs);
    }
    return { buf: Buffer.concat(parts), size };
  } finally {
    closeSync(fd);
  }
}

// ---- the directory reader (agent, rdmaq-stat) -----------------------------------------------------------

function loadNative(): NativeAddon | undefined {
  try {
    const require = createRequire(import.meta.url);
    return require(process.env.RDMAQ_ADDON ?? '../build/Release/rdmaq.node') as NativeAddon;
  } catch {
    return undefined;
  }
}

export interface StatsScan {
  files: StatsFileSnapshot[];
  /** Files that could not be read, and why (the rest were read). */
  problems: Array<{ path: string; reason: string }>;
  /** Files of dead processes removed by this scan. */
  swept: string[];
}

export interface StatsReaderOptions {
  /** Directory to scan (default RDMAQ_STATS_DIR or /dev/shm). */
  dir?: string;
  /** A pid whose file is skipped (the agent's own: its links are reported already). */
  skipPid?: number;
  /** Read through the addon's mapping (default: when the addon loads). */
  native?: boolean;
  /** Remove files of dead processes (default true). */
  sweep?: boolean;
  /**
   * Only processes in this network namespace (the inode of /proc/self/ns/net, say): on a host whose network
   * namespaces share /dev/shm (the demo's hosts), each agent reports its own namespace's applications.
   */
  netns?: number;
  /** Skip the files of rdmaq agents (an agent reports its own links). */
  skipAgents?: boolean;
  /**
   * With the addon: read only what changed since the previous scan and keep one object per link across scans,
   * updated in place (default true). false: a full copy and fresh objects every scan (the earlier reader, kept
   * for comparison: bench/stats/read.mjs).
   */
  incremental?: boolean;
}

/** Increments of cumulative sparse buckets (both index-ascending); a bucket that went down counts from 0. */
export function sparseDelta(now: SparseBuckets, before: SparseBuckets | undefined): SparseBuckets {
  if (!before || before.length === 0) return now;
  const out: SparseBuckets = [];
  let j = 0;
  for (const [i, n] of now) {
    while (j < before.length && before[j]![0] < i) j++;
    const prev = j < before.length && before[j]![0] === i ? before[j]![1] : 0;
    const d = n >= prev ? n - prev : n;
    if (d > 0) out.push([i, d]);
  }
  return out;
}

/** Inode of a process's network namespace, or undefined when it cannot be read. */
export function netnsOf(pid: number | 'self'): number | undefined {
  try {
    const m = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Scans a directory for statistics files, sweeps the dead processes' files and reads the others. Keeps one
 * mapping per file between scans (closed when the file goes).
 */
export class StatsReader {
  readonly dir: string;
  private readonly addon: NativeAddon | undefined;
  private readonly maps = new Map<
    string,
    { map: NativeStatsMap; ino: number; memo: FileMemo; heartbeatMs: number }
  >();
  /** Live processes of the files seen, by path. */
  private readonly procs = new Map<string, ProcWatch>();
  private readonly procBuf = Buffer.alloc(1024);
  private scratch = Buffer.allocUnsafe(1 << 16);
  /** Full reads (fs, or incremental: false): the previous cumulative buckets per slot, for the deltas. */
  private readonly prevBuckets = new Map<string, { gen: number; q: SparseBuckets; r: SparseBuckets }>();
  private readonly incremental: boolean;
  private readonly sweepOn: boolean;
  private readonly skipPid: number | undefined;
  private readonly netns: number | undefined;
  private readonly skipAgents: boolean;

  constructor(opts: StatsReaderOptions = {}) {
    this.dir = opts.dir ?? defaultStatsDir();
    this.addon = opts.native === false ? undefined : loadNative();
    this.sweepOn = opts.sweep !== false;
    this.skipPid = opts.skipPid;
    this.netns = opts.netns;
    this.skipAgents = opts.skipAgents === true;
    this.incremental = opts.incremental !== false;
  }

  get mode(): 'native' | 'fs' {
    return this.addon ? 'native' : 'fs';
  }

  scan(): StatsScan {
    const out: StatsScan = { files: [], problems: [], swept: [] };
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      out.problems.push({ path: this.dir, reason: `cannot list: ${(e as Error).message}` });
      return out;
    }
    const seen = new Set<string>();
    for (const name of names) {
      if (!name.startsWith(STATS_FILE_PREFIX)) continue;
      const path = join(this.dir, name);
      const id = parseStatsFileName(name);
      if (!id) {
        out.problems.push({ path, reason: 'name is not rdmaq-stats-<pid>-<starttime>' });
        continue;
      }
      if (id.pid === this.skipPid) continue;
      const proc = this.alive(path, id);
      if (!proc) {
        this.drop(path);
        if (this.sweepOn) {
          try {
            unlinkSync(path);
            out.swept.push(path);
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code !== 'ENOENT')
              out.problems.push({
                path,
                reason: `process ${id.pid} is gone but the file cannot be removed (${code}): run the agent as the file's owner or root`,
              });
          }
        }
        continue;
      }
      seen.add(path);
      if (this.netns !== undefined) {
        // A process's namespace is read once (the namespace of a live process rarely changes; setns() after
        // the first link would only mislabel which agent reports it).
        if (proc.netns === undefined) proc.netns = netnsOf(id.pid) ?? -1;
        if (proc.netns !== this.netns) continue;
      }
      try {
        const snap = this.read(path);
        if (snap.pid !== id.pid || snap.startTime !== id.startTime)
          throw new StatsFileError(
            path,
            `header says pid ${snap.pid} start ${snap.startTime}, the name says pid ${id.pid} start ${id.startTime}`,
          );
        if (this.skipAgents && snap.agent) continue;
        out.files.push(snap);
      } catch (e) {
        this.drop(path);
        out.problems.push({
          path,
          reason: e instanceof StatsFileError ? e.reason : (e as Error).message,
        });
      }
    }
    for (const p of [...this.maps.keys()]) if (!seen.has(p)) this.drop(p);
    for (const p of [...this.procs.keys()]) if (!seen.has(p)) this.unwatch(p);
    for (const k of this.prevBuckets.keys())
      if (!seen.has(k.slice(0, k.lastIndexOf('#')))) this.prevBuckets.delete(k);
    return out;
  }

  /**
   * Is the process of this file alive (and the same one: pid and start time)? The first time, its start time
   * is checked and its /proc/<pid>/comm kept open; later scans re-read that open file (one pread): a dead
   * process's file then fails with ESRCH, even if its pid was reused since (the fd names the old task).
   */
  private alive(path: string, id: { pid: number; startTime: number }): ProcWatch | undefined {
    const w = this.procs.get(path);
    if (w) {
      try {
        if (readSync(w.fd, this.procBuf, 0, this.procBuf.length, 0) > 0) return w;
      } catch {
        /* ESRCH: gone */
      }
      this.unwatch(path);
      return undefined;
    }
    // /proc/<pid>/comm is kept open (reading it is far cheaper than stat); opened before the start time is
    // checked, so a pid reused in between is caught by the check, and one reused later by the read failing.
    let fd: number;
    try {
      fd = openSync(`/proc/${id.pid}/comm`, 'r');
    } catch {
      return undefined;
    }
    if (processStartTime(id.pid) !== id.startTime) {
      closeSync(fd);
      return undefined;
    }
    const nw: ProcWatch = { fd, netns: undefined };
    this.procs.set(path, nw);
    return nw;
  }

  private unwatch(path: string): void {
    const w = this.procs.get(path);
    if (!w) return;
    this.procs.delete(path);
    try {
      closeSync(w.fd);
    } catch {
      /* already closed */
    }
  }

  /** One file, validated (StatsFileError otherwise). */
  read(path: string): StatsFileSnapshot {
    if (!this.addon) {
      const { buf, size } = snapshotWithFs(path);
      return this.withDeltas(parseSnapshot(path, buf, size));
    }
    let m = this.maps.get(path);
    if (m && Date.now() - m.heartbeatMs > 3000) {
      // A file replaced under the same name gets a new mapping. The same name is the same process (pid and
      // start time): only an exec() makes a new file, and the old one's heartbeat then stops — so the inode
      // is only checked when the heartbeat is more than 3 s old.
      let ino = -1;
      try {
        ino = statSync(path).ino;
      } catch {
        /* gone: fall through to a fresh open, which reports it */
      }
      if (ino !== m.ino) {
        this.drop(path);
        m = undefined;
      }
    }
    if (!m) {
      try {
        const map = new this.addon.StatsMap(path);
        m = { map, ino: map.ino, memo: new FileMemo(), heartbeatMs: 0 };
      } catch (e) {
        throw new StatsFileError(path, (e as Error).message);
      }
      this.maps.set(path, m);
    }
    let buf: Buffer;
    try {
      if (this.incremental) {
        // One Buffer for every file of every scan (parsed at once; nothing keeps a view of it).
        let n = m.map.snapshotDeltaInto(this.scratch);
        if (n < 0) {
          this.scratch = Buffer.allocUnsafe(Math.max(-n, this.scratch.length * 2));
          n = m.map.pendingInto(this.scratch);
        }
        buf = this.scratch.subarray(0, n);
      } else buf = m.map.snapshot();
    } catch (e) {
      throw new StatsFileError(path, (e as Error).message);
    }
    const snap = this.incremental
      ? parseDelta(path, buf, m.map.size, m.memo, (slot) => m.map.forget(slot))
      : this.withDeltas(parseSnapshot(path, buf, m.map.size));
    m.heartbeatMs = snap.heartbeatMs;
    return snap;
  }

  /** Full reads: each link's increments since this reader's previous read of its slot. */
  private withDeltas(snap: StatsFileSnapshot): StatsFileSnapshot {
    for (const l of snap.links) {
      const k = `${snap.path}#${l.slot}`;
      const p = this.prevBuckets.get(k);
      const same = p !== undefined && p.gen === l.generation;
      l.latency.queueDelta = sparseDelta(l.latency.queue, same ? p.q : undefined);
      l.latency.rttDelta = sparseDelta(l.latency.rtt, same ? p.r : undefined);
      this.prevBuckets.set(k, { gen: l.generation, q: l.latency.queue, r: l.latency.rtt });
    }
    return snap;
  }

  close(): void {
    for (const p of [...this.maps.keys()]) this.drop(p);
    for (const p of [...this.procs.keys()]) this.unwatch(p);
  }

  private drop(path: string): void {
    for (const k of this.prevBuckets.keys()) if (k.startsWith(`${path}#`)) this.prevBuckets.delete(k);
    const m = this.maps.get(path);
    if (!m) return;
    m.map.close();
    this.maps.delete(path);
  }
}
