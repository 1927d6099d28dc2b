// Kubernetes label selectors in their query-parameter form: a port of k8s.io/apimachinery pkg/labels/selector.go
// (Parse, NewRequirement, Requirement.Matches, String) and metav1.ParseToLabelSelector. Error messages follow
// apimachinery v0.35+ (validation moved to pkg/api/validate/content: "... bytes", "a valid label key ...").

/** Requirement operators, spelled as Go's selection.Operator values (`!` is DoesNotExist). */
export type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

/** One parsed requirement; `values` is sorted and de-duplicated (Go's sets.String.List()). */
export interface Requirement {
  readonly key: string;
  readonly operator: Operator;
  readonly values: readonly string[];
}

/** JSON shape of a metav1.LabelSelector (both fields omitempty). */
export interface LabelSelectorJson {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** A parsed, precompiled label selector. */
export interface Selector {
  /** Sorted by key (stable), like Go's sort.Sort(ByKey). */
  readonly requirements: readonly Requirement[];
  /** True when there are no requirements (matches everything). */
  readonly empty: boolean;
  /** Whether every requirement matches these labels. */
  matches(labels: Readonly<Record<string, string>>): boolean;
  /** Go String() normal form, e.g. "env=prod,queue=orders". */
  toString(): string;
  /**
   * metav1.ParseToLabelSelector equivalent; null when empty. `!=` becomes NotIn with its one value (Go refuses it);
   * gt/lt throw SelectorError like Go (`"gt" isn't supported in label selectors`).
   */
  toLabelSelector(): LabelSelectorJson | null;
}

/** A selector that does not parse; the message is Go's. */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

// ---- lexer (Lexer.Lex): the whole input is tokenized up front, like Parser.scan ----

type Tok = 'id' | 'in' | 'notin' | '!' | '=' | '==' | '!=' | '>' | '<' | '(' | ')' | ',' | 'eos';
interface Token { tok: Tok; lit: string }

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isSpecial = (c: string) => c === '=' || c === '!' || c === '(' || c === ')' || c === ',' || c === '>' || c === '<';

function lex(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && isSpace(s[i]!)) i++;
    // Go reads a NUL byte as end of input when it starts a token.
    if (i >= s.length || s[i] === '\0') {
      out.push({ tok: 'eos', lit: '' });
      return out;
    }
    let lit: string;
    if (isSpecial(s[i]!)) {
      const two = s.slice(i, i + 2);
      lit = two === '==' || two === '!=' ? two : s[i]!;
      out.push({ tok: lit as Tok, lit });
    } else {
      let j = i;
      while (j < s.length && s[j] !== '\0' && !isSpace(s[j]!) && !isSpecial(s[j]!)) j++;
      lit = s.slice(i, j);
      out.push({ tok: lit === 'in' || lit === 'notin' ? lit : 'id', lit });
    }
    i += lit.length;
    // ...and swallows a NUL byte that ends a token.
    if (s[i] === '\0') i++;
  }
}

// ---- parser (Parser.parse and friends); throws plain Errors that parseSelector wraps ----

class Parser {
  private pos = 0;
  constructor(private readonly items: Token[]) {}

  /** Current token; in the Values context `in`/`notin` are identifiers. */
  lookahead(values = true): Token {
    const t = this.items[this.pos]!;
    return values && (t.tok === 'in' || t.tok === 'notin') ? { tok: 'id', lit: t.lit } : t;
  }

  consume(values = true): Token {
    const t = this.lookahead(values);
    this.pos++;
    return t;
  }
}

const BINARY_OPS: Partial<Record<Tok, Operator>> = { in: 'in', notin: 'notin', '=': '=', '==': '==', '!=': '!=', '>': 'gt', '<': 'lt' };

/**
 * Parses a label selector in the query-parameter form of `labels.Parse`: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
 * `k notin (a,b)`, `k`, `!k`, `k>5`, `k<5`, comma-separated. "" (or whitespace) is the empty selector.
 * Throws SelectorError with Go's message, e.g. `unable to parse requirement: found '(', expected: identifier`.
 */
export function parseSelector(input: string): Selector {
  const p = new Parser(lex(input));
  const reqs: Requirement[] = [];
  for (;;) {
    const t = p.lookahead();
    if (t.tok === 'eos') break;
    if (t.tok !== 'id' && t.tok !== '!') throw new SelectorError(`found '${t.lit}', expected: !, identifier, or 'end of string'`);
    try {
      reqs.push(parseRequirement(p));
    } catch (err) {
      throw new SelectorError(`unable to parse requirement: ${(err as Error).message}`);
    }
    const next = p.consume();
    if (next.tok === 'eos') break;
    if (next.tok !== ',') throw new SelectorError(`found '${next.lit}', expected: ',' or 'end of string'`);
    const after = p.lookahead();
    if (after.tok !== 'id' && after.tok !== '!') throw new SelectorError(`found '${after.lit}', expected: identifier after ','`);
  }
  reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return compile(reqs);
}

