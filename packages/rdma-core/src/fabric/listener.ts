/**
 * Accepts fabric senders on a TCP port: authenticates them (HMAC-SHA256 challenge on the cluster secret),
 * validates what they send, and attaches them to the FabricReceiver registered for their link id.
 *
 * Events: `receiver` (FabricReceiver created through acceptUnknown), `error` (failed handshakes; never thrown).
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { RdmaqError } from '../errors.js';
import { checkLinkId, HANDSHAKE_TIMEOUT_MS, type LinkListener } from '../link.js';
import type { Transport } from '../types.js';
import {
  addrField,
  ControlConn,
  type ControlMsg,
  FABRIC_CONTROL_VERSION,
  handshakeError,
  intField,
  LINK_ID_RE,
  PROVIDER_RE,
  plainIp,
  secretBuffer,
  strField,
  u64Field,
} from './handshake.js';
import { FabricReceiver, type FabricReceiverOptions } from './receiver.js';
import { checkPeerIp } from './sender.js';

export interface FabricListenOptions {
  /** Address to listen on (default 0.0.0.0); the fabric endpoint binds the address each connection arrived on. */
  host?: string;
  /** TCP port (0 = ephemeral; see `port` after listen). */
  port: number;
  secret: string | Buffer;
  /** Default receiver options for accept() and acceptUnknown. */
  defaults?: FabricReceiverOptions;
  acceptUnknown?: boolean;
  heartbeatMs?: number;
  deadAfterMs?: number;
}

export class FabricListener extends EventEmitter implements LinkListener {
  private readonly server: Server;
  private readonly secret: Buffer;
  private readonly opts: FabricListenOptions;
  private readonly links = new Map<string, FabricReceiver>();
  private readonly sockets = new Set<Socket>();
  private readonly handshaking = new Set<string>();
  private closedFlag = false;

  /** @internal — use listenFabric(). */
  constructor(opts: FabricListenOptions, server: Server, secret: Buffer) {
    super();
    this.opts = opts;
    this.server = server;
    this.secret = secret;
    server.on('connection', (s) => this.onConnection(s));
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /**
   * Registers the receiving end of `linkId` (state `connecting` until a sender attaches). `transport`, if
   * given, must be `fabric`: this listener has no shm acceptor.
   */
  accept(linkId: string, given: FabricReceiverOptions & { transport?: Transport } = {}): FabricReceiver {
    if (this.closedFlag) throw new RdmaqError('ERR_RDMAQ_CLOSED', 'listener is closed');
    const { transport, ...opts } = given;
    if (transport !== undefined && transport !== 'fabric') {
      throw new RdmaqError(
        'ERR_RDMAQ_NO_TRANSPORT',
        `link ${linkId} expects a ${transport} sender, but this is a fabric (TCP) listener: use listen()`,
      );
    }
    checkLinkId(linkId);
    if (this.links.has(linkId))
      throw new RdmaqError('ERR_RDMAQ_LINK_BUSY', `link ${linkId} is already accepted here`);
    const rx = new FabricReceiver(linkId, { ...this.opts.defaults, ...opts }, () =>
      this.links.delete(linkId),
    );
    this.links.set(linkId, rx);
    return rx;
  }

  receiver(linkId: string): FabricReceiver | undefined {
    return this.links.get(linkId);
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const rx of [...this.links.values()]) await rx.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    const conn = new ControlConn(sock, 'server');
    this.handshake(conn, sock).catch((err: Error & { code?: string }) => {
      const code = err.code ?? 'ERR_RDMAQ_HANDSHAKE';
      if (!conn.isClosed) conn.end({ t: 'error', code, message: err.message }, err.message);
      this.emitError(err instanceof RdmaqError ? err : new RdmaqError(code, err.message, { cause: err }));
    });
  }

