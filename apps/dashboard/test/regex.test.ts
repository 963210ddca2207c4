import { describe, expect, it } from 'vitest';
import {
  compileSafeRegex,
  MAX_INPUT,
  MAX_PATTERN_LENGTH,
  MAX_PROGRAM,
  RegexError,
} from '../src/server/regex.js';
import { mulberry32 } from './prng.js';

describe('linear-time regex (silence matchers)', () => {
  it('agrees with JavaScript RegExp (whole-string match) on 3,000 generated patterns × 10 values', () => {
    const rnd = mulberry32(20_240_613);
    const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
    const atoms = [
      'a',
      'b',
      'c',
      '.',
      '[ab]',
      '[^a]',
      '\\d',
      '\\w',
      '\\s',
      '\\W',
      '(a|b)',
      '(?:ab|c)',
      '[a-c]',
      '\\.',
      '-',
      '1',
      '^',
      '$',
      '()',
      '(a*)',
      '[\\d-]',
      '[.-]',
      '\\x41',
      '\\u0062',
    ];
    const quants = ['', '', '', '*', '+', '?', '{2}', '{1,3}', '{0,}', '*?', '+?', '{2,}'];
    const gen = (d: number): string => {
      let s = '';
      for (let i = 1 + Math.floor(rnd() * 4); i > 0; i--) {
        const a = d < 2 && rnd() < 0.2 ? `(${gen(d + 1)})` : pick(atoms);
        s += a === '^' || a === '$' ? a : a + pick(quants);
      }
      return rnd() < 0.2 ? `${s}|${gen(d + 1)}` : s;
    };
    const chars = ['a', 'b', 'c', 'A', '1', '.', '-', ' ', 'x', '\n', '_'];
    let checked = 0;
    for (let k = 0; k < 3000; k++) {
      const p = gen(0);
      const js = new RegExp(`^(?:${p})$`);
      let safe: ReturnType<typeof compileSafeRegex>;
      try {
        safe = compileSafeRegex(p);
      } catch (err) {
        // The one construct refused that JavaScript accepts here: a repeated group holding only an anchor.
        expect((err as Error).message).toMatch(/anchor cannot be repeated/);
        continue;
      }
      for (let j = 0; j < 10; j++) {
        let v = '';
        for (let i = Math.floor(rnd() * 7); i > 0; i--) v += pick(chars);
        expect(safe.test(v), `${JSON.stringify(p)} on ${JSON.stringify(v)}`).toBe(js.test(v));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(25_000);
  });

  it('matches what operators write', () => {
    const m = (p: string, v: string) => compileSafeRegex(p).test(v);
    expect(m('node-(1|2|3)', 'node-2')).toBe(true);
    expect(m('node-(1|2|3)', 'node-22')).toBe(false);
    expect(m('rack[0-9]{2}-h\\d+', 'rack07-h113')).toBe(true);
    expect(m('.*>.*', 'a->b')).toBe(true);
    expect(m('tcp;ofi_rxm|verbs;.*', 'verbs;ofi_rxm')).toBe(true);
    expect(m('', '')).toBe(true);
    expect(m('', 'x')).toBe(false);
    expect(m('a', 'a'.repeat(MAX_INPUT + 1))).toBe(false);
  });

  it('stays linear on patterns that make RegExp backtrack for minutes', () => {
    const cases: Array<[string, string]> = [
      ['(a+)+$', `${'a'.repeat(MAX_INPUT - 1)}b`],
      ['(a|a)*b', 'a'.repeat(MAX_INPUT)],
      ['(a*)*(a*)*(a*)*c', 'a'.repeat(MAX_INPUT)],
      ['(.*a){20}', 'a'.repeat(MAX_INPUT - 1)],
      ['((a|aa)+)+b', 'a'.repeat(MAX_INPUT)],
    ];
    for (const [p, v] of cases) {
      const r = compileSafeRegex(p);
      const t0 = performance.now();
      r.test(v);
      // A few ms here; RegExp needs ~36 s for the first case at 30 characters, and doubles per character.
      expect(performance.now() - t0, p).toBeLessThan(500);
    }
  });

  it('refuses what it cannot match in linear time, or at all, naming it and its position', () => {
    const refused: Array<[string, RegExp]> = [
      ['(a)\\1', /backreferences are not supported at position 3/],
      ['(?<n>a)\\k<n>', /named groups are not supported/],
      ['a(?=b)', /lookahead is not supported at position 1/],
      ['a(?!b)', /lookahead is not supported/],
      ['(?<=a)b', /lookbehind is not supported/],
      ['(?i)abc', /inline flags/],
      ['\\bword', /word boundaries/],
      ['a*+', /possessive/],
      ['a**', /a quantifier cannot follow another quantifier/],
      ['*a', /nothing to repeat/],
      ['a{1000}', /repetition counts above 100/],
      ['a{3,2}', /out of order/],
      ['(a', /missing '\)'/],
      ['a)', /unmatched '\)'/],
      ['[a', /missing '\]'/],
      ['[z-a]', /range out of order/],
      ['\\q', /unknown escape \\q/],
      ['a{', /'\{' must start a repetition/],
      ['x'.repeat(MAX_PATTERN_LENGTH + 1), /at most 256/],
      ['((a{1,50}){1,50})', new RegExp(`more than ${MAX_PROGRAM} steps`)],
      [`${'('.repeat(40)}a${')'.repeat(40)}`, /nested deeper than 32/],
    ];
    for (const [p, msg] of refused) {
      expect(() => compileSafeRegex(p), p).toThrow(RegexError);
      expect(() => compileSafeRegex(p), p).toThrow(msg);
    }
  });
});
