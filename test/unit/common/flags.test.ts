import { describe, expect, it } from 'vitest';
import { asksForHelp, parseFlags, usage, type FlagSpec } from '../../../common/src/flags.js';
import { ConfigError } from '../../../common/src/errors.js';
import { loadAggregatorConfig } from '../../../aggregator/src/config.js';
import { servingKeyPair } from '../../../common/src/tls.js';

const SPECS = [
  { name: 'name', kind: 'string', help: 'a string' },
  { name: 'count', kind: 'int', default: 3, help: 'an int' },
  { name: 'port', kind: 'port', help: 'a port' },
  { name: 'every', kind: 'duration', default: '5s', help: 'a duration' },
  { name: 'on', kind: 'bool', default: false, help: 'a bool' },
] as const satisfies readonly FlagSpec[];

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags(SPECS, argv, env);

function problemsOf(argv: string[], env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parse(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(argv)} to be refused`);
}

describe('parseFlags', () => {
  it('converts by kind, with defaults and RELAY_* env (the flag wins)', () => {
    expect(parse(['--port', '80', '--every=1m30s'], { RELAY_NAME: 'from-env', RELAY_PORT: '81' })).toEqual({ name: 'from-env', count: 3, port: 80, every: 90_000, on: false });
  });

  it.each([
    ['--name value', ['--name', '-x']],
    ['--name=value', ['--name=-x']],
  ])('a value may start with "-" (%s)', (_form, argv) => {
    expect(parse(argv).name).toBe('-x');
  });

  it('a value may look like a flag: the string flag takes it all the same', () => {
    expect(parse(['--name', '--on']).name).toBe('--on');
    expect(parse(['--name', '--on']).on).toBe(false);
    expect(parse(['--name', '--']).name).toBe('--');
  });

  it('--flag=value splits at the first "="', () => {
    expect(parse(['--name=a=b=']).name).toBe('a=b=');
    expect(parse(['--name=']).name).toBe('');
  });

  it('numbers and durations take the next element too, and name it when it is bad', () => {
    expect(problemsOf(['--every', '-1s']).message).toBe('--every: "-1s" is not a duration (e.g. 500ms, 5s, 1m)');
    expect(problemsOf(['--count', '-3']).message).toBe('--count: "-3" is not a non-negative integer');
  });

  it('a bool takes no separate value: --on, --on=true, --on=false', () => {
    expect(parse(['--on']).on).toBe(true);
    expect(parse(['--on=false'], { RELAY_ON: 'true' }).on).toBe(false);
    expect(problemsOf(['--on', 'true']).message).toBe('unexpected argument "true" (flags are --name value or --name=value)');
    expect(problemsOf(['--on=maybe']).message).toBe('--on: "maybe" is not a boolean (true or false)');
  });

  it('the last of a repeated flag wins', () => {
    expect(parse(['--name', 'a', '--name=b']).name).toBe('b');
  });

  it('"--" ends the flags; what follows is reported, not read as flags', () => {
    expect(problemsOf(['--name', 'a', '--', '--on']).message).toBe('unexpected argument "--on"');
  });

  it('a flag without its value at the end is named', () => {
    expect(problemsOf(['--on', '--name'])).toMatchObject({ message: '--name needs a value', problems: [{ flag: 'name', message: '--name needs a value' }] });
  });

  it('reports every problem at once, each naming its flag', () => {
    const err = problemsOf(['--nope', 'x', '--count', 'many', '-v', '--port=70000', '--every'], { RELAY_ON: 'sometimes' });
    expect(err.message).toBe(
      [
        'unknown flag "--nope"',
        'unexpected argument "x" (flags are --name value or --name=value)',
        'unknown flag "-v"',
        '--every needs a value',
        '--count: "many" is not a non-negative integer',
        '--port: "70000" is not a port number (0-65535)',
        'RELAY_ON (--on): "sometimes" is not a boolean (true or false)',
      ].join('; '),
    );
    expect(err.problems.map((p) => p.flag)).toEqual([undefined, undefined, undefined, 'every', 'count', 'port', 'on']);
  });

  it('cuts a long bad value short in the message', () => {
    const err = problemsOf(['--every', `-----BEGIN CERTIFICATE-----${'A'.repeat(500)}`]);
    expect(err.message).toBe(`--every: "-----BEGIN CERTIFICATE-----${'A'.repeat(37)}…" is not a duration (e.g. 500ms, 5s, 1m)`);
  });
});

describe('asksForHelp', () => {
  it.each([
    [['--help'], true],
    [['--name', 'a', '-h'], true],
    [['--name', '--help'], false],
    [['--name=-h'], false],
    [[], false],
  ])('%j: %s', (argv, expected) => {
    expect(asksForHelp(SPECS, argv)).toBe(expected);
  });
});

describe('usage', () => {
  it("says values may start with '-' and how booleans are given", () => {
    const text = usage('x', 'does x', SPECS);
    expect(text).toContain("Each flag takes its value as --flag value or --flag=value, and a value may start with '-' (a PEM, a selector).");
    expect(text).toContain('Booleans are --flag, --flag=true or --flag=false.');
    expect(text).toContain('  --every <duration>\n      a duration (default 5s)  [RELAY_EVERY]');
  });
});

describe('aggregator flags take a PEM', () => {
  it.each([
    ['--inject-ca-bundle PEM', (pem: string) => ['--inject-ca-bundle', pem]],
    ['--inject-ca-bundle=PEM', (pem: string) => [`--inject-ca-bundle=${pem}`]],
  ])('%s', async (_form, args) => {
    const { cert } = await servingKeyPair(undefined, undefined, ['relay-test']);
    const c = loadAggregatorConfig(['--inject-image', 'img', '--inject-aggregator', 'a:9443', ...args(cert)], {});
    expect(c.injection?.caPem).toBe(cert);
    expect(c.injection?.aggregatorAddress).toBe('a:9443');
  });
});