function parseRequirement(p: Parser): Requirement {
  // parseKeyAndInferOperator
  let t = p.consume();
  const negated = t.tok === '!';
  if (negated) t = p.consume();
  if (t.tok !== 'id') throw new Error(`found '${t.lit}', expected: identifier`);
  const key = t.lit;
  const keyErrs = labelKeyErrors(key);
  // Go validates with the parser's nil *field.Path, hence "<nil>".
  if (keyErrs.length > 0) throw new Error(`<nil>: Invalid value: ${goQuote(key)}: ${keyErrs.join('; ')}`);
  const after = p.lookahead().tok;
  // NOTE: like Go, `!k` ends the requirement whatever follows; the caller then reports the stray token.
  if (negated) return requirement(key, '!', new Set());
  if (after === 'eos' || after === ',') return requirement(key, 'exists', new Set());
  // parseOperator
  const o = p.consume(false);
  const op = BINARY_OPS[o.tok];
  if (!op) throw new Error(`found '${o.lit}', expected: in, notin, =, ==, !=, gt, lt`);
  return requirement(key, op, op === 'in' || op === 'notin' ? parseValues(p) : parseExactValue(p));
}

/** `(a,b,…)`; empty members are the empty string, and `()` is {""}. */
function parseValues(p: Parser): Set<string> {
  const open = p.consume();
  if (open.tok !== '(') throw new Error(`found '${open.lit}' expected: '('`);
  const first = p.lookahead();
  if (first.tok === ')') {
    p.consume();
    return new Set(['']);
  }
  if (first.tok !== 'id' && first.tok !== ',') throw new Error(`found '${first.lit}', expected: ',', ')' or identifier`);
  // parseIdentifiersList
  const s = new Set<string>();
  for (;;) {
    const t = p.consume();
    if (t.tok === 'id') {
      s.add(t.lit);
      const n = p.lookahead();
      if (n.tok === ')') break;
      if (n.tok !== ',') throw new Error(`found '${n.lit}', expected: ',' or ')'`);
    } else if (t.tok === ',') {
      if (s.size === 0) s.add('');
      const n = p.lookahead().tok;
      if (n === ')') {
        s.add('');
        break;
      }
      if (n === ',') s.add('');
    } else {
      throw new Error(`found '${t.lit}', expected: ',', or identifier`);
    }
  }
  p.consume(); // the ')' seen by lookahead
  return s;
}

function parseExactValue(p: Parser): Set<string> {
  const n = p.lookahead().tok;
  if (n === 'eos' || n === ',') return new Set(['']);
  const t = p.consume();
  if (t.tok !== 'id') throw new Error(`found '${t.lit}', expected: identifier`);
  return new Set([t.lit]);
}

/** NewRequirement's value checks, on the sorted values; several errors aggregate as "[a, b]" like Go. */
function requirement(key: string, operator: Operator, set: Set<string>): Requirement {
  const values = [...set].sort();
  const errs: string[] = [];
  if (operator === 'gt' || operator === 'lt') {
    values.forEach((v, i) => {
      if (parseInt64(v) === undefined) errs.push(`values[${i}]: Invalid value: ${goQuote(v)}: for 'Gt', 'Lt' operators, the value must be an integer`);
    });
  }
  values.forEach((v, i) => {
    const e = labelValueErrors(v);
    if (e.length > 0) errs.push(`values[${i}][${key}]: Invalid value: ${goQuote(v)}: ${e.join('; ')}`);
  });
  const unique = [...new Set(errs)];
  if (unique.length === 1) throw new Error(unique[0]);
  if (unique.length > 1) throw new Error(`[${unique.join(', ')}]`);
  return Object.freeze({ key, operator, values: Object.freeze(values) });
}

// ---- validation (content.IsLabelKey, content.IsLabelValue) ----

