/** One configuration problem. `flag` (without dashes) is the option it is about, when there is one. */
export interface Problem {
  flag?: string;
  message: string;
}

/** Invalid configuration: main prints the message as one line and exits non-zero. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Every problem found; a single one made of the message when none are given. */
  readonly problems: readonly Problem[];

  constructor(message: string, problems?: readonly Problem[]) {
    super(message);
    this.problems = problems ?? [{ message }];
  }

  /** One error listing every problem, `; `-separated. */
  static of(problems: readonly Problem[]): ConfigError {
    return new ConfigError(problems.map((p) => p.message).join('; '), problems);
  }
}

/** A user-supplied value for a message: JSON-quoted and cut short (a PEM or a typo'd list stays readable). */
export function quoteValue(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

/** A port could not be bound (taken, or not allowed): main prints the message naming the flag and exits 2. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}
