/**
 * The fabric link's control connection (TCP): length-prefixed frames, an HMAC-SHA256 challenge-response on
 * the cluster secret in both directions BEFORE any address or key is shared, then MAC'd JSON messages
 * (session key from both nonces) carrying the link parameters, heartbeats and park/wake signals.
 *
 * Frame: u32 big-endian length, then the body (≤ MAX_FRAME bytes). Before authentication the body is JSON;
 * after it, JSON followed by a 32-byte HMAC(sessionKey, direction ‖ counter ‖ json), so a tampered or
 * replayed frame (forged key or address) fails with ERR_RDMAQ_HANDSHAKE.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describeValue, MAX_JSON_DEPTH, nestedDeeperThan } from '../decode.js';
import { RdmaqError } from '../errors.js';

/** 2: the receiver's `slot` on its shared endpoint (routes its incoming writes; see FABRIC.md). */
export const FABRIC_CONTROL_VERSION = 2;
/** Largest control frame; the biggest real one (link parameters) is well under 1 KiB. */
export const MAX_FRAME = 16 * 1024;
const MAC_LEN = 32;
const NONCE_LEN = 32;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type ControlMsg = { t: string; [k: string]: Json };

export function handshakeError(message: string): RdmaqError {
  return new RdmaqError('ERR_RDMAQ_HANDSHAKE', message);
}

function proof(secret: Buffer, label: string, a: Buffer, b: Buffer): Buffer {
  return createHmac('sha256', secret).update(label).update(a).update(b).digest();
}

/** Constant-time comparison that tolerates any input (wrong length → false, never throws). */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A message's type for an error text: bounded (a frame may carry a 16 KiB `t`). */
function typeOf(msg: ControlMsg): string {
  return typeof msg.t === 'string' ? msg.t.slice(0, 40) : describeValue(msg.t);
}

function hexField(msg: ControlMsg, key: string, bytes: number): Buffer {
  const v = msg[key];
  if (typeof v !== 'string' || v.length !== bytes * 2 || !/^[0-9a-f]+$/.test(v)) {
    throw handshakeError(`control message ${typeOf(msg)}: ${key} must be ${bytes} bytes of lowercase hex`);
  }
  return Buffer.from(v, 'hex');
}

/**
 * One control connection. Emits `message` (ControlMsg) after authentication, `close` (reason string) once.
 * `authenticate*` resolve when both sides proved the secret; they reject with ERR_RDMAQ_AUTH (wrong secret)
 * or ERR_RDMAQ_HANDSHAKE (malformed, oversized, timeout).
 */
