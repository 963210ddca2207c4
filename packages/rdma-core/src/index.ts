/**
 * @rdmaq/rdma-core — the rdmaq queue: a ring buffer in receiver memory, records placed by the sender with
 * plain stores (shm) or one-sided writes (fabric), delivered in order with no loss and no duplicates.
 *
 *   const l = await listen({ socketPath: '/run/rdmaq/agent.sock' });
 *   const rx = l.accept('a->b', { idle: 'event' });
 *   rx.start((buf, off, len, seq) => use(buf.subarray(off, off + len)));
 *
 *   const tx = await connect({ linkId: 'a->b', socketPath: '/run/rdmaq/agent.sock' });
 *   if (!tx.send(payload)) await tx.whenWritable();
 *
 * Program against the interfaces `LinkTx` (what connect() returns), `LinkRx` (what accept() and the
 * listener's `receiver` event hand out) and `LinkListener`: both transports implement them, so code that
 * holds a link end never needs to name a transport's class. See ARCHITECTURE.md for the classes, threads and
 * the transport seam.
 */
import { RdmaqError } from './errors.js';
import { connectFabric, type FabricSender } from './fabric/index.js';
import type { LinkTx } from './link.js';
import { native } from './native.js';
import { connectShm, type Sender } from './sender.js';
import type { SenderOptions } from './types.js';

export { errorCode, RdmaqError } from './errors.js';
export {
  FabricListener,
  type FabricListenOptions,
  FabricReceiver,
  type FabricReceiverOptions,
  FabricSender,
  type FabricSenderOptions,
  fabricProbe,
} from './fabric/index.js';
export type { LinkEnd, LinkListener, LinkRx, LinkTx } from './link.js';
export { DEFAULT_CAPACITY, Listener, listen } from './listener.js';
export { RecordType } from './native.js';
export { Receiver } from './receiver.js';
export { Sender } from './sender.js';
export {
  defaultStatsDir,
  LINK_STATES,
  netnsOf,
  parseSnapshot,
  parseStatsFileName,
  processStartTime,
  STATS_FILE_PREFIX,
  STATS_LAYOUT_VERSION,
  StatsFileError,
  type StatsFileSnapshot,
  type StatsLink,
  StatsReader,
  type StatsReaderOptions,
  type StatsScan,
  snapshotWithFs,
  sparseDelta,
} from './stats-file.js';
export type {
  IdleStrategy,
  LinkState,
  LinkStats,
  ListenOptions,
  ReceiverOptions,
  RecordHandler,
  Role,
  SenderOptions,
  SparseBuckets,
  StateChange,
  Transport,
  WakeupStats,
} from './types.js';

/**
 * Names this process in its statistics file (what the agent, `rdmaq-stat` and the dashboard show as the
 * application). Default: RDMAQ_APP_NAME, else the command line. Takes effect at once, also for open links.
 */
export function setAppName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 256)
    throw new RdmaqError('ERR_RDMAQ_ARG', 'setAppName(name): name must be a string of 1..256 bytes');
  native.statsSetAppName(name);
}

/**
 * @internal Marks this process's statistics file as an rdmaq agent's: other agents do not report its links as
 * an application's (rdmaq-stat still shows them).
 */
export function markStatsFileAsAgent(): void {
  native.statsSetFlags(1);
}

/**
 * This process's statistics file: its path once a link is open ("" before, or when RDMAQ_STATS=0), the reason
 * when it could not be created, and the application name.
 */
export function statsFileInfo(): { enabled: boolean; path: string; error: string; app: string } {
  return native.statsInfo();
}

// The file header's heartbeat (readers show how fresh a process's figures are); an unreferenced timer, so it
// never keeps a process alive. Nothing on the data path.
setInterval(() => native.statsHeartbeat(), 1000).unref();

/** libfabric providers available on this host (e.g. `["net", "shm", "tcp", ...]`). */
export function providers(): string[] {
  return native.providers();
}

/** libfabric version the addon runs against. */
export function fabricVersion(): string {
  return native.fabricVersion();
}

/**
 * Opens the sending end of a link to a peer's listener. Resolves once the handshake is done and the ring is
 * mapped; rejects with ERR_RDMAQ_CONNECT (nobody listening), ERR_RDMAQ_UNKNOWN_LINK, ERR_RDMAQ_LINK_BUSY, ...
 */
export async function connect(opts: SenderOptions & { transport: 'fabric' }): Promise<FabricSender>;
export async function connect(opts: SenderOptions & { transport?: 'shm' }): Promise<Sender>;
export async function connect(opts: SenderOptions): Promise<LinkTx>;
export async function connect(opts: SenderOptions): Promise<Sender | FabricSender> {
  const transport = opts.transport ?? 'shm';
  if (transport === 'shm') return connectShm(opts);
  if (opts.host === undefined || opts.port === undefined || opts.secret === undefined) {
    throw new RdmaqError(
      'ERR_RDMAQ_ARG',
      'connect: the fabric transport needs host, port and secret of the peer listener',
    );
  }
  return connectFabric({
    linkId: opts.linkId,
    host: opts.host,
    port: opts.port,
    secret: opts.secret,
    ...(opts.provider === undefined ? {} : { provider: opts.provider }),
    ...(opts.capacity === undefined ? {} : { capacity: opts.capacity }),
    ...(opts.journal === undefined ? {} : { journal: opts.journal }),
    ...(opts.reconnect === undefined ? {} : { reconnect: opts.reconnect }),
    ...(opts.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: opts.connectTimeoutMs }),
    ...(opts.checksum === undefined ? {} : { checksum: opts.checksum }),
  });
}

/** CLOCK_MONOTONIC in ns, the clock record timestamps use (same-host latency maths). */
export function nowNs(): number {
  return native.nowNs();
}

/** 32-bit checksum (xxh64-style hash) of `buffer[offset, offset + length)`, computed natively (~10 GB/s). */
export function checksum32(buffer: Uint8Array, offset = 0, length = buffer.length - offset): number {
  return native.checksum32(buffer, offset, length);
}
