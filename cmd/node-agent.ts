import type { Command } from './command.js';

export const nodeAgentCommand: Command = {
  name: 'node-agent',
  summary: 'Scrape every opted-in pod on this node (one process per node, a DaemonSet) and stream to every aggregator replica.',
  flags: async () => (await import('../sidecar/src/node/config.js')).NODE_AGENT_FLAGS,
  run: async (argv, env) => (await import('../sidecar/src/node/agent.js')).runNodeAgent(argv, env),
};
