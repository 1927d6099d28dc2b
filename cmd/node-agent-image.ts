// Entry of the node agent in the sidecar image (a second bundle beside the sidecar's, so the sidecar's holds none
// of the Kubernetes client): the node-agent command alone; a leading `node-agent` is dropped.
import { runCommand } from './command.js';
import { nodeAgentCommand } from './node-agent.js';

const args = process.argv.slice(2);
if (args[0] === 'node-agent') args.shift();
await runCommand(nodeAgentCommand, args);
