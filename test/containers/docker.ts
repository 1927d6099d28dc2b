import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer } from 'testcontainers';

/** Runs a command with a time limit; rejects with its exit status and the tail of its output. */
export function run(cmd: string, args: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, env: opts.env ?? process.env, cwd: opts.cwd }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = err.killed ? `timed out after ${opts.timeoutMs / 1000}s` : `failed (${err.code ?? err.message})`;
      const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n');
      reject(new Error(`${cmd} ${args.join(' ')} ${why}:\n${tail}`));
    });
  });
}

/** The command's path on PATH or in the sbin directories (apt installs dockerd and debootstrap there). */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.map((d) => join(d, cmd)).find((p) => existsSync(p));
}

/** Installs Debian packages when a command is missing; only root can. */
export async function ensureCommand(cmd: string, debianPackage: string): Promise<string> {
  const found = which(cmd);
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error(`${cmd} is not installed and only root can install it (apt-get install ${debianPackage})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-q'], { timeoutMs: 300_000, env });
  await run('apt-get', ['install', '-y', '-q', debianPackage], { timeoutMs: 600_000, env });
  const installed = which(cmd);
  if (!installed) throw new Error(`apt-get installed ${debianPackage} but ${cmd} is still not found`);
  return installed;
}

const dockerReady = (): Promise<boolean> =>
  run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 }).then(() => true, () => false);

export interface DockerDaemon {
  /** True when this process started dockerd (and stop() will end it). */
  startedHere: boolean;
  stop(): Promise<void>;
}

/**
 * Uses the running Docker engine, or installs (Debian's docker.io) and starts dockerd, logging to a file.
 * Throws, saying why, when dockerd cannot run here: the tests must fail then, never skip.
 */
export async function ensureDocker(): Promise<DockerDaemon> {
  if (await dockerReady()) return { startedHere: false, stop: async () => {} };
  const dockerd = await ensureCommand('dockerd', 'docker.io');
  if (!which('docker')) throw new Error('dockerd is installed but the docker client is not on PATH');
  const dir = join(tmpdir(), 'metrics-relay-dockerd');
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'dockerd.log');
  const log = openSync(logFile, 'w');
  // Our own pidfile: a stale /var/run/docker.pid from a killed daemon would stop dockerd from starting.
  const child: ChildProcess = spawn(dockerd, ['--host', 'unix:///var/run/docker.sock', '--pidfile', join(dir, 'dockerd.pid')], { stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited (${signal ?? code})`));
  child.on('error', (err) => (exited = `could not start (${err.message})`));
  const tail = () => readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');

  const deadline = Date.now() + 60_000;
  while (!(await dockerReady())) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`this machine cannot run dockerd: it ${exited ?? 'did not answer within 60s'}; ${logFile} ends with:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    startedHere: true,
    stop: async () => {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Builds an image from the repository with the docker CLI (its output and exit status say what failed). */
export async function buildImage(repoRoot: string, dockerfile: string, tag: string, baseImage: string): Promise<string> {
  // The legacy builder: Debian's dockerd has no buildx plugin for the CLI to drive BuildKit with. --force-rm:
  // no container is left behind by a failed step.
  const env = { ...process.env, DOCKER_BUILDKIT: '0' };
  await run('docker', ['build', '--force-rm', '-f', dockerfile, '--build-arg', `BASE_IMAGE=${baseImage}`, '-t', tag, '.'], { timeoutMs: 900_000, env, cwd: repoRoot });
  return tag;
}

/** Size in bytes of a local image, as `docker image inspect -f '{{.Size}}'` reports it. */
export async function imageSize(tag: string): Promise<number> {
  return Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', tag], { timeoutMs: 10_000 })).trim());
}

/** A GenericContainer whose published ports listen on 127.0.0.1 only (testcontainers publishes on all addresses). */
export class LoopbackContainer extends GenericContainer {
  withLoopbackPorts(...ports: number[]): this {
    this.withExposedPorts(...ports);
    for (const port of ports) this.hostConfig.PortBindings = { ...this.hostConfig.PortBindings, [`${port}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '0' }] };
    return this;
  }
}
