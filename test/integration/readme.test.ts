import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { CLI, NODE, ROOT, eventually } from '../helpers/processes.js';

// The README's first commands, as a newcomer types them: the demo must come up and the commands it prints work.

const run = promisify(execFile);
const README = readFileSync(`${ROOT}README.md`, 'utf8');
let demo: ChildProcess;
let out = '';

beforeAll(() => {
  demo = spawn(NODE, [CLI, 'demo', '--duration', '40s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  demo.stderr!.on('data', (c: Buffer) => (out += c.toString()));
});

afterAll(async () => {
  if (demo.exitCode === null) {
    demo.kill('SIGINT');
    await new Promise((r) => demo.once('exit', r));
  }
});

describe('README', () => {
  it('starts with the two commands: the demo and the tests', () => {
    const block = /## Two commands\s+```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? '';
    expect(block).toMatch(/^npm ci && npm start\b/m);
    expect(block).toMatch(/^npm test\b/m);
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toContain('demo');
    expect(pkg.scripts['prestart']).toBe('npm run build');
  });

  it('prints its commands only once both aggregators answer, saying what it waits for meanwhile', async () => {
    await eventually(() => (out.includes('Try, while it runs:') ? true : undefined), 25_000, 20);
    // Run at once, as a newcomer would: the replica must already be listening (curl exits 7 on connection refused).
    const first = /^ {2}(curl -sk '[^']+')$/m.exec(out)![1]!;
    const { stdout } = await run('bash', ['-c', `${first} </dev/null`], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toHaveProperty('kind');
    expect(out.indexOf('both aggregators answer after')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('both aggregators answer after')).toBeLessThan(out.indexOf('Try, while it runs:'));
  });

  it('the demo shows live values, and the curl and kubectl commands it prints answer', async () => {
    await eventually(() => (/web-1\s+\d+/.test(out) ? true : undefined), 25_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; the demo printed:\n${out}`);
    });
    expect(out).toMatch(/web-1\s+\d+/);
    expect(out).toMatch(/HPA with target AverageValue 5: .* -> desired replicas \d+/);
    const commands = [...out.matchAll(/^ {2}(curl -sk '[^']+'|kubectl --server [^\n]+)$/gm)].map((m) => m[1]!);
    expect(commands.length).toBeGreaterThanOrEqual(3);
    for (const cmd of commands) {
      const { stdout } = await run('bash', ['-c', `${cmd} </dev/null`], { timeout: 10_000 });
      expect(JSON.parse(stdout)).toHaveProperty('kind');
      expect(stdout).not.toContain('"kind":"Status"');
    }
  });

  it('stops cleanly on Ctrl-C, leaving no process behind', async () => {
    demo.kill('SIGINT');
    const code = await new Promise<number | null>((r) => demo.once('exit', r));
    expect(code).toBe(0);
    const { stdout } = await run('bash', ['-c', 'ps -eo args | grep -E "metrics-relay.js (aggregator|sidecar)|examples/app.js" | grep -E "port (8443|8444|808[123])" | grep -v grep || true']);
    expect(stdout.trim()).toBe('');
  });

  it('--mode node: one node agent scrapes the three apps instead of three sidecars', async () => {
    let text = '';
    const node = spawn(NODE, [CLI, 'demo', '--mode', 'node', '--duration', '30s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    node.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    node.stderr!.on('data', (c: Buffer) => (text += c.toString()));
    try {
      await eventually(() => (/web-1\s+\d+[\s\S]*web-2\s+\d+[\s\S]*web-3\s+\d+/.test(text) ? true : undefined), 25_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}; the demo printed:\n${text}`);
      });
      expect(text).toContain('scraped by one node agent (node demo-node)');
      const { stdout } = await run('bash', ['-c', 'ps -eo args | grep -E "metrics-relay.js (sidecar|node-agent)" | grep -v grep || true']);
      expect(stdout).toMatch(/node-agent --node-name demo-node/);
      expect(stdout).not.toMatch(/metrics-relay.js sidecar/);
    } finally {
      node.kill('SIGINT');
      await new Promise((r) => node.once('exit', r));
    }
  });

  it('refuses a --mode it does not know, naming the choices', async () => {
    const r = await run(NODE, [CLI, 'demo', '--mode', 'daemon']).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(r?.code).toBe(2);
    expect(r?.stderr).toContain('--mode must be sidecar or node, got "daemon"');
  });

  it('names the port when one is taken', async () => {
    const blocker = spawn(NODE, ['-e', "require('net').createServer().listen(8082, '127.0.0.1')"], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    try {
      const r = await run(NODE, [CLI, 'demo', '--duration', '1s']).then(() => undefined, (e: { code: number; stderr: string }) => e);
      expect(r?.code).toBe(2);
      expect(r?.stderr).toContain('port 8082 on 127.0.0.1 is already in use');
    } finally {
      blocker.kill();
    }
  });
});
