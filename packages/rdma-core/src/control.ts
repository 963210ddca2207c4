/**
 * The shm control connection: newline-delimited JSON over a unix socket. It carries the handshake
 * (hello → welcome | error), probe replies and a goodbye; its EOF is the liveness signal (a killed peer's
 * socket closes at once, which libfabric and shared memory never report).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

export const CONTROL_VERSION = 1;
/** A control line longer than this is a protocol error (the handshake is a few hundred bytes). */
const MAX_LINE = 64 * 1024;

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

/** Emits `message` (ControlMessage), `protocolError` (Error) and `close` (once). */
export class ControlChannel extends EventEmitter {
  private buf = '';
  private closed = false;

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
    this.buf += chunk;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length > 0) this.onLine(line);
      nl = this.buf.indexOf('\n');
    }
    if (this.buf.length > MAX_LINE) {
      this.emit('protocolError', new Error(`control line longer than ${MAX_LINE} bytes`));
      this.socket.destroy();
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.emit('protocolError', new Error('control line is not JSON'));
      this.socket.destroy();
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof (msg as { t?: unknown }).t !== 'string') {
      this.emit('protocolError', new Error('control message without a type'));
      this.socket.destroy();
      return;
    }
    this.emit('message', msg as ControlMessage);
  }
}
