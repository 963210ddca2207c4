/**
 * A linear-time regular-expression matcher for silence matchers (operator-written patterns run against
 * label values that agents choose). JavaScript's RegExp backtracks: `(a+)+$` against 30 a's and a b takes
 * tens of seconds and pins the event loop. This one parses a safe subset itself, compiles it to a small
 * Thompson-NFA program and runs it as a Pike VM: every input character advances a set of at most
 * `program.length` threads once, so a match costs O(input length × program length), whatever the pattern.
 *
 * Supported (JavaScript syntax and meaning, without flags): literals, `.`, character classes (`[a-z]`,
 * `[^…]`, `\d \D \w \W \s \S`, escapes), `* + ?` (a trailing `?` — lazy — is accepted: it cannot change
 * whether a whole string matches), `{n}`, `{n,}`, `{n,m}` (n, m ≤ 100), alternation `|`, groups `(…)` and
 * `(?:…)`, anchors `^ $`. Refused with a message naming the construct and its position: backreferences,
 * lookahead/lookbehind, named groups, inline flags, word boundaries, possessive quantifiers.
 *
 * Matching is always of the whole value (as `^(?:pattern)$`, the Alertmanager convention the hub used).
 * Bounds: pattern ≤ MAX_PATTERN_LENGTH characters, ≤ MAX_PROGRAM instructions after expanding counted
 * repetition, group nesting ≤ MAX_DEPTH; values longer than MAX_INPUT never match a regex matcher.
 */

export const MAX_PATTERN_LENGTH = 256;
export const MAX_PROGRAM = 1000;
export const MAX_REPEAT = 100;
export const MAX_DEPTH = 32;
export const MAX_INPUT = 256;

export class RegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegexError';
  }
}

/** Inclusive UTF-16 code-unit ranges. */
type Ranges = Array<[number, number]>;

type Node =
  | { t: 'empty' }
  | { t: 'set'; ranges: Ranges; negate: boolean }
  | { t: 'bol' }
  | { t: 'eol' }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'rep'; item: Node; min: number; max: number };

const INF = -1;
const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** JavaScript's \s: WhiteSpace and LineTerminator. */
const SPACE: Ranges = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
/** What `.` does not match without the s flag. */
const LINE_TERMINATORS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];

