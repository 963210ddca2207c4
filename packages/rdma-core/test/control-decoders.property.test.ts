/**
 * Property test of every decoder of peer-controlled control bytes (seeded, reproducible; > 100,000 inputs):
 *  - shm: decodeControlLine (src/control.ts) and ControlChannel's line framing over a chunked stream;
 *  - fabric: ControlConn's frame decoder (src/fabric/handshake.ts: length prefix, HMAC once authenticated,
 *    JSON), and the field validators the handshake applies to `link`, `ring` and `start` (intField,
 *    u64Field, strField, addrField) plus remoteError.
 * Inputs are valid messages, mutated ones (fields swapped for any JSON value, deleted, text damaged) and
 * garbage (random bytes, deep nesting, huge numbers, long strings). Each must decode to a value that meets
 * the protocol's rules (checked against an independent model here) or be refused with an RdmaqError whose
 * code is ERR_RDMAQ_HANDSHAKE — never another exception, never a slow input, never a message after a refusal.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CONTROL_VERSION,
  ControlChannel,
  type ControlMessage,
  decodeControlLine,
  MAX_LINE,
} from '../src/control.js';
import { MAX_JSON_DEPTH } from '../src/decode.js';
import { RdmaqError } from '../src/errors.js';
import {
  addrField,
  ControlConn,
  type ControlMsg,
  intField,
  LINK_ID_RE,
  MAX_FRAME,
  PROVIDER_RE,
  remoteError,
  strField,
  u64Field,
} from '../src/fabric/handshake.js';

const SEED = Number(process.env.RDMAQ_PROPERTY_SEED ?? 20250613);
const SLOW_MS = 1000; // no single input may take this long (a hang or a backtracking blow-up)

// ---- seeded PRNG (mulberry32) and value generators ------------------------------------------------------

class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  str(
    n: number,
    alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/>- "\\{}[],',
  ): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** `depth` levels of nested arrays or objects, built without recursion. */
function nested(depth: number, objects: boolean): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = objects ? { x: v } : [v];
  return v;
}

const STRINGS = [
  '',
  ' ',
  'x',
  '0',
  '-5',
  '1.5',
  '1e3',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999999',
  'deadbeef',
  'AAAA',
  '====',
  'ERR_RDMAQ_AUTH',
  'err_lower',
  '__proto__',
  '\u0000',
  '\ud800',
  'é',
  '🙂',
  'net;tcp',
  'tcp;ofi_rxm',
  'link-1',
  'a b',
];

/** Any value a peer could put in a JSON field (and some JSON cannot carry, for the validators). */
function anyValue(r: Rng, jsonOnly = true): unknown {
  switch (r.int(jsonOnly ? 14 : 17)) {
    case 0:
      return r.int(1000);
    case 1:
      return r.pick([
        0,
        -1,
        1,
        7,
        8,
        4096,
        2 ** 30,
        2 ** 31,
        2 ** 32,
        2 ** 53 - 1,
        2 ** 53,
        2 ** 64,
        -(2 ** 53),
      ]);
    case 2:
      return r.next() * 10 ** r.int(30) * (r.chance(0.3) ? -1 : 1);
    case 3:
      return r.pick(STRINGS);
    case 4:
      return r.str(r.int(40));
    case 5:
      return r.str(r.int(3) === 0 ? 2000 + r.int(20_000) : r.int(400));
    case 6:
      return r.str(r.int(70), '0123456789abcdef');
    case 7:
      return r.str(1 + r.int(30), '0123456789');
    case 8:
      return r.pick([true, false, null]);
    case 9:
      return [anyValue(r), anyValue(r)].slice(0, r.int(3));
    case 10:
      return { a: r.int(5), t: r.pick(STRINGS) };
    case 11:
      // Deeper than JSON.stringify can print only where the value is not sent as text (the validators).
      return nested(1 + r.int(r.chance(0.1) ? (jsonOnly ? 1000 : 9000) : 40), r.chance(0.5));
    case 12:
      return Buffer.from(r.bytes(r.int(300))).toString('base64');
    case 13:
      return JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": 1}}');
    case 14:
      return r.pick([Number.NaN, Number.POSITIVE_INFINITY, -0]);
    case 15:
      return undefined;
    default:
      return BigInt(r.int(1000));
  }
}

