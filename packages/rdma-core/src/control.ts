/**
 * The shm control connection: newline-delimited JSON over a unix socket. It carries the handshake
 * (hello → welcome | error), probe replies and a goodbye; its EOF is the liveness signal (a killed peer's
 * socket closes at once, which libfabric and shared memory never report).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describeValue, MAX_JSON_DEPTH, nestedDeeperThan } from './decode.js';
import { RdmaqError } from './errors.js';

export const CONTROL_VERSION = 1;
/** A control line longer than this is a protocol error (the handshake is a few hundred bytes). */
export const MAX_LINE = 64 * 1024;

export type ControlMessage =
  | { t: 'hello'; v: number; linkId: string; pid: number; ringId?: string }
  | {
      t: 'welcome';
      v: number;
      ringPath: string;
      rxWakePath: string;
      txWakePath: string;
      ringId: string;
      capacity: number;
      epoch: number;
      nextSeq: number;
      pid: number;
    }
  | { t: 'error'; code: string; message: string }
  | { t: 'probe_reply'; seq: number }
  | { t: 'bye'; reason: string };

function bad(message: string): RdmaqError {
  return new RdmaqError('ERR_RDMAQ_HANDSHAKE', message);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Field checks of one message type: the fields every consumer relies on, with their types. */
const FIELDS: Record<string, Record<string, (v: unknown) => boolean>> = {
  error: {
    code: (v) => typeof v === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(v),
    message: (v) => typeof v === 'string',
  },
  probe_reply: { seq: isCount },
  bye: { reason: (v) => typeof v === 'string' },
};
const HELLO_V1: Record<string, (v: unknown) => boolean> = {
  linkId: (v) => typeof v === 'string',
  pid: isCount,
  ringId: (v) => v === undefined || typeof v === 'string',
};
const WELCOME_V1: Record<string, (v: unknown) => boolean> = {
  ringPath: (v) => typeof v === 'string',
  rxWakePath: (v) => typeof v === 'string',
  txWakePath: (v) => typeof v === 'string',
  ringId: (v) => typeof v === 'string',
  capacity: isCount,
  epoch: isCount,
  nextSeq: isCount,
  pid: isCount,
};

/**
 * Decodes one control line (without its newline) into a ControlMessage, or throws an RdmaqError with code
 * ERR_RDMAQ_HANDSHAKE. Checks: at most MAX_LINE characters, JSON, an object with a string `t`, nesting at
 * most MAX_JSON_DEPTH, and for every known type the fields its consumers read, with their types. `hello`
 * and `welcome` need a numeric `v`; their other fields are checked only for this CONTROL_VERSION (another
 * version is answered by the handshake with a version error, not dropped here). Types this version does not
 * know pass with their `t` (consumers ignore them).
 */
export function decodeControlLine(line: string): ControlMessage {
  if (line.length > MAX_LINE) throw bad(`control line longer than ${MAX_LINE} bytes`);
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw bad('control line is not JSON');
  }
  if (
    !msg ||
    typeof msg !== 'object' ||
    Array.isArray(msg) ||
    typeof (msg as { t?: unknown }).t !== 'string'
  ) {
    throw bad('control message without a type');
  }
  if (nestedDeeperThan(msg, MAX_JSON_DEPTH))
    throw bad(`control message nests deeper than ${MAX_JSON_DEPTH} levels`);
  const m = msg as Record<string, unknown> & { t: string };
  let fields = Object.hasOwn(FIELDS, m.t) ? FIELDS[m.t] : undefined;
  if (m.t === 'hello' || m.t === 'welcome') {
    if (typeof m.v !== 'number') throw bad(`${m.t}: v must be a number, got ${describeValue(m.v)}`);
    if (m.v === CONTROL_VERSION) fields = m.t === 'hello' ? HELLO_V1 : WELCOME_V1;
  }
  if (fields) {
    for (const [key, ok] of Object.entries(fields)) {
      if (!ok(m[key])) throw bad(`${m.t}: field ${key} is malformed (${describeValue(m[key])})`);
    }
  }
  return m as unknown as ControlMessage;
}

/**
 * Emits `message` (ControlMessage, checked by decodeControlLine), `protocolError` (RdmaqError
 * ERR_RDMAQ_HANDSHAKE; the socket is destroyed and nothing after it is decoded) and `close` (once).
 */
export class ControlChannel extends EventEmitter {
  private buf = '';
  private closed = false;
  private failed = false;

  constructor(readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {
      // EOF/ECONNRESET both mean the peer is gone; 'close' follows and reports it.
    });
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.emit('close');
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(msg: ControlMessage): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(`${JSON.stringify(msg)}\n`);
  }

  /** Sends a last message (if any) and closes. */
  end(msg?: ControlMessage): void {
    if (this.socket.destroyed) return;
    if (msg) this.socket.end(`${JSON.stringify(msg)}\n`);
    else this.socket.end();
    // Do not wait for the peer's FIN forever: destroy once the goodbye is flushed.
    setTimeout(() => this.socket.destroy(), 200).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    if (this.failed) return;
    this.buf += chunk;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length > 0) this.onLine(line);
      // A protocol error ends the connection: the lines after it (same chunk) are not the peer's any more.
      if (this.failed) return;
      nl = this.buf.indexOf('\n');
    }
    if (this.buf.length > MAX_LINE) this.fail(bad(`control line longer than ${MAX_LINE} bytes`));
  }

  private onLine(line: string): void {
    let msg: ControlMessage;
    try {
      msg = decodeControlLine(line);
    } catch (err) {
      this.fail(err as RdmaqError);
      return;
    }
    this.emit('message', msg);
  }

  private fail(err: RdmaqError): void {
    this.failed = true;
    this.buf = '';
    this.emit('protocolError', err);
    this.socket.destroy();
  }
}