const LABEL_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_RE = new RegExp(`^${LABEL_FMT}$`);
const VALUE_FMT = `(${LABEL_FMT})?`;
const VALUE_RE = new RegExp(`^${VALUE_FMT}$`);
const DNS_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
const DNS_RE = new RegExp(`^${DNS_FMT}$`);
const KEY_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '" + LABEL_FMT + "')";
const VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '" + VALUE_FMT + "')";
const DNS_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '" + DNS_FMT + "')";
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function labelKeyErrors(key: string): string[] {
  const parts = key.split('/');
  if (parts.length > 2) return [`a valid label key ${KEY_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  const errs: string[] = [];
  const name = parts.length === 2 ? parts[1]! : key;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') errs.push('prefix part must be non-empty');
    else {
      if (bytes(prefix) > 253) errs.push('prefix part must be no more than 253 bytes');
      if (!DNS_RE.test(prefix)) errs.push(`prefix part ${DNS_MSG}`);
    }
  }
  if (name === '') errs.push('name part must be non-empty');
  else if (bytes(name) > 63) errs.push('name part must be no more than 63 bytes');
  if (!LABEL_RE.test(name)) errs.push(`name part ${KEY_MSG}`);
  return errs;
}

function labelValueErrors(v: string): string[] {
  const errs: string[] = [];
  if (bytes(v) > 63) errs.push('must be no more than 63 bytes');
  if (!VALUE_RE.test(v)) errs.push(VALUE_MSG);
  return errs;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };

/** Go's strconv.Quote (the `%q` in field errors), for messages only. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ESCAPES[ch]) out += ESCAPES[ch];
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c < 0x7f || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + '"';
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64): optional sign, decimal digits, int64 range; undefined when it fails. No regex. */
function parseInt64(s: string): bigint | undefined {
  const start = s[0] === '+' || s[0] === '-' ? 1 : 0;
  if (s.length === start) return undefined;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const v = BigInt(s[0] === '+' ? s.slice(1) : s);
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

// ---- compiled selector ----

type Labels = Readonly<Record<string, string>>;

function matcher(r: Requirement): (l: Labels) => boolean {
  const { key, values } = r;
  const get = (l: Labels) => (Object.hasOwn(l, key) ? l[key] : undefined);
  switch (r.operator) {
    case '=':
    case '==': {
      const want = values[0]!;
      return (l) => get(l) === want;
    }
    case 'in': {
      const set = new Set(values);
      return (l) => {
        const v = get(l);
        return v !== undefined && set.has(v);
      };
    }
    case '!=': {
      const unwanted = values[0]!;
      return (l) => get(l) !== unwanted;
    }
    case 'notin': {
      const set = new Set(values);
      return (l) => {
        const v = get(l);
        return v === undefined || !set.has(v);
      };
    }
    case 'exists':
      return (l) => Object.hasOwn(l, key);
    case '!':
      return (l) => !Object.hasOwn(l, key);
    case 'gt':
    case 'lt': {
      const bound = parseInt64(values[0]!)!;
      const gt = r.operator === 'gt';
      return (l) => {
        const v = get(l);
        const n = v === undefined ? undefined : parseInt64(v);
        return n !== undefined && (gt ? n > bound : n < bound);
      };
    }
  }
}

function requirementString(r: Requirement): string {
  switch (r.operator) {
    case 'exists':
      return r.key;
    case '!':
      return `!${r.key}`;
    case 'in':
    case 'notin':
      return `${r.key} ${r.operator} (${r.values.join(',')})`;
    case 'gt':
      return `${r.key}>${r.values[0]}`;
    case 'lt':
      return `${r.key}<${r.values[0]}`;
    default:
      return `${r.key}${r.operator}${r.values[0]}`;
  }
}

const EXPRESSION_OP = { in: 'In', notin: 'NotIn', '!=': 'NotIn', exists: 'Exists', '!': 'DoesNotExist' } as const;

function compile(reqs: Requirement[]): Selector {
  const requirements = Object.freeze(reqs);
  const matchers = requirements.map(matcher);
  const text = requirements.map(requirementString).join(',');
  return {
    requirements,
    empty: requirements.length === 0,
    matches(labels) {
      for (let i = 0; i < matchers.length; i++) if (!matchers[i]!(labels)) return false;
      return true;
    },
    toString: () => text,
    toLabelSelector() {
      if (requirements.length === 0) return null;
      const out: LabelSelectorJson = {};
      for (const r of requirements) {
        if (r.operator === '=' || r.operator === '==') (out.matchLabels ??= {})[r.key] = r.values[0]!;
        else if (r.operator === 'gt' || r.operator === 'lt') throw new SelectorError(`"${r.operator}" isn't supported in label selectors`);
        else {
          const operator = EXPRESSION_OP[r.operator];
          (out.matchExpressions ??= []).push(r.values.length === 0 ? { key: r.key, operator } : { key: r.key, operator, values: [...r.values] });
        }
      }
      return out;
    },
  };
}