function isHandshakeError(e: unknown): boolean {
  return (
    e instanceof RdmaqError &&
    e.code === 'ERR_RDMAQ_HANDSHAKE' &&
    typeof e.message === 'string' &&
    e.message.length > 0
  );
}

/** Depth of nested arrays/objects (iterative). */
function depthOf(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    max = Math.max(max, d + 1);
    for (const c of Object.values(x as object)) stack.push([c, d + 1]);
  }
  return max;
}

const timing = { slowest: 0, inputs: 0 };
function timed<T>(f: () => T): T {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    const ms = performance.now() - t0;
    timing.inputs += 1;
    if (ms > timing.slowest) timing.slowest = ms;
  }
}

// ---- shm control lines ---------------------------------------------------------------------------------

const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const str = (v: unknown) => typeof v === 'string';

/** The shm protocol's rules for a decoded message (written from the protocol, not from the decoder). */
function shmMessageOk(m: unknown): boolean {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return false;
  const o = m as Record<string, unknown>;
  if (typeof o.t !== 'string' || depthOf(o) > MAX_JSON_DEPTH) return false;
  switch (o.t) {
    case 'hello':
      if (typeof o.v !== 'number') return false;
      return (
        o.v !== CONTROL_VERSION ||
        (str(o.linkId) && count(o.pid) && (o.ringId === undefined || str(o.ringId)))
      );
    case 'welcome':
      if (typeof o.v !== 'number') return false;
      return (
        o.v !== CONTROL_VERSION ||
        (['ringPath', 'rxWakePath', 'txWakePath', 'ringId'].every((k) => str(o[k])) &&
          ['capacity', 'epoch', 'nextSeq', 'pid'].every((k) => count(o[k])))
      );
    case 'error':
      return str(o.code) && /^[A-Z][A-Z0-9_]{0,63}$/.test(o.code as string) && str(o.message);
    case 'probe_reply':
      return count(o.seq);
    case 'bye':
      return str(o.reason);
    default:
      return true; // a type this version does not know: consumers ignore it
  }
}

function validShm(r: Rng): Record<string, unknown> {
  switch (r.int(6)) {
    case 0: {
      const m: Record<string, unknown> = {
        t: 'hello',
        v: CONTROL_VERSION,
        linkId: r.str(1 + r.int(30)),
        pid: r.int(4e6),
      };
      if (r.chance(0.5)) m.ringId = r.str(16, '0123456789abcdef');
      return m;
    }
    case 1:
      return {
        t: 'welcome',
        v: CONTROL_VERSION,
        ringPath: `/dev/shm/rdmaq-${r.str(8)}.ring`,
        rxWakePath: '/dev/shm/x.rxw',
        txWakePath: '/dev/shm/x.txw',
        ringId: r.str(16, '0123456789abcdef'),
        capacity: 65536 << r.int(8),
        epoch: 1 + r.int(100),
        nextSeq: r.int(2 ** 40),
        pid: r.int(4e6),
      };
    case 2:
      return {
        t: 'error',
        code: r.pick(['ERR_RDMAQ_HANDSHAKE', 'ERR_RDMAQ_LINK_BUSY', 'EACCES']),
        message: r.str(r.int(200)),
      };
    case 3:
      return { t: 'probe_reply', seq: r.int(2 ** 32) };
    case 4:
      return { t: 'bye', reason: r.str(r.int(60)) };
    default:
      return { t: r.pick(['future_thing', 'hb', 'x']), any: r.int(9) };
  }
}

function mutateObject(r: Rng, m: Record<string, unknown>): Record<string, unknown> {
  const o = { ...m };
  const keys = Object.keys(o);
  for (let n = 1 + r.int(3); n > 0; n--) {
    const k = r.chance(0.8) && keys.length ? r.pick(keys) : r.pick(['t', 'v', 'extra', '__proto__']);
    if (r.chance(0.25)) delete o[k];
    else o[k] = anyValue(r);
  }
  return o;
}

