import { AgentFrameSchema, BUCKET_COUNT, decodeFrame } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { decodeAgentFrame } from '../src/server/decode.js';
import { hello, sample } from './helpers.js';

describe('fast agent frame decoding agrees with the shared schema', () => {
  const base = () =>
    sample(3, 1_700_000_000_000, [
      {
        id: 'l0',
        peer: 'p',
        records: 5,
        latency: [
          [1000, 3],
          [5000, 1],
        ],
      },
    ]);
  const cases: Array<[string, unknown]> = [
    ['valid sample', base()],
    ['valid hello', hello('n1')],
    ['event', { type: 'event', v: 1, ts: 1, kind: 'agent', severity: 'info', message: 'hi' }],
  ];
  const mutate = (name: string, f: (q: Array<unknown>) => void) => {
    const s = base() as unknown as { links: Array<{ latency: { queue: unknown[] } }> };
    f(s.links[0]!.latency.queue);
    cases.push([name, s]);
  };
  mutate('bucket index too high', (q) => q.push([BUCKET_COUNT, 1]));
  mutate('bucket index at the top', (q) => q.push([BUCKET_COUNT - 1, 1]));
  mutate('negative count', (q) => q.push([5, -1]));
  mutate('fractional index', (q) => q.push([5.5, 1]));
  mutate('fractional count', (q) => q.push([5, 1.5]));
  mutate('string count', (q) => q.push([5, '1']));
  mutate('triple', (q) => q.push([5, 1, 2]));
  mutate('single', (q) => q.push([5]));
  mutate('not an array', (q) => q.push({ 0: 5, 1: 1 }));
  mutate('too many buckets', (q) => {
    for (let i = 0; i <= BUCKET_COUNT; i++) q.push([1, 1]);
  });
  cases.push(['wrong version', { ...base(), v: 2 }]);
  cases.push(['missing field', { ...base(), host: undefined }]);

  for (const [name, frame] of cases) {
    it(name, () => {
      const raw = JSON.stringify(frame);
      const fast = decodeAgentFrame(raw);
      const slow = decodeFrame(AgentFrameSchema, raw);
      expect(fast.ok).toBe(slow.ok);
      if (fast.ok && slow.ok) expect(fast.frame).toEqual(slow.frame);
      if (!fast.ok && !slow.ok) expect(fast.reason).toBe(slow.reason);
    });
  }
  it('malformed JSON', () => {
    const r = decodeAgentFrame('{nope');
    expect(r.ok).toBe(false);
  });
});
