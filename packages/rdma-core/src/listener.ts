import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { CONTROL_VERSION, ControlChannel, type ControlMessage } from './control.js';
import { errorCode, RdmaqError } from './errors.js';
import { type FabricListener, type FabricReceiver, listenFabric } from './fabric/index.js';
import { checkLinkId, HANDSHAKE_TIMEOUT_MS, LINK_ID_RE, type LinkListener, type LinkRx } from './link.js';
import { native } from './native.js';
import { Receiver } from './receiver.js';
import type { IdleStrategy, ListenOptions, ReceiverOptions } from './types.js';

export const DEFAULT_CAPACITY = 4 * 1024 * 1024;

/**
 * One per agent: accepts incoming senders by link id and hands out Receivers. shm senders come over the
 * unix socket; the fabric transport adds a TCP port with HMAC authentication to the same object.
 *
 * Events: `receiver` (Receiver) for links accepted through `acceptUnknown`, `error` (Error) for failed
 * handshakes (they never throw).
 */
export class Listener extends EventEmitter implements LinkListener {
  readonly socketPath: string;
  readonly shmDir: string;
  readonly defaultCapacity: number;
  private readonly acceptUnknown: boolean;
  private readonly defaultIdle: IdleStrategy | undefined;
  private readonly links = new Map<string, Receiver>();
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private closedFlag = false;
  private readonly fabric: FabricListener | undefined;

  /** @internal — use listen(). */
  constructor(opts: ListenOptions, server: Server, fabric?: FabricListener) {
    super();
    this.socketPath = opts.socketPath;
    this.shmDir = opts.shmDir ?? '/dev/shm';
    this.defaultCapacity = opts.capacity ?? DEFAULT_CAPACITY;
    this.acceptUnknown = opts.acceptUnknown ?? false;
    this.defaultIdle = opts.idle;
    this.server = server;
    server.on('connection', (sock) => this.onConnection(sock));
    this.fabric = fabric;
    // Fabric links arrive on the TCP acceptor of the same listener: forward its events.
    fabric?.on('receiver', (rx: FabricReceiver) => this.emit('receiver', rx));
    fabric?.on('error', (err: Error) => this.emitError(err));
  }

  /** TCP port of the fabric acceptor (listen({ tcp })), undefined without one. */
  get port(): number | undefined {
    return this.fabric?.port;
  }

