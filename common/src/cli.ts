#!/usr/bin/env node
import { ConfigError } from './errors.js';
import { asksForHelp, usage } from './flags.js';

const COMMANDS: Record<string, string> = {
  aggregator: 'Serve custom.metrics.k8s.io and external.metrics.k8s.io from the series sidecars stream in, and the injection webhook.',
  sidecar: "Scrape the app's /metrics, keep the selected series, and stream them to every aggregator replica.",
  demo: 'Run a local showcase with no cluster: example apps, sidecars, two aggregator replicas and a live view.',
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || !(command in COMMANDS)) {
    const lines = ['Usage: metrics-relay <command> [flags]', '', 'Commands:', ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(11)} ${d}`), '', 'Run metrics-relay <command> --help for its flags.'];
    console.log(lines.join('\n'));
    if (command && command !== '--help' && command !== '-h') {
      console.error(`metrics-relay: unknown command "${command}"`);
      process.exit(2);
    }
    return;
  }
  try {
    if (command === 'aggregator') {
      const { AGGREGATOR_FLAGS } = await import('../../aggregator/src/config.js');
      if (asksForHelp(AGGREGATOR_FLAGS, rest)) return console.log(usage(command, COMMANDS[command]!, AGGREGATOR_FLAGS));
      const { runAggregator } = await import('../../aggregator/src/main.js');
      await runAggregator(rest, process.env);
    } else if (command === 'sidecar') {
      const { SIDECAR_FLAGS } = await import('../../sidecar/src/config.js');
      if (asksForHelp(SIDECAR_FLAGS, rest)) return console.log(usage(command, COMMANDS[command]!, SIDECAR_FLAGS));
      const { runSidecar } = await import('../../sidecar/src/main.js');
      await runSidecar(rest, process.env);
    } else {
      const { DEMO_FLAGS, runDemo } = await import('../../examples/demo.js');
      if (asksForHelp(DEMO_FLAGS, rest)) return console.log(usage(command, COMMANDS[command]!, DEMO_FLAGS));
      await runDemo(rest, process.env);
    }
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof Error && /^--[a-z-]+/.test(err.message))) {
      console.error(`metrics-relay ${command}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

await main(process.argv.slice(2));