export class ControlConn extends EventEmitter {
  readonly socket: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private key: Buffer | undefined;
  private sendCounter = 0n;
  private recvCounter = 0n;
  private readonly sendLabel: string;
  private readonly recvLabel: string;
  private waiter: ((msg: ControlMsg | Error) => void) | undefined;
  private queue: Array<ControlMsg | Error> = [];
  private closed = false;
  private lastHeard = Date.now();
  private hbTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, role: 'client' | 'server') {
    super();
    this.socket = socket;
    this.sendLabel = role === 'client' ? 'c2s' : 's2c';
    this.recvLabel = role === 'client' ? 's2c' : 'c2s';
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.shut(`control socket error: ${e.message}`));
    socket.on('close', () => this.shut('control connection closed by the peer'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Client side of the mutual HMAC challenge. */
  async authenticateClient(secret: Buffer, timeoutMs: number): Promise<void> {
    const nc = randomBytes(NONCE_LEN);
    this.writeFrame(
      Buffer.from(JSON.stringify({ t: 'hello', v: FABRIC_CONTROL_VERSION, nonce: nc.toString('hex') })),
    );
    const ch = await this.next(timeoutMs);
    if (ch.t === 'error') throw remoteError(ch);
    if (ch.t !== 'challenge' || ch.v !== FABRIC_CONTROL_VERSION) {
      throw handshakeError(
        `expected a challenge of control version ${FABRIC_CONTROL_VERSION}, got ${String(ch.t)}`,
      );
    }
    const ns = hexField(ch, 'nonce', NONCE_LEN);
    const theirs = hexField(ch, 'proof', MAC_LEN);
    if (!sameBytes(theirs, proof(secret, 'rdmaq-fabric-server', nc, ns))) {
      throw new RdmaqError(
        'ERR_RDMAQ_AUTH',
        'the listener failed the HMAC challenge: it does not hold the same cluster secret (check the secret on both hosts)',
      );
    }
    this.writeFrame(
      Buffer.from(
        JSON.stringify({ t: 'proof', proof: proof(secret, 'rdmaq-fabric-client', nc, ns).toString('hex') }),
      ),
    );
    this.key = proof(secret, 'rdmaq-fabric-session', nc, ns);
    const ok = await this.next(timeoutMs);
    if (ok.t === 'error') throw remoteError(ok);
    if (ok.t !== 'authenticated') throw handshakeError(`expected authenticated, got ${String(ok.t)}`);
  }

  /** Server side of the mutual HMAC challenge. */
  async authenticateServer(secret: Buffer, timeoutMs: number): Promise<void> {
    const hello = await this.next(timeoutMs);
    if (hello.t !== 'hello' || hello.v !== FABRIC_CONTROL_VERSION) {
      throw handshakeError(`expected hello of control version ${FABRIC_CONTROL_VERSION}`);
    }
    const nc = hexField(hello, 'nonce', NONCE_LEN);
    const ns = randomBytes(NONCE_LEN);
    this.writeFrame(
      Buffer.from(
        JSON.stringify({
          t: 'challenge',
          v: FABRIC_CONTROL_VERSION,
          nonce: ns.toString('hex'),
          proof: proof(secret, 'rdmaq-fabric-server', nc, ns).toString('hex'),
        }),
      ),
    );
    const p = await this.next(timeoutMs);
    if (p.t !== 'proof') throw handshakeError(`expected proof, got ${String(p.t)}`);
    if (!sameBytes(hexField(p, 'proof', MAC_LEN), proof(secret, 'rdmaq-fabric-client', nc, ns))) {
      this.writeFrame(
        Buffer.from(JSON.stringify({ t: 'error', code: 'ERR_RDMAQ_AUTH', message: 'HMAC challenge failed' })),
      );
      throw new RdmaqError(
        'ERR_RDMAQ_AUTH',
        `sender ${this.socket.remoteAddress ?? '?'} failed the HMAC challenge: it does not hold the cluster secret`,
      );
    }
    this.key = proof(secret, 'rdmaq-fabric-session', nc, ns);
    // From here every frame is MAC'd.
    this.send({ t: 'authenticated' });
  }

  /** Sends one message (MAC'd once authenticated). Silently dropped after close. */
  send(msg: ControlMsg): void {
    if (this.closed) return;
    const json = Buffer.from(JSON.stringify(msg));
    if (!this.key) {
      this.writeFrame(json);
      return;
    }
    const mac = this.mac(this.sendLabel, this.sendCounter++, json);
    this.writeFrame(Buffer.concat([json, mac]));
  }

  /** Waits for the next message (handshake phase; after it, use the `message` event via startStreaming). */
  next(timeoutMs: number): Promise<ControlMsg> {
    const q = this.queue.shift();
    if (q) return q instanceof Error ? Promise.reject(q) : Promise.resolve(q);
    if (this.closed) return Promise.reject(handshakeError('control connection closed during the handshake'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(handshakeError(`no answer from the peer within ${timeoutMs} ms during the handshake`));
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        this.waiter = undefined;
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }

  /**
   * Hands every later message to the `message` event and starts heartbeats: one every `intervalMs`; the
   * connection is declared dead when nothing was heard for `deadMs` (libfabric never reports a dead peer).
   */
  startStreaming(intervalMs: number, deadMs: number, beat?: () => Record<string, number>): void {
    for (const m of this.queue.splice(0)) {
      if (m instanceof Error) this.shut(m.message);
      else this.emit('message', m);
    }
    this.lastHeard = Date.now();
    this.hbTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > deadMs) {
        this.shut(`peer silent for more than ${deadMs} ms (no heartbeat on the control connection)`);
        return;
      }
      // A heartbeat carries where this end's stream stands (e.g. the sender's next sequence): the peer can
      // tell "up and moving" from "up, but records wait and none move" (link state `stalled`).
      this.send({ t: 'hb', ...beat?.() });
      this.emit('beat');
    }, intervalMs);
  }

  /** Closes the connection (idempotent); `close` is emitted once with the reason. */
  shut(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.socket.destroy();
    const err = handshakeError(`control connection lost during the handshake: ${reason}`);
    if (this.waiter) this.waiter(err);
    this.emit('close', reason);
  }

  /** Sends `msg` (e.g. an error) then closes. */
  end(msg: ControlMsg, reason: string): void {
    this.send(msg);
    this.socket.end();
    setTimeout(() => this.shut(reason), 200).unref();
  }

  private mac(label: string, counter: bigint, json: Buffer): Buffer {
    const c = Buffer.alloc(8);
    c.writeBigUInt64BE(counter);
    return createHmac('sha256', this.key!).update(label).update(c).update(json).digest();
  }

  private writeFrame(body: Buffer): void {
    if (body.length > MAX_FRAME)
      throw handshakeError(`control frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(body.length);
    this.socket.write(Buffer.concat([h, body]));
  }

  private deliver(m: ControlMsg | Error): void {
    if (this.waiter) this.waiter(m);
    else if (this.hbTimer === undefined) this.queue.push(m);
    else if (m instanceof Error) this.shut(m.message);
    else this.emit('message', m);
  }

  private onData(d: Buffer): void {
    if (this.closed) return;
    this.lastHeard = Date.now();
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_FRAME + MAC_LEN || len === 0) {
        const e = handshakeError(`control frame of ${len} bytes is out of range (1..${MAX_FRAME})`);
        this.deliver(e);
        this.shut(e.message);
        return;
      }
      if (this.buf.length < 4 + len) return;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      let json = body;
      if (this.key) {
        if (body.length <= MAC_LEN) {
          this.fatal('control frame too short to carry its MAC');
          return;
        }
        json = body.subarray(0, body.length - MAC_LEN);
        const want = this.mac(this.recvLabel, this.recvCounter++, json);
        if (!sameBytes(body.subarray(body.length - MAC_LEN), want)) {
          this.fatal('control frame failed its HMAC check (tampered, forged or replayed)');
          return;
        }
      }
      let msg: unknown;
      try {
        msg = JSON.parse(json.toString('utf8'));
      } catch {
        this.fatal('control frame is not valid JSON');
        return;
      }
      if (
        !msg ||
        typeof msg !== 'object' ||
        Array.isArray(msg) ||
        typeof (msg as { t?: unknown }).t !== 'string'
      ) {
        this.fatal('control frame is not an object with a string type');
        return;
      }
      if (nestedDeeperThan(msg, MAX_JSON_DEPTH)) {
        // Real messages are flat; a deep one would throw a RangeError wherever a field of it is printed.
        this.fatal(`control frame nests deeper than ${MAX_JSON_DEPTH} levels`);
        return;
      }
      const m = msg as ControlMsg;
      if (m.t === 'hb') {
        if (this.hbTimer !== undefined) this.emit('heartbeat', m);
        continue;
      }
      this.deliver(m);
    }
  }

  private fatal(message: string): void {
    const e = handshakeError(message);
    this.deliver(e);
    this.shut(message);
  }
}

function remoteError(msg: ControlMsg): RdmaqError {
  const code =
    typeof msg.code === 'string' && /^ERR_RDMAQ_[A-Z_]+$/.test(msg.code) ? msg.code : 'ERR_RDMAQ_HANDSHAKE';
  const text = typeof msg.message === 'string' ? msg.message.slice(0, 500) : 'refused';
  return new RdmaqError(code, `the peer refused the link: ${text}`);
}

export { remoteError };

// ---- validation of the link parameters (everything a peer sends is checked) ----

/** A non-negative safe integer field. */
export function intField(msg: ControlMsg, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = msg[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw handshakeError(
      `control message ${typeOf(msg)}: ${key} must be an integer in [${min}, ${max}], got ${describeValue(v)}`,
    );
  }
  return v;
}

/** A u64 carried as a decimal string (keys and remote addresses). */
export function u64Field(msg: ControlMsg, key: string): bigint {
  const v = msg[key];
  if (typeof v !== 'string' || !/^[0-9]{1,20}$/.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) {
    throw handshakeError(
      `control message ${typeOf(msg)}: ${key} must be a u64 in decimal, got ${describeValue(v)}`,
    );
  }
  return BigInt(v);
}

export function strField(msg: ControlMsg, key: string, re: RegExp): string {
  const v = msg[key];
  if (typeof v !== 'string' || !re.test(v)) {
    throw handshakeError(`control message ${typeOf(msg)}: ${key} is malformed (${describeValue(v)})`);
  }
  return v;
}

/** A fabric address in base64 (at most 256 bytes). */
export function addrField(msg: ControlMsg, key: string): Buffer {
  const v = strField(msg, key, /^[A-Za-z0-9+/]{1,344}={0,2}$/);
  const b = Buffer.from(v, 'base64');
  if (b.length === 0 || b.length > 256)
    throw handshakeError(`control message ${typeOf(msg)}: ${key} has ${b.length} bytes`);
  return b;
}

export { LINK_ID_RE } from '../link.js';
export const PROVIDER_RE = /^[a-z0-9_]{1,32}(;[a-z0-9_]{1,32}){0,2}$/;

/** The cluster secret as bytes; ERR_RDMAQ_ARG when it is shorter than 8 bytes. */
export function secretBuffer(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  if (b.length < 8) throw new RdmaqError('ERR_RDMAQ_ARG', 'the cluster secret must have at least 8 bytes');
  return b;
}

/** IPv4-mapped IPv6 ("::ffff:1.2.3.4") → "1.2.3.4", so addresses compare. */
export function plainIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
