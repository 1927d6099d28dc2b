import type { Command } from './command.js';

export const sidecarCommand: Command = {
  name: 'sidecar',
  summary: "Scrape the app's /metrics, keep the selected series, and stream them to every aggregator replica.",
  flags: async () => (await import('../sidecar/src/config.js')).SIDECAR_FLAGS,
  run: async (argv, env) => (await import('../sidecar/src/main.js')).runSidecar(argv, env),
};
