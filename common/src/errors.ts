/** Invalid configuration: main prints the message as one line and exits non-zero. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