function mutateText(r: Rng, s: string): string {
  let out = s;
  for (let n = 1 + r.int(3); n > 0; n--) {
    const i = r.int(out.length + 1);
    switch (r.int(4)) {
      case 0:
        out = out.slice(0, i) + out.slice(i + 1 + r.int(4));
        break;
      case 1:
        out = out.slice(0, i) + r.str(1 + r.int(3), '{}[]":,\\0123456789tnull\u0000é') + out.slice(i);
        break;
      case 2:
        out = out.slice(0, i);
        break;
      default:
        out = out + out.slice(0, i);
    }
  }
  return out;
}

function garbageLine(r: Rng): string {
  switch (r.int(5)) {
    case 0:
      return r.bytes(r.int(200)).toString('latin1');
    case 1:
      return JSON.stringify(anyValue(r));
    case 2: {
      const d = 1 + r.int(9000);
      return `{"t":"bye","reason":${'['.repeat(d)}${']'.repeat(d)}}`;
    }
    case 3:
      return `{"t":"${r.str(r.int(20))}","v":${r.pick(['1', '1e400', '-0', '1.0', '"1"', 'null'])}}`;
    default:
      return r.str(r.int(2) ? 70_000 : 300);
  }
}

/** One shm line (no newline inside) and whether it was generated valid. */
function shmLine(r: Rng): { line: string; valid: boolean } {
  const kind = r.int(10);
  if (kind < 4) return { line: JSON.stringify(validShm(r)), valid: true };
  if (kind < 7) return { line: JSON.stringify(mutateObject(r, validShm(r))), valid: false };
  if (kind < 8) return { line: mutateText(r, JSON.stringify(validShm(r))), valid: false };
  return { line: garbageLine(r), valid: false };
}

/** Checks one line against the decoder and the model; returns the decoded message or the error. */
function checkShmLine(line: string, valid: boolean): ControlMessage | RdmaqError {
  let parsed: unknown;
  let parses = false;
  try {
    parsed = JSON.parse(line);
    parses = true;
  } catch {}
  try {
    const m = timed(() => decodeControlLine(line));
    expect(shmMessageOk(m)).toBe(true);
    if (valid) expect(m).toEqual(JSON.parse(line));
    return m;
  } catch (e) {
    if (!isHandshakeError(e))
      throw new Error(`decodeControlLine threw ${String(e)} for ${line.slice(0, 200)}`);
    expect(valid).toBe(false);
    // Refused only what the rules refuse.
    if (parses && line.length <= MAX_LINE) expect(shmMessageOk(parsed)).toBe(false);
    return e as RdmaqError;
  }
}

