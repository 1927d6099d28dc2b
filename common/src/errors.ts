/** Invalid configuration: main prints the message as one line and exits non-zero. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A port could not be bound (taken, or not allowed): main prints the message naming the flag and exits 2. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}
