import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/processes.js';

/**
 * The node flags an image's ENTRYPOINT gives (`["node", <flags...>, <script>]`), so a benchmark runs what ships.
 * Throws when the Dockerfile has no such line.
 */
export function imageNodeFlags(dockerfile: string): string[] {
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(ROOT, dockerfile), 'utf8'))?.[1];
  if (!entrypoint) throw new Error(`${dockerfile} has no ENTRYPOINT [...] line`);
  const [node, ...rest] = JSON.parse(entrypoint) as string[];
  if (node !== 'node') throw new Error(`${dockerfile} ENTRYPOINT starts with ${node}, not node`);
  return rest.slice(0, -1);
}

/**
 * What the sidecar image runs: the bundle `npm run bundle:sidecar` builds (npm run bench builds it first), with the
 * node flags of Dockerfile.sidecar's ENTRYPOINT; a startRelay entry.
 */
export function shippedSidecar(): string[] {
  const bundle = join(ROOT, 'dist/bundle/sidecar.mjs');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run bundle:sidecar (npm run bench does)`);
  return [...imageNodeFlags('Dockerfile.sidecar'), bundle];
}

const AGENT_TEMPLATE = 'charts/metrics-relay/templates/node-agent.yaml';

/**
 * What the node agent's DaemonSet runs: the bundle `npm run bundle:node-agent` builds, with the node flags of the
 * chart's command for it (`command: ["node", <flags...>, "/app/node-agent.mjs"]`); a startRelay entry.
 */
export function shippedNodeAgent(): string[] {
  const bundle = join(ROOT, 'dist/bundle/node-agent.mjs');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run bundle:node-agent (npm run bench:cluster does)`);
  const command = /command: (\["node", .*, "\/app\/node-agent\.mjs"\])/.exec(readFileSync(join(ROOT, AGENT_TEMPLATE), 'utf8'))?.[1];
  if (command === undefined) throw new Error(`${AGENT_TEMPLATE} has no \`command: ["node", ..., "/app/node-agent.mjs"]\` for the node agent`);
  return [...(JSON.parse(command) as string[]).slice(1, -1), bundle];
}
