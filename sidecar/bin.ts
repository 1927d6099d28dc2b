// Entry of the sidecar image (Dockerfile.sidecar bundles it into one file): the `sidecar` command of the CLI
// without the other commands, so the bundle holds none of the aggregator's dependencies.
// The injected container's args start with `sidecar`, as for the CLI; a leading `sidecar` is dropped.
import { ConfigError } from '../common/src/errors.js';
import { usage } from '../common/src/flags.js';
import { SIDECAR_FLAGS } from './src/config.js';
import { runSidecar } from './src/main.js';

const args = process.argv.slice(2);
if (args[0] === 'sidecar') args.shift();

if (args.includes('--help') || args.includes('-h')) {
  console.log(usage('sidecar', "Scrape the app's /metrics, keep the selected series, and stream them to every aggregator replica.", SIDECAR_FLAGS));
} else {
  try {
    await runSidecar(args, process.env);
  } catch (err) {
    // Same contract as common/src/cli.ts: bad configuration is one line naming the flag, exit code 2.
    if (err instanceof ConfigError || (err instanceof Error && /^--[a-z-]+/.test(err.message))) {
      console.error(`metrics-relay sidecar: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}
