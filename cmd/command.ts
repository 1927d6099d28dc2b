// The one layer of entry points: each binary is a Command, and runCommand is the only place that turns a
// command's outcome into process exit codes. Library code (aggregator/, sidecar/, common/, examples/) never
// imports from cmd/.
import { ConfigError, ListenError } from '../common/src/errors.js';
import { asksForHelp, usage, type FlagSpec } from '../common/src/flags.js';

export interface Command {
  /** The first argument that selects it: `metrics-relay <name>`. */
  name: string;
  summary: string;
  flags: () => Promise<readonly FlagSpec[]>;
  /** Runs until stopped (SIGTERM is the command's own business). Throws ConfigError or ListenError on bad input. */
  run: (argv: string[], env: NodeJS.ProcessEnv) => Promise<unknown>;
}

/** --help prints the command's flags; ConfigError and ListenError print one line and exit 2; anything else throws. */
export async function runCommand(command: Command, argv: string[]): Promise<void> {
  const flags = await command.flags();
  if (asksForHelp(flags, argv)) {
    console.log(usage(command.name, command.summary, flags));
    return;
  }
  try {
    await command.run(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ListenError) {
      console.error(`metrics-relay ${command.name}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}
