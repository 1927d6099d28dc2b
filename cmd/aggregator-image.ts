// Entry of the aggregator image (Dockerfile.aggregator): the aggregator command alone, so the image carries none
// of the sidecar's or the demo's code. The chart's args start with `aggregator`, as for the CLI; a leading
// `aggregator` is dropped.
import { aggregatorCommand } from './aggregator.js';
import { runCommand } from './command.js';

const args = process.argv.slice(2);
if (args[0] === 'aggregator') args.shift();
await runCommand(aggregatorCommand, args);