function complement(r: Ranges): Ranges {
  const sorted = [...r].sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

const SIMPLE_ESCAPES: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13, '0': 0 };

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly src: string) {}

  private fail(what: string, at = this.i): never {
    throw new RegexError(`${what} at position ${at}`);
  }

  parse(): Node {
    const n = this.alt();
    if (this.i < this.src.length) {
      // Only an unbalanced ')' stops alt() early.
      this.fail("unmatched ')'");
    }
    return n;
  }

  private peek(): string | undefined {
    return this.src[this.i];
  }

  private alt(): Node {
    const items = [this.cat()];
    while (this.peek() === '|') {
      this.i++;
      items.push(this.cat());
    }
    return items.length === 1 ? items[0]! : { t: 'alt', items };
  }

  private cat(): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      items.push(this.repeat());
    }
    if (items.length === 0) return { t: 'empty' };
    return items.length === 1 ? items[0]! : { t: 'cat', items };
  }

  private repeat(): Node {
    const start = this.i;
    let node = this.atom();
    let quantified = false;
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*' || c === '+' || c === '?') {
        this.i++;
        min = c === '+' ? 1 : 0;
        max = c === '?' ? 1 : INF;
      } else if (c === '{' && this.isBraceQuantifier()) {
        [min, max] = this.braces();
      } else break;
      if (quantified) this.fail('a quantifier cannot follow another quantifier', this.i - 1);
      if (node.t === 'bol' || node.t === 'eol') this.fail('an anchor cannot be repeated', start);
      quantified = true;
      if (this.peek() === '?')
        this.i++; // lazy: same verdict for a whole-string match
      else if (this.peek() === '+') this.fail('possessive quantifiers are not supported');
      node = { t: 'rep', item: node, min, max };
      // `a{2}{3}`, `a*?+`: refused by the check at the top of the next round.
    }
    return node;
  }

  private isBraceQuantifier(): boolean {
    return /^\{\d+(,\d*)?\}/.test(this.src.slice(this.i, this.i + 12));
  }

  private braces(): [number, number] {
    const at = this.i;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i, this.i + 12))!;
    this.i += m[0].length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? INF : Number(m[3]);
    if (min > MAX_REPEAT || (max !== INF && max > MAX_REPEAT)) {
      this.fail(`repetition counts above ${MAX_REPEAT} are not supported`, at);
    }
    if (max !== INF && max < min) this.fail(`numbers out of order in {${min},${max}}`, at);
    return [min, max];
  }

  private atom(): Node {
    const at = this.i;
    const c = this.src[this.i++]!;
    switch (c) {
      case '(':
        return this.group(at);
      case '[':
        return this.charClass(at);
      case '.':
        return { t: 'set', ranges: LINE_TERMINATORS, negate: true };
      case '^':
        return { t: 'bol' };
      case '$':
        return { t: 'eol' };
      case '\\':
        return this.escape(at);
      case '*':
      case '+':
      case '?':
        return this.fail(`nothing to repeat before '${c}'`, at);
      case '{':
        return this.fail("'{' must start a repetition {n}, {n,} or {n,m}; write \\{ for a literal brace", at);
      default: {
        const code = c.charCodeAt(0);
        return { t: 'set', ranges: [[code, code]], negate: false };
      }
    }
  }

  private group(at: number): Node {
    if (++this.depth > MAX_DEPTH) this.fail(`groups nested deeper than ${MAX_DEPTH}`, at);
    if (this.peek() === '?') {
      const next = this.src[this.i + 1];
      const next2 = this.src[this.i + 2];
      if (next === ':') this.i += 2;
      else if (next === '=' || next === '!') this.fail('lookahead is not supported', at);
      else if (next === '<' && (next2 === '=' || next2 === '!')) this.fail('lookbehind is not supported', at);
      else if (next === '<' || next === 'P')
        this.fail('named groups are not supported; use (…) or (?:…)', at);
      else this.fail('inline flags and (?…) extensions are not supported', at);
    }
    const inner = this.alt();
    if (this.peek() !== ')') this.fail("missing ')'", at);
    this.i++;
    this.depth--;
    return inner;
  }

  /** An escape outside a class. */
  private escape(at: number): Node {
    const c = this.src[this.i++];
    if (c === undefined) this.fail('\\ at the end of the pattern', at);
    if (c >= '1' && c <= '9') this.fail('backreferences are not supported', at);
    if (c === 'k' && this.peek() === '<') this.fail('backreferences are not supported', at);
    if (c === 'b' || c === 'B') this.fail('word boundaries (\\b, \\B) are not supported', at);
    return this.escapeSet(c, at);
  }

  /** An escape (after the backslash) that stands for a set of characters. */
  private escapeSet(c: string, at: number): Node & { t: 'set' } {
    switch (c) {
      case 'd':
        return { t: 'set', ranges: DIGIT, negate: false };
      case 'D':
        return { t: 'set', ranges: DIGIT, negate: true };
      case 'w':
        return { t: 'set', ranges: WORD, negate: false };
      case 'W':
        return { t: 'set', ranges: WORD, negate: true };
      case 's':
        return { t: 'set', ranges: SPACE, negate: false };
      case 'S':
        return { t: 'set', ranges: SPACE, negate: true };
      default: {
        const code = this.escapeChar(c, at);
        return { t: 'set', ranges: [[code, code]], negate: false };
      }
    }
  }

  /** A single-character escape: \t \n …, \xHH, \uHHHH, or escaped punctuation. */
  private escapeChar(c: string, at: number): number {
    if (c in SIMPLE_ESCAPES) {
      if (c === '0' && /[0-9]/.test(this.peek() ?? '')) this.fail('octal escapes are not supported', at);
      return SIMPLE_ESCAPES[c]!;
    }
    if (c === 'x' || c === 'u') {
      const n = c === 'x' ? 2 : 4;
      const hex = this.src.slice(this.i, this.i + n);
      if (hex.length !== n || !/^[0-9A-Fa-f]+$/.test(hex)) {
        this.fail(`\\${c} needs ${n} hex digits`, at);
      }
      this.i += n;
      return Number.parseInt(hex, 16);
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`unknown escape \\${c}`, at);
    return c.charCodeAt(0);
  }

  private charClass(at: number): Node {
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.i++;
    }
    const ranges: Ranges = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("missing ']'", at);
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      if (c === ']' && first) {
        // `[]` matches nothing and `[^]` anything in JavaScript: too surprising in a silence.
        this.fail("empty character class '[]'", at);
      }
      first = false;
      const lo = this.classAtom();
      if (this.peek() === '-' && this.src[this.i + 1] !== ']' && this.src[this.i + 1] !== undefined) {
        const dash = this.i;
        this.i++;
        const hi = this.classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') {
          this.fail('a range cannot start or end with a class escape such as \\d', dash);
        }
        if (hi < lo) this.fail('range out of order in character class', dash);
        ranges.push([lo, hi]);
      } else if (typeof lo === 'number') ranges.push([lo, lo]);
      else ranges.push(...(lo.negate ? complement(lo.ranges) : lo.ranges));
    }
    return { t: 'set', ranges, negate };
  }

  /** One class member: a code unit, or a class escape (\d …) as a set. */
  private classAtom(): number | (Node & { t: 'set' }) {
    const at = this.i;
    const c = this.src[this.i++]!;
    if (c !== '\\') return c.charCodeAt(0);
    const e = this.src[this.i++];
    if (e === undefined) this.fail('\\ at the end of the pattern', at);
    if (e === 'b') return 8; // backspace inside a class, as in JavaScript
    if (e === '-') return 0x2d;
    if (e >= '1' && e <= '9') this.fail('backreferences are not supported', at);
    if ('dDwWsS'.includes(e)) return this.escapeSet(e, at);
    return this.escapeChar(e, at);
  }
}