  private async handshake(conn: ControlConn, sock: Socket): Promise<void> {
    await conn.authenticateServer(this.secret, HANDSHAKE_TIMEOUT_MS);
    const link = await conn.next(HANDSHAKE_TIMEOUT_MS);
    if (link.t !== 'link' || link.v !== FABRIC_CONTROL_VERSION)
      throw handshakeError(`expected link parameters, got ${link.t}`);
    const linkId = strField(link, 'linkId', LINK_ID_RE);
    const provider = strField(link, 'provider', PROVIDER_RE);
    const epoch = intField(link, 'epoch', 1);
    const streamId = intField(link, 'streamId');
    const capacity = intField(link, 'capacity', 4096, 2 ** 30);
    intField(link, 'nextSeq');
    const address = addrField(link, 'address');
    const creditAddr = u64Field(link, 'creditAddr');
    const creditKey = u64Field(link, 'creditKey');
    checkPeerIp(address, sock.remoteAddress, 'sender');
    let rx = this.links.get(linkId);
    if (!rx && this.opts.acceptUnknown) {
      rx = this.accept(linkId);
      this.emit('receiver', rx);
    }
    if (!rx)
      throw new RdmaqError('ERR_RDMAQ_UNKNOWN_LINK', `link ${linkId} is not accepted on port ${this.port}`);
    const receiver = rx;
    // One handshake per link at a time: a second one would re-open the endpoint under the first.
    if (this.handshaking.has(linkId)) {
      throw new RdmaqError(
        'ERR_RDMAQ_LINK_BUSY',
        `link ${linkId}: another sender is in the middle of a handshake`,
      );
    }
    this.handshaking.add(linkId);
    try {
      if (receiver.provider && receiver.provider !== provider) {
        throw handshakeError(
          `link ${linkId} accepts provider ${receiver.provider} only, the sender asked for ${provider}`,
        );
      }
      if (capacity !== receiver.capacity) {
        throw handshakeError(
          `ring capacity mismatch on ${linkId}: receiver ${receiver.capacity}, sender ${capacity}; configure both the same`,
        );
      }
      const nextSeq = receiver.resumePoint(streamId);
      const check = randomInt(1, 2 ** 47);
      const info = receiver.openFabric(provider, plainIp(sock.localAddress));
      conn.send({
        t: 'ring',
        v: FABRIC_CONTROL_VERSION,
        linkId,
        epoch,
        provider: info.provider,
        address: info.address.toString('base64'),
        ringAddr: info.ringAddr.toString(),
        ringKey: info.ringKey.toString(),
        slot: info.slot,
        capacity: receiver.capacity,
        nextSeq,
        check,
      });
      const start: ControlMsg = await conn.next(HANDSHAKE_TIMEOUT_MS);
      if (start.t === 'error') {
        throw new RdmaqError(
          typeof start.code === 'string' && /^ERR_RDMAQ_[A-Z_]+$/.test(start.code)
            ? start.code
            : 'ERR_RDMAQ_HANDSHAKE',
          `sender refused: ${String(start.message).slice(0, 300)}`,
        );
      }
      if (start.t !== 'start') throw handshakeError(`expected start, got ${start.t}`);
      const pos = intField(start, 'pos');
      const seq = intField(start, 'seq');
      // Records are 8-byte aligned: an unaligned start would put every record header across 8-byte
      // boundaries and the test write past the ring's last byte (seen writing the parser's fuzz target).
      if (pos % 8 !== 0)
        throw handshakeError(`sender wants to start at ring position ${pos}, not 8-byte aligned`);
      if (nextSeq !== null && seq !== nextSeq) {
        throw handshakeError(`sender wants to start at sequence ${seq}, this receiver expects ${nextSeq}`);
      }
      await receiver.verifyPath(
        { address, creditAddr, creditKey, pos, seq },
        check,
        HANDSHAKE_TIMEOUT_MS,
        () => conn.isClosed,
      );
      receiver.attach(conn, { epoch, streamId });
      conn.send({ t: 'ready' });
      conn.startStreaming(this.opts.heartbeatMs ?? 500, this.opts.deadAfterMs ?? 2500, () => receiver.beat());
    } catch (err) {
      receiver.countError((err as RdmaqError).code);
      throw err;
    } finally {
      this.handshaking.delete(linkId);
    }
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

/** Starts a fabric listener (TCP control port with HMAC authentication). */
export async function listenFabric(opts: FabricListenOptions): Promise<FabricListener> {
  const secret = secretBuffer(opts.secret);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(new RdmaqError('ERR_RDMAQ_LISTEN', `cannot listen on port ${opts.port}: ${e.message}`)),
    );
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return new FabricListener(opts, server, secret);
}
