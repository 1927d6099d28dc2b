// Entry of the sidecar image (Dockerfile.sidecar bundles it into one file): the sidecar command alone, so the
// bundle holds none of the aggregator's dependencies. The injected container's args start with `sidecar`, as for
// the CLI; a leading `sidecar` is dropped.
import { runCommand } from './command.js';
import { sidecarCommand } from './sidecar.js';

const args = process.argv.slice(2);
if (args[0] === 'sidecar') args.shift();
await runCommand(sidecarCommand, args);