// ───────────────────────────── program ─────────────────────────────

const Op = { Set: 0, Split: 1, Jmp: 2, Bol: 3, Eol: 4, Match: 5 } as const;
type Op = (typeof Op)[keyof typeof Op];

interface Inst {
  op: Op;
  /** Split: first and second target; Jmp: x. */
  x: number;
  y: number;
  ranges: Ranges;
  negate: boolean;
}

class Compiler {
  readonly prog: Inst[] = [];

  private emit(op: Op, x = 0, y = 0, ranges: Ranges = [], negate = false): number {
    if (this.prog.length >= MAX_PROGRAM) {
      throw new RegexError(
        `pattern too large: more than ${MAX_PROGRAM} steps once repetitions are expanded; use smaller {n,m} counts`,
      );
    }
    this.prog.push({ op, x, y, ranges, negate });
    return this.prog.length - 1;
  }

  compile(n: Node): void {
    switch (n.t) {
      case 'empty':
        return;
      case 'set':
        this.emit(Op.Set, 0, 0, n.ranges, n.negate);
        return;
      case 'bol':
        this.emit(Op.Bol);
        return;
      case 'eol':
        this.emit(Op.Eol);
        return;
      case 'cat':
        for (const it of n.items) this.compile(it);
        return;
      case 'alt': {
        // split L1, next; L1: a; jmp end; next: split L2, … ; last alternative falls through.
        const jumps: number[] = [];
        for (let k = 0; k < n.items.length; k++) {
          if (k < n.items.length - 1) {
            const split = this.emit(Op.Split);
            this.prog[split]!.x = this.prog.length;
            this.compile(n.items[k]!);
            jumps.push(this.emit(Op.Jmp));
            this.prog[split]!.y = this.prog.length;
          } else this.compile(n.items[k]!);
        }
        for (const j of jumps) this.prog[j]!.x = this.prog.length;
        return;
      }
      case 'rep': {
        for (let k = 0; k < n.min; k++) this.compile(n.item);
        if (n.max === INF) {
          // L: split body, end; body; jmp L
          const split = this.emit(Op.Split);
          this.prog[split]!.x = this.prog.length;
          this.compile(n.item);
          this.emit(Op.Jmp, split);
          this.prog[split]!.y = this.prog.length;
        } else {
          // (max − min) nested optionals: split body, end; body; split body, end; …
          const splits: number[] = [];
          for (let k = n.min; k < n.max; k++) {
            const split = this.emit(Op.Split);
            this.prog[split]!.x = this.prog.length;
            splits.push(split);
            this.compile(n.item);
          }
          for (const s of splits) this.prog[s]!.y = this.prog.length;
        }
        return;
      }
    }
  }
}

