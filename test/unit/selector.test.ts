import { describe, expect, it } from 'vitest';
import { parseSelector, SelectorError } from '../../aggregator/src/selector.js';

const labels = { app: 'web', tier: 'backend', n: '7', empty: '' };

describe('selector matching (k8s.io/apimachinery labels semantics)', () => {
  it.each([
    ['', true], ['app=web', true], ['app==web', true], ['app=db', false], ['missing=x', false],
    ['app!=db', true], ['app!=web', false], ['missing!=x', true],
    ['tier in (backend,frontend)', true], ['tier in (frontend)', false], ['missing in (x)', false],
    ['tier notin (frontend)', true], ['tier notin (backend)', false], ['missing notin (x)', true],
    ['app', true], ['missing', false], ['!missing', true], ['!app', false],
    ['n>5', true], ['n>7', false], ['n<8', true], ['missing>1', false], ['app>1', false],
    ['empty=', true], ['app=web,tier=backend', true], ['app=web,tier=frontend', false],
    [' app = web , tier in ( backend ) ', true],
  ])('%j matches: %s', (sel, want) => expect(parseSelector(sel).matches(labels)).toBe(want));

  it('parses what the HPA sends', () => {
    const s = parseSelector('app=web,tier in (backend,frontend),!canary');
    expect(s.matches({ app: 'web', tier: 'frontend' })).toBe(true);
    expect(s.matches({ app: 'web', tier: 'frontend', canary: 'true' })).toBe(false);
    expect(s.toString()).toBe('app=web,!canary,tier in (backend,frontend)');
  });
});

describe('normal form and LabelSelector', () => {
  it('sorts requirements by key and values within sets', () => {
    expect(parseSelector('z=1,a in (c,b),m').toString()).toBe('a in (b,c),m,z=1');
    expect(parseSelector('').toString()).toBe('');
    expect(parseSelector('').empty).toBe(true);
  });

  it('converts like metav1.ParseToLabelSelector', () => {
    expect(parseSelector('verb=GET').toLabelSelector()).toEqual({ matchLabels: { verb: 'GET' } });
    expect(parseSelector('verb in (GET,POST)').toLabelSelector()).toEqual({ matchExpressions: [{ key: 'verb', operator: 'In', values: ['GET', 'POST'] }] });
    expect(parseSelector('a!=1,b notin (2),c,!d').toLabelSelector()).toEqual({
      matchExpressions: [
        { key: 'a', operator: 'NotIn', values: ['1'] },
        { key: 'b', operator: 'NotIn', values: ['2'] },
        { key: 'c', operator: 'Exists' },
        { key: 'd', operator: 'DoesNotExist' },
      ],
    });
    expect(parseSelector('').toLabelSelector()).toBeNull();
    expect(() => parseSelector('n>1').toLabelSelector()).toThrow(`"gt" isn't supported in label selectors`);
  });
});

describe('malformed selectors fail with Go-like messages', () => {
  it.each([
    ['app in (web', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['app in ()x', "found 'x', expected: ',' or 'end of string'"],
    ['app in web', "unable to parse requirement: found 'web' expected: '('"],
    ['=web', "found '=', expected: !, identifier, or 'end of string'"],
    ['app=web,', "found '', expected: identifier after ','"],
    ['app=web tier=x', "found 'tier', expected: ',' or 'end of string'"],
    ['app>abc', "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"],
    ['app~web', 'unable to parse requirement: key: Invalid value: "app~web"'],
    ['-bad=x', 'unable to parse requirement: key: Invalid value: "-bad"'],
    ['app=bad!value', "found '!', expected: ',' or 'end of string'"],
    ['app=' + 'x'.repeat(64), 'must be no more than 63 characters'],
    ['a/b/c=x', 'unable to parse requirement: key: Invalid value: "a/b/c"'],
    ['!app=x', "found '=', expected: ',' or 'end of string'"],
  ])('%j', (input, message) => {
    expect(() => parseSelector(input)).toThrow(SelectorError);
    expect(() => parseSelector(input)).toThrow(message);
  });
});