/** A socket double for ControlChannel / ControlConn: records writes, destroy is synchronous. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  remoteAddress = '192.0.2.1';
  setEncoding(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  write(): boolean {
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function chunks(r: Rng, whole: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < whole.length; ) {
    const n = r.chance(0.3) ? 1 + r.int(8) : 1 + r.int(whole.length);
    out.push(whole.subarray(i, i + n));
    i += n;
  }
  return out;
}

// ---- fabric frames -------------------------------------------------------------------------------------

const MAC_LEN = 32;

function mac(key: Buffer, label: string, counter: bigint, json: Buffer): Buffer {
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(counter);
  return createHmac('sha256', key).update(label).update(c).update(json).digest();
}

function validFabric(r: Rng): Record<string, unknown> {
  switch (r.int(7)) {
    case 0:
      return { t: 'hello', v: 2, nonce: r.bytes(32).toString('hex') };
    case 1:
      return {
        t: 'link',
        v: 2,
        linkId: r.str(1 + r.int(20), 'abc-._:'),
        provider: r.pick(['net', 'tcp;ofi_rxm']),
        epoch: 1 + r.int(9),
        streamId: r.int(2 ** 53),
        address: r.bytes(16).toString('base64'),
        creditAddr: String(r.int(2 ** 48)),
        creditKey: String(r.int(2 ** 31)),
        capacity: 4096 << r.int(10),
        nextSeq: r.int(1e9),
      };
    case 2:
      return { t: 'start', pos: 8 * r.int(1e6), seq: r.int(1e9) };
    case 3:
      return { t: 'hb', next: r.int(1e6) };
    case 4:
      return { t: 'error', code: 'ERR_RDMAQ_AUTH', message: r.str(r.int(80)) };
    case 5:
      return { t: 'ready' };
    default:
      return { t: r.pick(['park', 'wake', 'need']), tail: r.int(1e6) };
  }
}

type Frame = { bytes: Buffer; expect: 'message' | 'skip' | 'error' | 'incomplete'; msg?: unknown };

/** One frame (header + body [+ MAC]) and what the protocol says must come of it. */
function fabricFrame(r: Rng, key: Buffer | undefined, counter: bigint): Frame {
  let body: Buffer;
  let json: Buffer;
  let msg: unknown;
  const kind = r.int(10);
  if (kind < 4) {
    msg = validFabric(r);
    json = Buffer.from(JSON.stringify(msg));
  } else if (kind < 6) {
    msg = mutateObject(r, validFabric(r));
    json = Buffer.from(JSON.stringify(msg) ?? 'null');
  } else if (kind < 7) {
    json = Buffer.from(mutateText(r, JSON.stringify(validFabric(r))));
  } else if (kind < 8) {
    const d = 1 + r.int(7000);
    json = Buffer.from(`{"t":"ring","linkId":${'['.repeat(d)}${']'.repeat(d)}}`);
  } else {
    json = r.chance(0.5) ? r.bytes(r.int(100)) : Buffer.from(garbageLine(r).slice(0, MAX_FRAME));
  }
  body = key ? Buffer.concat([json, mac(key, 'c2s', counter, json)]) : json;
  let corrupted = false;
  if (key && r.chance(0.05)) {
    const at = r.int(body.length);
    body[at] = body[at]! ^ (1 << r.int(8)); // tampered in flight
    corrupted = true;
  }
  if (r.chance(0.03)) body = r.bytes(r.int(40)); // not even a MAC
  let len = body.length;
  const lenKind = r.int(40);
  if (lenKind === 0) len = 0;
  else if (lenKind === 1) len = MAX_FRAME + MAC_LEN + 1 + r.int(2 ** 31);
  else if (lenKind === 2) len = body.length + 1 + r.int(20); // claims more than comes: waits
  const head = Buffer.alloc(4);
  head.writeUInt32BE(len >>> 0);
  const bytes = Buffer.concat([head, body.subarray(0, Math.min(body.length, len))]);
  // The model of ControlConn's frame rules.
  if (len === 0 || len > MAX_FRAME + MAC_LEN) return { bytes, expect: 'error' };
  if (len > body.length) return { bytes, expect: 'incomplete' };
  let text = body;
  if (key) {
    if (body.length <= MAC_LEN) return { bytes, expect: 'error' };
    text = body.subarray(0, body.length - MAC_LEN);
    const good = mac(key, 'c2s', counter, text).equals(body.subarray(body.length - MAC_LEN));
    if (!good || corrupted) return { bytes, expect: 'error' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch {
    return { bytes, expect: 'error' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { bytes, expect: 'error' };
  if (typeof (parsed as { t?: unknown }).t !== 'string' || depthOf(parsed) > MAX_JSON_DEPTH)
    return { bytes, expect: 'error' };
  if ((parsed as { t: string }).t === 'hb') return { bytes, expect: 'skip' };
  return { bytes, expect: 'message', msg: parsed };
}

// ---- field validators of the fabric handshake ---------------------------------------------------------

type Check = { key: string; run: (m: ControlMsg) => unknown; ok: (v: unknown) => boolean };
const intCheck = (key: string, min = 0, max = Number.MAX_SAFE_INTEGER): Check => ({
  key,
  run: (m) => intField(m, key, min, max),
  ok: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max,
});
const u64Check = (key: string): Check => ({
  key,
  run: (m) => u64Field(m, key),
  ok: (v) => typeof v === 'bigint' && v >= 0n && v <= 0xffff_ffff_ffff_ffffn,
});
const strCheck = (key: string, re: RegExp): Check => ({
  key,
  run: (m) => strField(m, key, re),
  ok: (v) => typeof v === 'string' && re.test(v),
});
const addrCheck = (key: string): Check => ({
  key,
  run: (m) => addrField(m, key),
  ok: (v) => Buffer.isBuffer(v) && v.length >= 1 && v.length <= 256,
});
/** The checks the listener applies to `link` and `start`, and the sender to `ring`. */
const CHECKS: Check[] = [
  strCheck('linkId', LINK_ID_RE),
  strCheck('provider', PROVIDER_RE),
  intCheck('epoch', 1),
  intCheck('streamId'),
  intCheck('capacity', 4096, 2 ** 30),
  intCheck('nextSeq'),
  addrCheck('address'),
  u64Check('creditAddr'),
  u64Check('creditKey'),
  u64Check('ringAddr'),
  u64Check('ringKey'),
  intCheck('slot', 1, 1023),
  intCheck('check', 1),
  intCheck('pos'),
  intCheck('seq'),
];

// ---- the properties --------------------------------------------------------------------------------------

describe('control decoders: seeded property test (valid, mutated, garbage)', () => {
  it('shm: 40,000 lines through decodeControlLine', () => {
    const r = new Rng(SEED);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 40_000; i++) {
      const { line, valid } = shmLine(r);
      if (checkShmLine(line, valid) instanceof RdmaqError) refused++;
      else accepted++;
    }
    expect(accepted).toBeGreaterThan(15_000);
    expect(refused).toBeGreaterThan(10_000);
    expect(timing.slowest).toBeLessThan(SLOW_MS);
  });

  it('shm: 4,000 chunked streams through ControlChannel: messages until the first bad line, then one error and nothing more', () => {
    const r = new Rng(SEED + 1);
    for (let i = 0; i < 4_000; i++) {
      const lines: Array<{ line: string; valid: boolean }> = [];
      for (let n = 1 + r.int(6); n > 0; n--) {
        const l = shmLine(r);
        lines.push({ line: l.line.replace(/[\n]/g, ' '), valid: l.valid });
      }
      // The model: decode line by line up to the first refusal.
      const want: unknown[] = [];
      let wantError = false;
      for (const l of lines) {
        if (l.line.length === 0) continue;
        const got = checkShmLine(l.line, l.valid);
        if (got instanceof RdmaqError) {
          wantError = true;
          break;
        }
        want.push(got);
      }
      const sock = new FakeSocket();
      const ch = new ControlChannel(sock as unknown as Socket);
      const seen: unknown[] = [];
      const errors: unknown[] = [];
      ch.on('message', (m) => {
        expect(errors).toHaveLength(0); // never a message after a refusal
        seen.push(m);
      });
      ch.on('protocolError', (e) => errors.push(e));
      const text = lines.map((l) => `${l.line}\n`).join('');
      timed(() => {
        for (let at = 0; at < text.length; ) {
          const n = r.chance(0.3) ? 1 + r.int(8) : 1 + r.int(text.length);
          sock.emit('data', text.slice(at, at + n));
          at += n;
        }
      });
      expect(seen).toEqual(want);
      if (wantError) {
        expect(errors).toHaveLength(1);
        expect(isHandshakeError(errors[0])).toBe(true);
        expect(sock.destroyed).toBe(true);
      } else {
        expect(errors).toHaveLength(0);
      }
    }
    // A line that never ends is refused once it passes MAX_LINE.
    const sock = new FakeSocket();
    const ch = new ControlChannel(sock as unknown as Socket);
    const errors: unknown[] = [];
    ch.on('protocolError', (e) => errors.push(e));
    for (let i = 0; i < 20; i++) sock.emit('data', 'x'.repeat(8192));
    expect(errors).toHaveLength(1);
    expect(isHandshakeError(errors[0])).toBe(true);
    expect(timing.slowest).toBeLessThan(SLOW_MS);
  });

  it('fabric: 30,000 frame streams through ControlConn, before and after authentication', () => {
    const r = new Rng(SEED + 2);
    let delivered = 0;
    let refused = 0;
    for (let i = 0; i < 30_000; i++) {
      const key = r.chance(0.5) ? randomBytes(32) : undefined;
      const sock = new FakeSocket();
      const conn = new ControlConn(sock as unknown as Socket, 'server');
      const inner = conn as unknown as { key: Buffer | undefined; queue: Array<ControlMsg | Error> };
      inner.key = key;
      const frames: Frame[] = [];
      for (let n = 1 + r.int(4), c = 0n; n > 0; n--) {
        const f = fabricFrame(r, key, c++);
        frames.push(f);
        if (f.expect === 'incomplete') break; // the bytes after it would be read as its body
      }
      // The model: frames in order until the first refusal or an incomplete one.
      const want: Array<unknown> = [];
      let wantError = false;
      for (const f of frames) {
        if (f.expect === 'error') {
          wantError = true;
          break;
        }
        if (f.expect === 'incomplete') break;
        if (f.expect === 'message') want.push(f.msg);
      }
      const stream = Buffer.concat(frames.map((f) => f.bytes));
      timed(() => {
        for (const c of chunks(r, stream)) sock.emit('data', c); // a throw here fails the test
      });
      const got = inner.queue;
      const messages = got.filter((m) => !(m instanceof Error));
      const errors = got.filter((m) => m instanceof Error);
      expect(messages).toEqual(want);
      if (wantError) {
        expect(errors).toHaveLength(1);
        expect(isHandshakeError(errors[0])).toBe(true);
        expect(got[got.length - 1]).toBe(errors[0]); // nothing after the refusal
        expect(conn.isClosed).toBe(true);
        refused++;
      } else {
        expect(errors).toHaveLength(0);
        expect(conn.isClosed).toBe(false);
        conn.shut('test done');
      }
      delivered += messages.length;
    }
    expect(delivered).toBeGreaterThan(10_000);
    expect(refused).toBeGreaterThan(5_000);
    expect(timing.slowest).toBeLessThan(SLOW_MS);
  });

  it('fabric: 25,000 handshake messages through every field validator, and remoteError', () => {
    const r = new Rng(SEED + 3);
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 25_000; i++) {
      const base = validFabric(r);
      const msg: Record<string, unknown> = r.chance(0.3) ? base : mutateObject(r, base);
      // Give every validated field a value: a valid one or anything at all.
      for (const c of CHECKS) {
        if (r.chance(0.5)) continue;
        msg[c.key] = r.chance(0.4) ? anyValue(r, false) : validFor(r, c.key);
      }
      for (const c of CHECKS) {
        try {
          const v = timed(() => c.run(msg as ControlMsg));
          expect(c.ok(v)).toBe(true);
          ok++;
        } catch (e) {
          if (!isHandshakeError(e))
            throw new Error(`${c.key} validator threw ${String(e)} for a ${typeof msg[c.key]}`);
          expect((e as Error).message.length).toBeLessThan(400);
          refused++;
        }
      }
      const re = timed(() =>
        remoteError({ t: 'error', code: anyValue(r), message: anyValue(r) } as ControlMsg),
      );
      expect(re).toBeInstanceOf(RdmaqError);
      expect(re.code).toMatch(/^ERR_RDMAQ_[A-Z_]+$/);
      expect(re.message.length).toBeLessThan(600);
    }
    expect(ok).toBeGreaterThan(30_000);
    expect(refused).toBeGreaterThan(30_000);
    expect(timing.slowest).toBeLessThan(SLOW_MS);
    // 40,000 lines + 4,000 streams + 30,000 streams + 25,000 × (15 + 1) calls.
    expect(timing.inputs).toBeGreaterThan(100_000);
    console.log(
      `control decoders: ${timing.inputs} inputs (seed ${SEED}), slowest ${timing.slowest.toFixed(1)} ms`,
    );
  });
});

function validFor(r: Rng, key: string): unknown {
  switch (key) {
    case 'linkId':
      return r.str(1 + r.int(100), 'abcXYZ019._:@/>-');
    case 'provider':
      return r.pick(['net', 'tcp;ofi_rxm', 'verbs;ofi_rxm', 'shm']);
    case 'address':
      return r.bytes(1 + r.int(256)).toString('base64');
    case 'creditAddr':
    case 'creditKey':
    case 'ringAddr':
    case 'ringKey':
      return r.chance(0.1) ? '18446744073709551615' : String(r.int(2 ** 48));
    case 'capacity':
      return 4096 << r.int(19);
    case 'slot':
      return 1 + r.int(1023);
    case 'epoch':
    case 'check':
      return 1 + r.int(2 ** 40);
    default:
      return r.int(2 ** 53);
  }
}
