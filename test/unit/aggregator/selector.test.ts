import { describe, expect, it } from 'vitest';
import { parseSelector, SelectorError } from '../../../aggregator/src/selector.js';

// Expected strings below were produced by k8s.io/apimachinery v0.37.2 (labels.Parse, metav1.ParseToLabelSelector).

const labels = { app: 'web', tier: 'backend', n: '7', plus: '+7', empty: '' };

describe('selector matching (k8s.io/apimachinery labels semantics)', () => {
  it.each([
    ['', true], ['   ', true],
    ['app=web', true], ['app==web', true], ['app=db', false], ['missing=x', false],
    ['app!=db', true], ['app!=web', false], ['missing!=x', true],
    ['tier in (backend,frontend)', true], ['tier in (frontend)', false], ['missing in (x)', false],
    ['tier notin (frontend)', true], ['tier notin (backend)', false], ['missing notin (x)', true],
    ['app', true], ['missing', false], ['!missing', true], ['!app', false],
    ['n>5', true], ['n>7', false], ['n<8', true], ['n<7', false], ['missing>1', false], ['missing<1', false], ['app>1', false],
    ['plus>6', true], // the label value goes through strconv.ParseInt, which takes a sign
    ['n>9223372036854775807', false], ['n<9223372036854775807', true],
    ['empty=', true], ['empty==', true], ['empty!=', false], ['missing=', false], ['missing!=', true],
    ['empty in ()', true], ['app in ()', false], ['empty in (,x)', true], ['app notin (,)', true],
    ['app=web,tier=backend', true], ['app=web,tier=frontend', false],
    [' app = web , tier in ( backend ) ', true], ['app\t=\nweb', true],
    ['app in (in,notin)', false], ['app notin (in)', true],
  ])('%j matches: %s', (sel, want) => expect(parseSelector(sel).matches(labels)).toBe(want));

  it('parses what the HPA sends', () => {
    const s = parseSelector('app=web,tier in (backend,frontend),!canary');
    expect(s.matches({ app: 'web', tier: 'frontend' })).toBe(true);
    expect(s.matches({ app: 'web', tier: 'backend' })).toBe(true);
    expect(s.matches({ app: 'web', tier: 'frontend', canary: 'true' })).toBe(false);
    expect(s.matches({ app: 'web', tier: 'db' })).toBe(false);
    expect(s.matches({ tier: 'frontend' })).toBe(false);
    expect(s.toString()).toBe('app=web,!canary,tier in (backend,frontend)');
    expect(s.requirements).toEqual([
      { key: 'app', operator: '=', values: ['web'] },
      { key: 'canary', operator: '!', values: [] },
      { key: 'tier', operator: 'in', values: ['backend', 'frontend'] },
    ]);
    expect(s.toLabelSelector()).toEqual({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'canary', operator: 'DoesNotExist' },
        { key: 'tier', operator: 'In', values: ['backend', 'frontend'] },
      ],
    });
  });

  it('checks own properties only', () => {
    expect(parseSelector('!constructor').matches({})).toBe(true);
    expect(parseSelector('constructor').matches({})).toBe(false);
    expect(parseSelector('toString notin (x)').matches({})).toBe(true);
    expect(parseSelector('constructor=x').matches({ constructor: 'x' })).toBe(true);
  });

  it('accepts prefixed keys', () => {
    expect(parseSelector('app.kubernetes.io/name=web').matches({ 'app.kubernetes.io/name': 'web' })).toBe(true);
  });
});

describe('normal form and LabelSelector', () => {
  it('sorts requirements by key and values within sets (de-duplicated)', () => {
    expect(parseSelector('z=1,a in (c,b),m').toString()).toBe('a in (b,c),m,z=1');
    expect(parseSelector('k in (b,a,b)').toString()).toBe('k in (a,b)');
    expect(parseSelector('k notin (a,,b)').toString()).toBe('k notin (,a,b)');
    expect(parseSelector('k in ()').toString()).toBe('k in ()');
    expect(parseSelector('a==1,b!=2,c>3,d<4,e=').toString()).toBe('a==1,b!=2,c>3,d<4,e=');
    expect(parseSelector('b=1,!a').toString()).toBe('!a,b=1');
    expect(parseSelector('').toString()).toBe('');
    expect(parseSelector('').empty).toBe(true);
    expect(parseSelector('a').empty).toBe(false);
  });

  it('converts like metav1.ParseToLabelSelector', () => {
    expect(parseSelector('verb=GET').toLabelSelector()).toEqual({ matchLabels: { verb: 'GET' } });
    expect(parseSelector('verb==GET,a=').toLabelSelector()).toEqual({ matchLabels: { a: '', verb: 'GET' } });
    expect(parseSelector('verb in (POST,GET)').toLabelSelector()).toEqual({ matchExpressions: [{ key: 'verb', operator: 'In', values: ['GET', 'POST'] }] });
    expect(parseSelector('b notin (2),c,!d').toLabelSelector()).toEqual({
      matchExpressions: [
        { key: 'b', operator: 'NotIn', values: ['2'] },
        { key: 'c', operator: 'Exists' },
        { key: 'd', operator: 'DoesNotExist' },
      ],
    });
    expect(parseSelector('').toLabelSelector()).toBeNull();
  });

  it('deviates from Go for != (NotIn with one value instead of an error)', () => {
    expect(parseSelector('a!=1').toLabelSelector()).toEqual({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] });
  });

  it('refuses gt/lt like Go', () => {
    expect(() => parseSelector('n>1').toLabelSelector()).toThrow(SelectorError);
    expect(() => parseSelector('n>1').toLabelSelector()).toThrow(`"gt" isn't supported in label selectors`);
    expect(() => parseSelector('a=1,n<1').toLabelSelector()).toThrow(`"lt" isn't supported in label selectors`);
  });
});

const VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_MSG =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

describe('malformed selectors fail with Go messages', () => {
  it.each([
    // structure
    ['app in (web', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['app in (a,b c)', "unable to parse requirement: found 'c', expected: ',' or ')'"],
    ['app in ()x', "found 'x', expected: ',' or 'end of string'"],
    ['app in web', "unable to parse requirement: found 'web' expected: '('"],
    ['app in', "unable to parse requirement: found '' expected: '('"],
    ['=web', "found '=', expected: !, identifier, or 'end of string'"],
    ['(app)', "found '(', expected: !, identifier, or 'end of string'"],
    ['!(app)', "unable to parse requirement: found '(', expected: identifier"],
    ['app=(x)', "unable to parse requirement: found '(', expected: identifier"],
    ['app=web,', "found '', expected: identifier after ','"],
    ['app,,x', "found ',', expected: identifier after ','"],
    ['app=web tier=x', "found 'tier', expected: ',' or 'end of string'"],
    ['app x', "unable to parse requirement: found 'x', expected: in, notin, =, ==, !=, gt, lt"],
    ['app!', "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"],
    ['app=bad!value', "found '!', expected: ',' or 'end of string'"],
    ['!app=x', "found '=', expected: ',' or 'end of string'"],
    // gt / lt values
    ['app>abc', `unable to parse requirement: values[0]: Invalid value: "abc": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['app>', `unable to parse requirement: values[0]: Invalid value: "": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['app<99999999999999999999', `unable to parse requirement: values[0]: Invalid value: "99999999999999999999": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['app>-1', `unable to parse requirement: values[0][app]: Invalid value: "-1": ${VALUE_MSG}`],
    ['app>a-', `unable to parse requirement: [values[0]: Invalid value: "a-": for 'Gt', 'Lt' operators, the value must be an integer, values[0][app]: Invalid value: "a-": ${VALUE_MSG}]`],
    // keys
    ['app~web', `unable to parse requirement: <nil>: Invalid value: "app~web": name part ${NAME_MSG}`],
    ['-bad=x', `unable to parse requirement: <nil>: Invalid value: "-bad": name part ${NAME_MSG}`],
    ['x'.repeat(64), `unable to parse requirement: <nil>: Invalid value: "${'x'.repeat(64)}": name part must be no more than 63 bytes`],
    ['a/b/c=x', `unable to parse requirement: <nil>: Invalid value: "a/b/c": a valid label key ${NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`],
    ['/a=x', 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'],
    ['a/=x', `unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; name part ${NAME_MSG}`],
    ['Example.com/a=x', `unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`],
    // values
    ['app=bad.', `unable to parse requirement: values[0][app]: Invalid value: "bad.": ${VALUE_MSG}`],
    ['app in (ok,bad.)', `unable to parse requirement: values[0][app]: Invalid value: "bad.": ${VALUE_MSG}`],
    ['app=' + 'x'.repeat(64), `unable to parse requirement: values[0][app]: Invalid value: "${'x'.repeat(64)}": must be no more than 63 bytes`],
    ['app=a"\u00a0', `unable to parse requirement: values[0][app]: Invalid value: "a\\"\\u00a0": ${VALUE_MSG}`],
  ])('%j', (input, message) => {
    let err: unknown;
    try {
      parseSelector(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorError);
    expect((err as Error).message).toBe(message);
  });

  it('accepts the longest key and value', () => {
    expect(parseSelector(`${'p'.repeat(253)}/${'n'.repeat(63)}=${'v'.repeat(63)}`).empty).toBe(false);
  });

  it('reads a NUL byte at the start of a token as end of input, like Go', () => {
    expect(parseSelector('\0app=x').empty).toBe(true);
    expect(parseSelector('app=x,b \0junk').toString()).toBe('app=x,b');
  });
});
