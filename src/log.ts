import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Logs go to stderr, so that stdout stays clean for results and the `--json` line. */
export function createLogger(level: LevelWithSilent = 'info', name = 'tilevec'): Logger {
  return pino({ name, level, redact: {
    paths: ['*.token', '*.password', 'token', 'password', 'authorization', '*.authorization', '*.headers.authorization', '*.headers.cookie',
      'headers.authorization', 'headers.cookie', 'connectionString', '*.connectionString'],
    censor: '[redacted]',
  } }, pino.destination(2));
}

let root: Logger | undefined;

/** The process-wide logger; the CLI sets its level from the config before any stage logs. */
export function logger(): Logger {
  root ??= createLogger((process.env.TILEVEC_LOG_LEVEL as LevelWithSilent | undefined) ?? 'warn');
  return root;
}

export function setLogLevel(level: LevelWithSilent): void {
  logger().level = level;
}
