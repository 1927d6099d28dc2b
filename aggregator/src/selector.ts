// Kubernetes label selectors in their query-parameter form: a port of the grammar and semantics of
// k8s.io/apimachinery pkg/labels/selector.go (Parse, Requirement.Matches, String) and metav1.ParseToLabelSelector.

export type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

export interface Requirement {
  key: string;
  operator: Operator;
  /** Sorted and unique, as Go's string sets. */
  values: string[];
}

export interface LabelSelectorJson {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface Selector {
  /** Sorted by key, like Go. */
  readonly requirements: readonly Requirement[];
  /** True when there are no requirements (matches everything). */
  readonly empty: boolean;
  matches(labels: Readonly<Record<string, string>>): boolean;
  /** Go String() normal form, e.g. "env=prod,queue=orders". */
  toString(): string;
  /** metav1.ParseToLabelSelector equivalent; null when empty. Throws SelectorError for gt/lt (not expressible). */
  toLabelSelector(): LabelSelectorJson | null;
}

/** A selector that does not parse; the message follows Go's wording. */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

type Tok = 'id' | '!' | '=' | '==' | '!=' | '>' | '<' | 'in' | 'notin' | '(' | ')' | ',' | 'eos';

const SPECIAL = new Set(['=', '!', '(', ')', ',', '>', '<']);
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** Go's lexer + parser with its one-token lookahead; `valuesMode` makes in/notin plain identifiers. */
class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  private scan(): { tok: Tok; lit: string; end: number } {
    let i = this.pos;
    while (i < this.s.length && isSpace(this.s[i]!)) i++;
    if (i >= this.s.length) return { tok: 'eos', lit: '', end: i };
    const c = this.s[i]!;
    if (SPECIAL.has(c)) {
      const two = this.s.slice(i, i + 2);
      if (two === '==' || two === '!=') return { tok: two, lit: two, end: i + 2 };
      return { tok: c as Tok, lit: c, end: i + 1 };
    }
    let j = i;
    while (j < this.s.length && !isSpace(this.s[j]!) && !SPECIAL.has(this.s[j]!)) j++;
    return { tok: 'id', lit: this.s.slice(i, j), end: j };
  }

  lookahead(valuesMode: boolean): { tok: Tok; lit: string } {
    const t = this.scan();
    return { tok: keyword(t, valuesMode), lit: t.lit };
  }

  consume(valuesMode: boolean): { tok: Tok; lit: string } {
    const t = this.scan();
    this.pos = t.end;
    return { tok: keyword(t, valuesMode), lit: t.lit };
  }
}

function keyword(t: { tok: Tok; lit: string }, valuesMode: boolean): Tok {
  if (!valuesMode && t.tok === 'id' && (t.lit === 'in' || t.lit === 'notin')) return t.lit;
  return t.tok;
}

const BINARY = 'in, notin, =, ==, !=, gt, lt';

/** Parses the query-parameter form. "" (or whitespace) is the empty selector. Throws SelectorError. */
export function parseSelector(input: string): Selector {
  const p = new Parser(input);
  const reqs: Requirement[] = [];
  for (;;) {
    const { tok, lit } = p.lookahead(true);
    if (tok === 'eos') break;
    if (tok !== 'id' && tok !== '!') throw new SelectorError(`found '${lit}', expected: !, identifier, or 'end of string'`);
    try {
      reqs.push(parseRequirement(p));
    } catch (err) {
      throw new SelectorError(`unable to parse requirement: ${(err as Error).message}`);
    }
    const next = p.consume(true);
    if (next.tok === 'eos') break;
    if (next.tok !== ',') throw new SelectorError(`found '${next.lit}', expected: ',' or 'end of string'`);
    const after = p.lookahead(true);
    if (after.tok !== 'id' && after.tok !== '!') throw new SelectorError(`found '${after.lit}', expected: identifier after ','`);
  }
  reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return compile(reqs);
}

function parseRequirement(p: Parser): Requirement {
  let op: Operator | undefined;
  let t = p.consume(true);
  if (t.tok === '!') {
    op = '!';
    t = p.consume(true);
  }
  if (t.tok !== 'id') throw new Error(`found '${t.lit}', expected: identifier`);
  const key = t.lit;
  validateKey(key);
  const after = p.lookahead(true).tok;
  // NOTE: like Go, `!k` ends the requirement whatever follows; the caller then reports the stray token.
  if (op === '!' || after === 'eos' || after === ',') return requirement(key, op ?? 'exists', []);
  const o = p.consume(false);
  const operator = ({ in: 'in', notin: 'notin', '=': '=', '==': '==', '!=': '!=', '>': 'gt', '<': 'lt' } as Record<string, Operator>)[o.tok];
  if (!operator) throw new Error(`found '${o.lit}', expected: ${BINARY}`);
  return requirement(key, operator, operator === 'in' || operator === 'notin' ? parseValues(p) : parseExactValue(p));
}

