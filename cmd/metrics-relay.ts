#!/usr/bin/env node
// `metrics-relay <command>`: the CLI of the npm package and of `npm start`. Each command loads its own
// modules only when chosen.
import { aggregatorCommand } from './aggregator.js';
import { runCommand, type Command } from './command.js';
import { demoCommand } from './demo.js';
import { nodeAgentCommand } from './node-agent.js';
import { sidecarCommand } from './sidecar.js';

const COMMANDS: readonly Command[] = [aggregatorCommand, sidecarCommand, nodeAgentCommand, demoCommand];

const [name, ...rest] = process.argv.slice(2);
const command = COMMANDS.find((c) => c.name === name);
if (command) {
  await runCommand(command, rest);
} else {
  const lines = ['Usage: metrics-relay <command> [flags]', '', 'Commands:', ...COMMANDS.map((c) => `  ${c.name.padEnd(11)} ${c.summary}`), '', 'Run metrics-relay <command> --help for its flags.'];
  console.log(lines.join('\n'));
  if (name !== undefined && name !== '--help' && name !== '-h') {
    console.error(`metrics-relay: unknown command "${name}"`);
    process.exit(2);
  }
}