  /** Path of the ring file of a link on this listener (stable across restarts, so a receiver reattaches). */
  ringPath(linkId: string): string {
    const safe = linkId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 48);
    const hash = createHash('sha256').update(`${this.socketPath}\0${linkId}`).digest('hex').slice(0, 12);
    return join(this.shmDir, `rdmaq-${safe}-${hash}.ring`);
  }

  /**
   * Registers the receiving end of link `linkId` and returns its Receiver at once (state `connecting` until a
   * sender attaches). The ring is created now — or, after a restart, reattached with its records intact.
   * Throws ERR_RDMAQ_RING_VERSION / _RING_SIZE / _RING_MAGIC for an incompatible ring file,
   * ERR_RDMAQ_RESUME_GAP when `resumeFrom` asks for records the ring no longer holds.
   */
  accept(linkId: string, opts: ReceiverOptions & { transport: 'fabric' }): FabricReceiver;
  accept(linkId: string, opts?: ReceiverOptions & { transport?: 'shm' }): Receiver;
  accept(linkId: string, opts?: ReceiverOptions): LinkRx;
  accept(linkId: string, given: ReceiverOptions = {}): Receiver | FabricReceiver {
    if (this.closedFlag) throw new RdmaqError('ERR_RDMAQ_CLOSED', 'listener is closed');
    const opts = given.idle === undefined && this.defaultIdle ? { ...given, idle: this.defaultIdle } : given;
    if (opts.transport === 'fabric') {
      if (!this.fabric) {
        throw new RdmaqError(
          'ERR_RDMAQ_NO_TRANSPORT',
          `link ${linkId} expects a fabric sender, but this listener has no TCP acceptor: listen({ tcp: { port, secret } })`,
        );
      }
      const { transport: _t, ...rest } = opts;
      return this.fabric.accept(linkId, rest);
    }
    checkLinkId(linkId);
    if (this.links.has(linkId))
      throw new RdmaqError('ERR_RDMAQ_LINK_BUSY', `link ${linkId} is already accepted here`);
    const ringPath = this.ringPath(linkId);
    const n = new native.Receiver({
      transport: 'shm',
      linkId,
      ringPath,
      rxWakePath: ringPath.replace(/\.ring$/, '.rxw'),
      txWakePath: ringPath.replace(/\.ring$/, '.txw'),
      create: true,
      capacity: opts.capacity ?? this.defaultCapacity,
      resumeFrom: opts.resumeFrom ?? 0,
    });
    const rx = new Receiver(linkId, n, opts, () => this.links.delete(linkId));
    this.links.set(linkId, rx);
    return rx;
  }

  /** The Receiver of a link accepted on this listener (either acceptor), if any. */
  receiver(linkId: string): Receiver | FabricReceiver | undefined {
    return this.links.get(linkId) ?? this.fabric?.receiver(linkId);
  }

  /** Stops accepting, closes every Receiver (removing its ring) and the socket. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const rx of [...this.links.values()]) await rx.close();
    await this.fabric?.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  private onConnection(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    const ch = new ControlChannel(sock);
    const timer = setTimeout(() => {
      this.handshakeError(ch, 'ERR_RDMAQ_HANDSHAKE', `no hello within ${HANDSHAKE_TIMEOUT_MS} ms`);
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    ch.once('protocolError', (e: Error) => {
      clearTimeout(timer);
      this.emitError(new RdmaqError('ERR_RDMAQ_HANDSHAKE', `bad control message: ${e.message}`));
    });
    ch.once('message', (msg: ControlMessage) => {
      clearTimeout(timer);
      try {
        this.onHello(ch, msg);
      } catch (err) {
        // Whatever goes wrong with one handshake is that sender's error, never the listener's crash.
        this.handshakeError(ch, errorCode(err) ?? 'ERR_RDMAQ_HANDSHAKE', (err as Error).message);
      }
    });
  }

  private onHello(ch: ControlChannel, msg: ControlMessage): void {
    if (msg.t !== 'hello' || msg.v !== CONTROL_VERSION || typeof msg.linkId !== 'string') {
      this.handshakeError(ch, 'ERR_RDMAQ_HANDSHAKE', `expected hello of control version ${CONTROL_VERSION}`);
      return;
    }
    let rx = this.links.get(msg.linkId);
    if (!rx && this.acceptUnknown && LINK_ID_RE.test(msg.linkId)) {
      try {
        rx = this.accept(msg.linkId);
        this.emit('receiver', rx);
      } catch (err) {
        this.handshakeError(ch, (err as RdmaqError).code ?? 'ERR_RDMAQ_HANDSHAKE', (err as Error).message);
        return;
      }
    }
    if (!rx) {
      this.handshakeError(
        ch,
        'ERR_RDMAQ_UNKNOWN_LINK',
        `link ${msg.linkId} is not accepted on ${this.socketPath}`,
      );
      return;
    }
    if (rx.attached) {
      this.handshakeError(ch, 'ERR_RDMAQ_LINK_BUSY', `link ${msg.linkId} already has a sender attached`);
      return;
    }
    const ringPath = this.ringPath(msg.linkId);
    rx.attachSender(ch, (epoch) => ({
      t: 'welcome',
      v: CONTROL_VERSION,
      ringPath,
      rxWakePath: ringPath.replace(/\.ring$/, '.rxw'),
      txWakePath: ringPath.replace(/\.ring$/, '.txw'),
      ringId: rx.ringId,
      capacity: rx.capacity,
      epoch,
      nextSeq: rx.nextSeq,
      pid: process.pid,
    }));
  }

  private handshakeError(ch: ControlChannel, code: string, message: string): void {
    ch.end({ t: 'error', code, message });
    this.emitError(new RdmaqError(code, message));
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

/**
 * Starts a listener on `socketPath` (shm handshakes). Sweeps ring files left by dead processes first. A stale
 * socket file of a dead listener is replaced; a live one makes this throw ERR_RDMAQ_LISTEN_BUSY.
 */
export async function listen(opts: ListenOptions): Promise<Listener> {
  native.sweepStale(opts.shmDir ?? '/dev/shm');
  if (existsSync(opts.socketPath)) {
    const alive = await new Promise<boolean>((resolve) => {
      const s = netConnect(opts.socketPath);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (alive) {
      throw new RdmaqError(
        'ERR_RDMAQ_LISTEN_BUSY',
        `another rdmaq listener is running on ${opts.socketPath}`,
      );
    }
    unlinkSync(opts.socketPath);
  }
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new RdmaqError('ERR_RDMAQ_LISTEN', `cannot listen on ${opts.socketPath}: ${err.message}`, {
          errno: typeof err.errno === 'number' ? -err.errno : undefined,
          cause: err,
        }),
      ),
    );
    server.listen(opts.socketPath, () => resolve());
  });
  let fabric: FabricListener | undefined;
  if (opts.tcp) {
    try {
      fabric = await listenFabric({
        ...(opts.tcp.host === undefined ? {} : { host: opts.tcp.host }),
        port: opts.tcp.port,
        secret: opts.tcp.secret,
        acceptUnknown: opts.acceptUnknown ?? false,
        defaults: {
          ...(opts.idle === undefined ? {} : { idle: opts.idle }),
          ...(opts.capacity === undefined ? {} : { capacity: opts.capacity }),
          ...(opts.tcp.provider === undefined ? {} : { provider: opts.tcp.provider }),
        },
      });
    } catch (err) {
      server.close();
      throw err;
    }
  }
  return new Listener(opts, server, fabric);
}
