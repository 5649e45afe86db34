/**
 * RE2 patterns (Envoy's `safe_regex`) compiled once into JavaScript RegExps with the same meaning.
 *
 * The pattern is parsed as RE2 syntax and re-emitted as JavaScript source that uses no flags: case
 * folding becomes explicit ASCII classes, `.` becomes `[^\n]` (or `[^]` under `s`), `^`/`$` under `m`
 * become look-arounds, `\s` keeps RE2's ASCII meaning. What JavaScript would accept but RE2 rejects
 * (back-references, look-arounds, possessive quantifiers) is refused, as is what JavaScript cannot
 * express the same way (Unicode classes, non-ASCII characters inside classes).
 *
 * RE2 runs in linear time; V8's backtracking engine does not. Patterns whose shape can backtrack
 * exponentially are refused: a repetition may not contain another variable repetition unless each
 * iteration starts or ends with a character the inner repetition cannot match (e.g. `(/[^/]+)*`), and
 * alternatives inside a repetition must start with distinct characters. Polynomial cases such as
 * `\d*\d*x` remain possible; paths and header values are bounded in size, so they stay bounded in time.
 *
 * Text is matched as Node presents header bytes (latin1, one character per byte): a non-ASCII literal in
 * the pattern stands for its UTF-8 bytes.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { toWire } from './strings.ts';

export interface Re2Regex {
  /** The pattern as configured. */
  readonly source: string;
  /** Anchored at both ends: `full.test(s)` is RE2::FullMatch. */
  readonly full: RegExp;
  /** Global, for RE2::GlobalReplace. */
  readonly global: RegExp;
  /** Number of capturing groups. */
  readonly groups: number;
}

/** A compiled RE2 rewrite string: literal text and group numbers (0 = whole match). */
export type Substitution = readonly (string | number)[];

/** RE2's maximum repetition count. */
const MAX_REPEAT = 1000;

// ---- character sets over ASCII, plus "any non-ASCII character" ----

class CharSet {
  /** Bit c set ⇔ ASCII character c is in the set. */
  readonly bits = new Uint32Array(4);
  /** Whether characters above 0x7f are in the set. */
  high = false;

  add(c: number): void {
    this.bits[c >>> 5] |= 1 << (c & 31);
  }
  has(c: number): boolean {
    return (this.bits[c >>> 5] & (1 << (c & 31))) !== 0;
  }
  addRange(lo: number, hi: number): void {
    for (let c = lo; c <= hi; c++) this.add(c);
  }
  addSet(other: CharSet): void {
    for (let i = 0; i < 4; i++) this.bits[i] |= other.bits[i];
    this.high ||= other.high;
  }
  negate(): void {
    for (let i = 0; i < 4; i++) this.bits[i] = ~this.bits[i];
    this.high = !this.high;
  }
  overlaps(other: CharSet): boolean {
    if (this.high && other.high) return true;
    for (let i = 0; i < 4; i++) if ((this.bits[i] & other.bits[i]) !== 0) return true;
    return false;
  }
  foldCase(): void {
    for (let c = 65; c <= 90; c++) {
      if (this.has(c) || this.has(c + 32)) {
        this.add(c);
        this.add(c + 32);
      }
    }
  }
  isEmpty(): boolean {
    return !this.high && this.bits.every((w) => w === 0);
  }
}

function setOf(...ranges: [number, number][]): CharSet {
  const s = new CharSet();
  for (const [lo, hi] of ranges) s.addRange(lo, hi);
  return s;
}

const DIGIT: [number, number][] = [[48, 57]];
const WORD: [number, number][] = [
  [48, 57],
  [65, 90],
  [95, 95],
  [97, 122],
];
/** RE2's `\s`: [\t\n\f\r ] (no \v, no Unicode spaces). */
const SPACE: [number, number][] = [
  [9, 10],
  [12, 13],
  [32, 32],
];
const POSIX: Readonly<Record<string, [number, number][]>> = {
  alnum: [
    [48, 57],
    [65, 90],
    [97, 122],
  ],
  alpha: [
    [65, 90],
    [97, 122],
  ],
  ascii: [[0, 127]],
  blank: [
    [9, 9],
    [32, 32],
  ],
  cntrl: [
    [0, 31],
    [127, 127],
  ],
  digit: DIGIT,
  graph: [[33, 126]],
  lower: [[97, 122]],
  print: [[32, 126]],
  punct: [
    [33, 47],
    [58, 64],
    [91, 96],
    [123, 126],
  ],
  space: [
    [9, 13],
    [32, 32],
  ],
  upper: [[65, 90]],
  word: WORD,
  xdigit: [
    [48, 57],
    [65, 70],
    [97, 102],
  ],
};