function parseValues(p: Parser): string[] {
  const open = p.consume(true);
  if (open.tok !== '(') throw new Error(`found '${open.lit}' expected: '('`);
  const next = p.lookahead(true);
  if (next.tok === ')') {
    p.consume(true);
    return [''];
  }
  if (next.tok !== 'id' && next.tok !== ',') throw new Error(`found '${next.lit}', expected: ',', ')' or identifier`);
  const values = new Set<string>();
  for (;;) {
    const t = p.consume(true);
    if (t.tok === 'id') {
      values.add(t.lit);
      const n = p.lookahead(true);
      if (n.tok === ',') continue;
      if (n.tok === ')') break;
      throw new Error(`found '${n.lit}', expected: ',' or ')'`);
    } else if (t.tok === ',') {
      if (values.size === 0) values.add('');
      const n = p.lookahead(true);
      if (n.tok === ')') {
        values.add('');
        break;
      }
      if (n.tok === ',') {
        p.consume(true);
        values.add('');
      }
    } else {
      throw new Error(`found '${t.lit}', expected: ',', or identifier`);
    }
  }
  const close = p.consume(true);
  if (close.tok !== ')') throw new Error(`found '${close.lit}', expected: ')'`);
  return [...values];
}

function parseExactValue(p: Parser): string[] {
  const n = p.lookahead(true);
  if (n.tok === 'eos' || n.tok === ',') return [''];
  const t = p.consume(true);
  if (t.tok === 'id') return [t.lit];
  throw new Error(`found '${t.lit}', expected: identifier`);
}

function requirement(key: string, operator: Operator, values: string[]): Requirement {
  const sorted = [...new Set(values)].sort();
  switch (operator) {
    case 'in':
    case 'notin':
      if (sorted.length === 0) throw new Error("for 'in', 'notin' operators, values set can't be empty");
      break;
    case '=':
    case '==':
    case '!=':
      if (sorted.length !== 1) throw new Error('exact-match compatibility requires one single value');
      break;
    case 'exists':
    case '!':
      if (sorted.length !== 0) throw new Error('values set must be empty for exists and does not exist');
      break;
    case 'gt':
    case 'lt':
      if (sorted.length !== 1) throw new Error("for 'Gt', 'Lt' operators, exactly one value is required");
      if (!/^[+-]?\d+$/.test(sorted[0]!)) throw new Error("for 'Gt', 'Lt' operators, the value must be an integer");
      break;
  }
  for (const v of sorted) validateValue(v);
  return { key, operator, values: sorted };
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_MSG = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

function validateKey(key: string): void {
  const errs: string[] = [];
  const slash = key.split('/');
  let name = key;
  if (slash.length === 2) {
    const prefix = slash[0]!;
    name = slash[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) errs.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
  } else if (slash.length > 2) {
    errs.push("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
  }
  if (slash.length <= 2) {
    if (name.length === 0) errs.push('name part must be non-empty');
    else if (name.length > 63) errs.push('name part must be no more than 63 characters');
    else if (!NAME.test(name)) errs.push(NAME_MSG);
  }
  if (errs.length > 0) throw new Error(`key: Invalid value: ${JSON.stringify(key)}: ${errs.join('; ')}`);
}

function validateValue(v: string): void {
  if (v === '') return;
  if (v.length > 63) throw new Error(`values[0][${v}]: Invalid value: ${JSON.stringify(v)}: must be no more than 63 characters`);
  if (!NAME.test(v)) {
    throw new Error(`values[0][${v}]: Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`);
  }
}

type Matcher = (labels: Readonly<Record<string, string>>) => boolean;

function matcher(r: Requirement): Matcher {
  const { key, values } = r;
  const has = (l: Readonly<Record<string, string>>) => Object.prototype.hasOwnProperty.call(l, key);
  const one = values[0]!;
  switch (r.operator) {
    case '=':
    case '==':
      return (l) => has(l) && l[key] === one;
    case 'in': {
      const set = new Set(values);
      return (l) => has(l) && set.has(l[key]!);
    }
    case '!=':
      return (l) => !has(l) || l[key] !== one;
    case 'notin': {
      const set = new Set(values);
      return (l) => !has(l) || !set.has(l[key]!);
    }
    case 'exists':
      return has;
    case '!':
      return (l) => !has(l);
    case 'gt':
    case 'lt': {
      const bound = BigInt(one);
      return (l) => {
        if (!has(l) || !/^[+-]?\d+$/.test(l[key]!)) return false;
        const v = BigInt(l[key]!);
        if (v > 9223372036854775807n || v < -9223372036854775808n) return false;
        return r.operator === 'gt' ? v > bound : v < bound;
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

function compile(requirements: Requirement[]): Selector {
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
          const operator = r.operator === 'in' ? 'In' : r.operator === 'exists' ? 'Exists' : r.operator === '!' ? 'DoesNotExist' : 'NotIn';
          (out.matchExpressions ??= []).push(operator === 'Exists' || operator === 'DoesNotExist' ? { key: r.key, operator } : { key: r.key, operator, values: r.values });
        }
      }
      return out;
    },
  };
}
