import type { Command } from './command.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a local showcase with no cluster: example apps, sidecars, two aggregator replicas and a live view.',
  flags: async () => (await import('../examples/demo.js')).DEMO_FLAGS,
  run: async (argv, env) => (await import('../examples/demo.js')).runDemo(argv, env),
};