// ---- syntax tree ----

type Node =
  | { readonly t: 'chars'; readonly set: CharSet; readonly src: string }
  | { readonly t: 'assert'; readonly src: string }
  | { readonly t: 'group'; readonly capture: boolean; readonly body: Node }
  | { readonly t: 'seq'; readonly items: readonly Node[] }
  | { readonly t: 'alt'; readonly alts: readonly Node[] }
  | {
      readonly t: 'repeat';
      readonly body: Node;
      readonly min: number;
      readonly max: number;
      readonly greedy: boolean;
    };

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  U: boolean;
}

function hex2(c: number): string {
  return c.toString(16).padStart(2, '0');
}

/** One character as JavaScript regex source, outside or inside a class. */
function emitChar(c: number, inClass: boolean): string {
  if (c < 0x20 || c === 0x7f || c > 0x7e) return `\\x${hex2(c)}`;
  const ch = String.fromCharCode(c);
  const special = inClass ? '\\]^-[' : '\\^$.|?*+()[]{}/';
  return special.includes(ch) ? `\\${ch}` : ch;
}

/** A character set as JavaScript source: a single escaped character or a class. */
function emitSet(set: CharSet): string {
  const negated = set.high;
  const ranges: [number, number][] = [];
  for (let c = 0; c < 128; c++) {
    if (set.has(c) === negated) continue;
    const lo = c;
    while (c + 1 < 128 && set.has(c + 1) !== negated) c++;
    ranges.push([lo, c]);
  }
  if (!negated && ranges.length === 1 && ranges[0][0] === ranges[0][1]) return emitChar(ranges[0][0], false);
  const body = ranges
    .map(([lo, hi]) =>
      lo === hi
        ? emitChar(lo, true)
        : hi === lo + 1
          ? emitChar(lo, true) + emitChar(hi, true)
          : `${emitChar(lo, true)}-${emitChar(hi, true)}`,
    )
    .join('');
  // A negated set means "anything except these ASCII characters" (non-ASCII included).
  return negated ? `[^${body}]` : `[${body}]`;
}

function charsNode(set: CharSet): Node {
  return { t: 'chars', set, src: emitSet(set) };
}

/** One byte (a non-ASCII literal is matched as its UTF-8 bytes). */
function byteNode(b: number): Node {
  const set = new CharSet();
  set.high = true; // for overlap analysis: "some non-ASCII character"
  return { t: 'chars', set, src: `\\x${hex2(b)}` };
}

// ---- parser ----

class Re2Parser {
  private pos = 0;
  private groupCount = 0;
  private readonly names = new Set<string>();
  private readonly pattern: string;
  private readonly path: string;

  constructor(pattern: string, path: string) {
    this.pattern = pattern;
    this.path = path;
  }

  get groups(): number {
    return this.groupCount;
  }

  fail(detail: string): never {
    throw new ConfigError(this.path, `invalid RE2 pattern ${JSON.stringify(this.pattern)}: ${detail}`);
  }

  refuse(detail: string): never {
    throw new ConfigError(this.path, `RE2 pattern ${JSON.stringify(this.pattern)}: ${detail}`);
  }

  parseAll(): Node {
    const node = this.parseAlt({ i: false, m: false, s: false, U: false }, 0);
    if (this.pos < this.pattern.length) this.fail(`unexpected ")" at offset ${this.pos}`);
    return node;
  }

  private peek(): string {
    return this.pattern[this.pos];
  }

