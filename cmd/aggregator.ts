import type { Command } from './command.js';

export const aggregatorCommand: Command = {
  name: 'aggregator',
  summary: 'Serve custom.metrics.k8s.io and external.metrics.k8s.io from the series sidecars stream in, and the injection webhook.',
  flags: async () => (await import('../aggregator/src/config.js')).AGGREGATOR_FLAGS,
  run: async (argv, env) => (await import('../aggregator/src/main.js')).runAggregator(argv, env),
};