function inSet(inst: Inst, code: number): boolean {
  let hit = false;
  for (const [lo, hi] of inst.ranges) {
    if (code >= lo && code <= hi) {
      hit = true;
      break;
    }
  }
  return hit !== inst.negate;
}

export interface SafeRegex {
  readonly source: string;
  /** Program length (instructions): the per-character cost bound. */
  readonly size: number;
  /** Whole-string match (`^(?:source)$`). Linear in the input; values over MAX_INPUT never match. */
  test(value: string): boolean;
}

const CACHE_MAX = 1024;

/** Compiles `pattern`; throws RegexError naming what is not supported or malformed, and where. */
export function compileSafeRegex(pattern: string): SafeRegex {
  if (typeof pattern !== 'string') throw new RegexError('pattern must be a string');
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new RegexError(`pattern is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH}`);
  }
  const ast = new Parser(pattern).parse();
  const c = new Compiler();
  c.compile(ast);
  // The match instruction (the compiler's own limit applies to it too).
  c.prog.push({ op: Op.Match, x: 0, y: 0, ranges: [], negate: false });
  const prog = c.prog;
  const m = prog.length;
  // Thread lists: sparse sets stamped with a generation (no clearing per step).
  let cur = new Int32Array(m);
  let nxt = new Int32Array(m);
  const mark = new Uint32Array(m);
  const stack = new Int32Array(m * 2 + 2);
  let gen = 0;
  const cache = new Map<string, boolean>();
  const bump = () => {
    gen = (gen + 1) >>> 0;
    if (gen === 0) {
      mark.fill(0);
      gen = 1;
    }
  };

  /** Adds pc and everything reachable from it without consuming input, at position `pos` of `len`. */
  const add = (list: Int32Array, size: number, pc0: number, pos: number, len: number): number => {
    let sp = 0;
    stack[sp++] = pc0;
    let n = size;
    while (sp > 0) {
      const pc = stack[--sp]!;
      if (mark[pc] === gen) continue;
      mark[pc] = gen;
      const inst = prog[pc]!;
      switch (inst.op) {
        case Op.Jmp:
          stack[sp++] = inst.x;
          break;
        case Op.Split:
          // y first so x is explored first (order does not matter for a yes/no answer).
          stack[sp++] = inst.y;
          stack[sp++] = inst.x;
          break;
        case Op.Bol:
          if (pos === 0) stack[sp++] = pc + 1;
          break;
        case Op.Eol:
          if (pos === len) stack[sp++] = pc + 1;
          break;
        default:
          list[n++] = pc;
      }
    }
    return n;
  };

  const run = (s: string): boolean => {
    const len = s.length;
    bump();
    let curSize = add(cur, 0, 0, 0, len);
    for (let i = 0; i <= len; i++) {
      if (curSize === 0) return false;
      if (i === len) {
        for (let k = 0; k < curSize; k++) if (prog[cur[k]!]!.op === Op.Match) return true;
        return false;
      }
      const code = s.charCodeAt(i);
      bump();
      let nxtSize = 0;
      for (let k = 0; k < curSize; k++) {
        const pc = cur[k]!;
        const inst = prog[pc]!;
        if (inst.op === Op.Set && inSet(inst, code)) nxtSize = add(nxt, nxtSize, pc + 1, i + 1, len);
      }
      const t = cur;
      cur = nxt;
      nxt = t;
      curSize = nxtSize;
    }
    return false;
  };

  return {
    source: pattern,
    size: m,
    test(value: string): boolean {
      if (typeof value !== 'string' || value.length > MAX_INPUT) return false;
      const hit = cache.get(value);
      if (hit !== undefined) return hit;
      const r = run(value);
      // Label values of active alerts repeat every evaluation: remember verdicts (bounded).
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(value, r);
      return r;
    },
  };
}