  private parseAlt(outer: Flags, depth: number): Node {
    if (depth > 100) this.fail('nested too deeply');
    // `(?flags)` changes flags until the end of the enclosing group, across `|`, as in RE2.
    const flags = { ...outer };
    const alts: Node[] = [this.parseSeq(flags, depth)];
    while (this.peek() === '|') {
      this.pos++;
      alts.push(this.parseSeq(flags, depth));
    }
    return alts.length === 1 ? alts[0] : { t: 'alt', alts };
  }

  /** One alternative; `flags` is updated in place by `(?flags)` directives. */
  private parseSeq(flags: Flags, depth: number): Node {
    const items: Node[] = [];
    while (this.pos < this.pattern.length) {
      const ch = this.peek();
      if (ch === '|' || ch === ')') break;
      if (ch === '(' && this.tryFlagDirective(flags)) continue;
      const atom = this.parseAtom(flags, depth);
      items.push(this.parseRepeat(atom, flags));
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  /** Consumes `(?flags)` (not `(?flags:`), updating `flags`; false when the group is something else. */
  private tryFlagDirective(flags: Flags): boolean {
    const m = /^\(\?([imsU]*)(?:-([imsU]*))?\)/.exec(this.pattern.slice(this.pos));
    if (!m) return false;
    if (!m[1] && !m[2]) this.fail('empty flag group');
    this.pos += m[0].length;
    this.applyFlags(flags, m[1], m[2] ?? '');
    return true;
  }

  private applyFlags(flags: Flags, on: string, off: string): void {
    for (const f of on) flags[f as keyof Flags] = true;
    for (const f of off) flags[f as keyof Flags] = false;
  }

  private parseAtom(flags: Flags, depth: number): Node {
    const ch = this.peek();
    switch (ch) {
      case '(':
        return this.parseGroup(flags, depth);
      case '[':
        return this.parseClass(flags);
      case '.': {
        this.pos++;
        const set = new CharSet();
        if (!flags.s) set.add(10);
        set.negate();
        return charsNode(set);
      }
      case '^':
        this.pos++;
        return { t: 'assert', src: flags.m ? '(?<![^\\n])' : '^' };
      case '$':
        this.pos++;
        return { t: 'assert', src: flags.m ? '(?![^\\n])' : '$' };
      case '\\':
        return this.parseEscape(flags);
      case '*':
      case '+':
      case '?':
        this.fail(`missing argument to repetition operator "${ch}" at offset ${this.pos}`);
      // falls through (fail never returns)
      default:
        if (ch === '{' && this.repeatAt(this.pos) !== null)
          this.fail(`missing argument to repetition operator at offset ${this.pos}`);
        return this.literal(this.readCodePoint(), flags);
    }
  }

  private readCodePoint(): number {
    const cp = this.pattern.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  private literal(cp: number, flags: Flags): Node {
    if (cp < 0x80) {
      const set = new CharSet();
      set.add(cp);
      if (flags.i) set.foldCase();
      return charsNode(set);
    }
    const bytes = Buffer.from(String.fromCodePoint(cp), 'utf8');
    return { t: 'group', capture: false, body: { t: 'seq', items: [...bytes].map(byteNode) } };
  }

  private parseGroup(flags: Flags, depth: number): Node {
    const rest = this.pattern.slice(this.pos);
    if (
      rest.startsWith('(?=') ||
      rest.startsWith('(?!') ||
      rest.startsWith('(?<=') ||
      rest.startsWith('(?<!')
    ) {
      this.refuse('look-around assertions are not supported by RE2');
    }
    if (rest.startsWith('(?P=')) this.refuse('back-references are not supported by RE2');
    let capture = true;
    const inner = { ...flags };
    const named = /^\(\?P?<([A-Za-z0-9_]+)>/.exec(rest);
    if (named) {
      if (this.names.has(named[1])) this.fail(`duplicate capture group name "${named[1]}"`);
      this.names.add(named[1]);
      this.pos += named[0].length;
    } else if (rest.startsWith('(?')) {
      const m = /^\(\?([imsU]*)(?:-([imsU]*))?:/.exec(rest);
      if (!m) this.fail(`unsupported group syntax at offset ${this.pos}`);
      this.applyFlags(inner, m[1], m[2] ?? '');
      capture = false;
      this.pos += m[0].length;
    } else {
      this.pos++;
    }
    if (capture) this.groupCount++;
    const body = this.parseAlt(inner, depth + 1);
    if (this.peek() !== ')') this.fail('missing ")"');
    this.pos++;
    return { t: 'group', capture, body };
  }

  /** `{n}`, `{n,}` or `{n,m}` at `at`, or null when the brace is a literal (as in RE2). */
  private repeatAt(at: number): { min: number; max: number; length: number } | null {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.pattern.slice(at));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    return { min, max, length: m[0].length };
  }

  private parseRepeat(atom: Node, flags: Flags): Node {
    let node = atom;
    let repeated = false;
    for (;;) {
      const ch = this.peek();
      let min: number;
      let max: number;
      if (ch === '*' || ch === '+' || ch === '?') {
        min = ch === '+' ? 1 : 0;
        max = ch === '?' ? 1 : Infinity;
        this.pos++;
      } else if (ch === '{') {
        const r = this.repeatAt(this.pos);
        if (r === null) return node;
        if (r.min > MAX_REPEAT || (r.max !== Infinity && r.max > MAX_REPEAT))
          this.fail(`repetition count above ${MAX_REPEAT}`);
        if (r.max < r.min) this.fail(`bad repetition {${r.min},${r.max}}`);
        min = r.min;
        max = r.max;
        this.pos += r.length;
      } else {
        return node;
      }
      if (repeated) this.fail(`bad repetition operator at offset ${this.pos - 1}`);
      let greedy = true;
      if (this.peek() === '?') {
        greedy = false;
        this.pos++;
      }
      if (flags.U) greedy = !greedy;
      if (this.peek() === '+') this.refuse('possessive quantifiers are not supported by RE2');
      node = { t: 'repeat', body: node, min, max, greedy };
      repeated = true;
    }
  }

  private parseEscape(flags: Flags): Node {
    const at = this.pos;
    this.pos++; // backslash
    if (this.pos >= this.pattern.length) this.fail('trailing backslash');
    const c = this.peek();
    switch (c) {
      case 'A':
        this.pos++;
        return { t: 'assert', src: '(?<![^])' };
      case 'z':
        this.pos++;
        return { t: 'assert', src: '(?![^])' };
      case 'b':
        this.pos++;
        return { t: 'assert', src: '\\b' };
      case 'B':
        this.pos++;
        return { t: 'assert', src: '\\B' };
      case 'Q': {
        this.pos++;
        let end = this.pattern.indexOf('\\E', this.pos);
        if (end < 0) end = this.pattern.length;
        const items: Node[] = [];
        while (this.pos < end) items.push(this.literal(this.readCodePoint(), flags));
        this.pos = Math.min(end + 2, this.pattern.length);
        return { t: 'group', capture: false, body: { t: 'seq', items } };
      }
      default: {
        this.pos = at;
        const set = this.parseClassEscape();
        if (set === null) {
          const cp = this.parseCharEscape();
          return this.literal(cp, flags);
        }
        if (flags.i) set.foldCase();
        return charsNode(set);
      }
    }
  }

  /** `\d \D \w \W \s \S` at the current backslash, or null for other escapes (position unchanged). */
  private parseClassEscape(): CharSet | null {
    const c = this.pattern[this.pos + 1];
    if (c === 'p' || c === 'P') this.refuse('Unicode character classes (\\p, \\P) are not supported by Weft');
    if (c === 'C') this.refuse('\\C (any byte) is not supported by Weft');
    const lower = c.toLowerCase();
    const ranges = lower === 'd' ? DIGIT : lower === 'w' ? WORD : lower === 's' ? SPACE : null;
    if (ranges === null) return null;
    this.pos += 2;
    const set = setOf(...ranges);
    if (c !== lower) set.negate();
    return set;
  }

  /** A single-character escape at the current backslash; returns its code point. */
  private parseCharEscape(): number {
    this.pos++; // backslash
    const c = this.pattern[this.pos];
    const simple: Readonly<Record<string, number>> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
    if (Object.hasOwn(simple, c)) {
      this.pos++;
      return simple[c];
    }
    if (c === 'x') {
      this.pos++;
      const braced = /^\{([0-9A-Fa-f]{1,6})\}/.exec(this.pattern.slice(this.pos));
      if (braced) {
        this.pos += braced[0].length;
        const cp = parseInt(braced[1], 16);
        if (cp > 0x10ffff) this.fail('\\x{...} escape out of range');
        return cp;
      }
      const two = /^[0-9A-Fa-f]{2}/.exec(this.pattern.slice(this.pos));
      if (!two) this.fail(`invalid \\x escape at offset ${this.pos - 2}`);
      this.pos += 2;
      return parseInt(two[0], 16);
    }
    if (c >= '0' && c <= '7') {
      // RE2: \0 or \1-\7 followed by another octal digit is an octal escape; a lone \1-\9 is a back-reference.
      const oct = /^[0-7]{1,3}/.exec(this.pattern.slice(this.pos))![0];
      if (c !== '0' && oct.length === 1) this.refuse('back-references are not supported by RE2');
      this.pos += oct.length;
      return parseInt(oct, 8);
    }
    if (c === '8' || c === '9') this.refuse('back-references are not supported by RE2');
    if (/[A-Za-z0-9]/.test(c)) this.fail(`invalid escape \\${c}`);
    // Escaped punctuation (or any other non-word character) is the character itself.
    return this.readCodePoint();
  }

  private parseClass(flags: Flags): Node {
    const start = this.pos;
    this.pos++; // [
    const set = new CharSet();
    let negated = false;
    if (this.peek() === '^') {
      negated = true;
      this.pos++;
    }
    let first = true;
    for (;;) {
      if (this.pos >= this.pattern.length) this.fail(`missing "]" for class at offset ${start}`);
      const ch = this.peek();
      if (ch === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      if (ch === '[' && this.pattern[this.pos + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(this.pattern.slice(this.pos));
        if (m) {
          const ranges = POSIX[m[2]];
          if (!ranges) this.fail(`unknown POSIX class [:${m[2]}:]`);
          const posix = setOf(...ranges);
          if (m[1]) posix.negate();
          set.addSet(posix);
          this.pos += m[0].length;
          continue;
        }
      }
      if (ch === '\\') {
        const cls = this.parseClassEscape();
        if (cls !== null) {
          // Inside a class only the ASCII part can be expressed; negated shorthands add all non-ASCII too.
          set.addSet(cls);
          continue;
        }
      }
      const lo = this.classChar();
      if (this.peek() === '-' && this.pattern[this.pos + 1] !== ']' && this.pos + 1 < this.pattern.length) {
        this.pos++;
        const hi = this.classChar();
        if (hi < lo) this.fail(`bad character class range at offset ${start}`);
        set.addRange(lo, hi);
      } else {
        set.add(lo);
      }
    }
    if (flags.i) set.foldCase();
    if (negated) set.negate();
    return charsNode(set);
  }

  /** One (possibly escaped) ASCII character inside a class. */
  private classChar(): number {
    const cp = this.peek() === '\\' ? this.parseCharEscape() : this.readCodePoint();
    if (cp > 0x7f) this.refuse('non-ASCII characters inside character classes are not supported by Weft');
    return cp;
  }
}

// ---- safety analysis ----

interface First {
  readonly set: CharSet;
  readonly nullable: boolean;
}

/** The characters a match of `node` can begin with, and whether it can match the empty string. */
function firstOf(node: Node): First {
  switch (node.t) {
    case 'chars':
      return { set: node.set, nullable: false };
    case 'assert':
      return { set: new CharSet(), nullable: true };
    case 'group':
      return firstOf(node.body);
    case 'repeat': {
      const f = firstOf(node.body);
      return { set: f.set, nullable: f.nullable || node.min === 0 };
    }
    case 'alt': {
      const set = new CharSet();
      let nullable = false;
      for (const a of node.alts) {
        const f = firstOf(a);
        set.addSet(f.set);
        nullable ||= f.nullable;
      }
      return { set, nullable };
    }
    case 'seq': {
      const set = new CharSet();
      for (const item of node.items) {
        const f = firstOf(item);
        set.addSet(f.set);
        if (!f.nullable) return { set, nullable: false };
      }
      return { set, nullable: true };
    }
  }
}

/** Every character any variable-count repetition inside `node` can consume, or null when there is none. */
function variableRepeatChars(node: Node): CharSet | null {
  let out: CharSet | null = null;
  const visit = (n: Node, inVariable: boolean): void => {
    switch (n.t) {
      case 'chars':
        if (inVariable) (out ??= new CharSet()).addSet(n.set);
        return;
      case 'assert':
        return;
      case 'group':
        visit(n.body, inVariable);
        return;
      case 'repeat': {
        const variable = n.max > n.min;
        if (variable) out ??= new CharSet();
        visit(n.body, inVariable || variable);
        return;
      }
      case 'alt':
        for (const a of n.alts) visit(a, inVariable);
        return;
      case 'seq':
        for (const i of n.items) visit(i, inVariable);
        return;
    }
  };
  visit(node, false);
  return out;
}

/** The single fixed character that `node` always starts (or ends) with, if it has one. */
function delimiter(node: Node, atEnd: boolean): CharSet | null {
  let n = node;
  for (;;) {
    if (n.t === 'chars') return n.set;
    if (n.t === 'group') n = n.body;
    else if (n.t === 'seq' && n.items.length > 0) n = n.items[atEnd ? n.items.length - 1 : 0];
    else return null;
  }
}

function checkBacktracking(node: Node, refuse: (detail: string) => never): void {
  const visit = (n: Node, underRepeat: boolean): void => {
    switch (n.t) {
      case 'chars':
      case 'assert':
        return;
      case 'group':
        visit(n.body, underRepeat);
        return;
      case 'seq':
        for (const i of n.items) visit(i, underRepeat);
        return;
      case 'alt': {
        if (underRepeat) {
          const firsts = n.alts.map(firstOf);
          for (let a = 0; a < firsts.length; a++) {
            if (firsts[a].nullable)
              refuse(
                'an alternative inside a repetition can match the empty string (exponential backtracking risk)',
              );
            for (let b = a + 1; b < firsts.length; b++) {
              if (firsts[a].set.overlaps(firsts[b].set)) {
                refuse(
                  'alternatives inside a repetition start with the same character (exponential backtracking risk)',
                );
              }
            }
          }
        }
        for (const a of n.alts) visit(a, underRepeat);
        return;
      }
      case 'repeat': {
        const repeats = n.max > 1;
        if (repeats) {
          const inner = variableRepeatChars(n.body);
          if (inner !== null) {
            const head = delimiter(n.body, false);
            const tail = delimiter(n.body, true);
            const delimited =
              (head !== null && !head.overlaps(inner)) || (tail !== null && !tail.overlaps(inner));
            if (!delimited)
              refuse(
                'nested repetition (exponential backtracking risk); separate iterations with a character the inner repetition cannot match, e.g. (/[^/]+)*',
              );
          }
        }
        visit(n.body, underRepeat || repeats);
        return;
      }
    }
  };
  visit(node, false);
}

// ---- emission ----

function emit(node: Node): string {
  switch (node.t) {
    case 'chars':
    case 'assert':
      return node.src;
    case 'group':
      return node.capture ? `(${emit(node.body)})` : `(?:${emit(node.body)})`;
    case 'seq':
      return node.items.map((i) => (i.t === 'alt' ? `(?:${emit(i)})` : emit(i))).join('');
    case 'alt':
      return node.alts.map(emit).join('|');
    case 'repeat': {
      const body =
        node.body.t === 'chars' || node.body.t === 'group' ? emit(node.body) : `(?:${emit(node.body)})`;
      const count =
        node.min === 0 && node.max === Infinity
          ? '*'
          : node.min === 1 && node.max === Infinity
            ? '+'
            : node.min === 0 && node.max === 1
              ? '?'
              : node.max === Infinity
                ? `{${node.min},}`
                : node.min === node.max
                  ? `{${node.min}}`
                  : `{${node.min},${node.max}}`;
      return `${body}${count}${node.greedy ? '' : '?'}`;
    }
  }
}

/** Compiles an RE2 pattern, or throws a ConfigError naming `path`. */
export function compileRe2(pattern: string, path: string): Re2Regex {
  if (pattern.length === 0) throw new ConfigError(path, 'regex must not be empty');
  const parser = new Re2Parser(pattern, path);
  const tree = parser.parseAll();
  checkBacktracking(tree, (detail) => parser.refuse(detail));
  const src = emit(tree);
  let full: RegExp;
  let global: RegExp;
  try {
    full = new RegExp(`^(?:${src})$`);
    global = new RegExp(src, 'g');
  } catch (err) {
    // The emitter only produces valid syntax; this guards against a bug turning into a crash later.
    throw new ConfigError(
      path,
      `cannot compile RE2 pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`,
    );
  }
  return { source: pattern, full, global, groups: parser.groups };
}

/** An envoy.type.matcher.v3.RegexMatcher message ({regex, google_re2}) compiled. */
export function compileRegexMatcher(json: Json | undefined, path: string): Re2Regex {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['regex', 'google_re2'], refused: {} });
  const re2 = optObject(obj, 'google_re2', path);
  if (re2)
    checkFields(re2, fieldPath(path, 'google_re2'), { supported: [], refused: { max_program_size: null } });
  const regex = optString(obj, 'regex', path);
  if (!regex) throw new ConfigError(fieldPath(path, 'regex'), 'required');
  return compileRe2(regex, fieldPath(path, 'regex'));
}

/** An envoy.type.matcher.v3.RegexMatchAndSubstitute message ({pattern, substitution}) compiled. */
export function compileRegexRewrite(
  json: Json | undefined,
  path: string,
): { regex: Re2Regex; substitution: Substitution } {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['pattern', 'substitution'], refused: {} });
  if (obj.pattern === undefined || obj.pattern === null)
    throw new ConfigError(fieldPath(path, 'pattern'), 'required');
  const regex = compileRegexMatcher(obj.pattern, fieldPath(path, 'pattern'));
  const substitution = compileSubstitution(
    toWire(optString(obj, 'substitution', path) ?? ''),
    regex.groups,
    fieldPath(path, 'substitution'),
  );
  return { regex, substitution };
}

/**
 * Compiles an RE2 rewrite string: `\0`..`\9` insert a group, `\\` a backslash; anything else after a
 * backslash, or a group the pattern does not have, is an error (RE2's CheckRewriteString).
 */
export function compileSubstitution(sub: string, groups: number, path: string): Substitution {
  const parts: (string | number)[] = [];
  let text = '';
  for (let i = 0; i < sub.length; i++) {
    const ch = sub[i];
    if (ch !== '\\') {
      text += ch;
      continue;
    }
    const next = sub[++i];
    if (next === '\\') {
      text += '\\';
    } else if (next !== undefined && next >= '0' && next <= '9') {
      const n = Number(next);
      if (n > groups)
        throw new ConfigError(
          path,
          `substitution refers to group \\${n} but the pattern has ${groups} capturing group(s)`,
        );
      if (text) parts.push(text);
      text = '';
      parts.push(n);
    } else {
      throw new ConfigError(
        path,
        `invalid substitution ${JSON.stringify(sub)}: a backslash must be followed by a digit or another backslash`,
      );
    }
  }
  if (text) parts.push(text);
  return parts;
}

function expand(sub: Substitution, m: RegExpExecArray): string {
  let out = '';
  for (const part of sub) out += typeof part === 'string' ? part : (m[part] ?? '');
  return out;
}

/**
 * RE2::GlobalReplace: replaces every non-overlapping match, left to right. An empty match right where the
 * previous match ended is skipped (JavaScript's String#replace would replace it).
 */
export function replaceAll(re: Re2Regex, input: string, sub: Substitution): string {
  const g = re.global;
  let out = '';
  let copied = 0;
  let lastEnd = -1;
  let pos = 0;
  while (pos <= input.length) {
    g.lastIndex = pos;
    const m = g.exec(input);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    if (start === end && start === lastEnd) {
      pos = start + 1;
      continue;
    }
    out += input.slice(copied, start) + expand(sub, m);
    copied = end;
    lastEnd = end;
    pos = end === start ? end + 1 : end;
  }
  g.lastIndex = 0;
  if (copied === 0 && lastEnd === -1) return input;
  return out + input.slice(copied);
}
