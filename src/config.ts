import { z } from 'zod';
import { UserError } from './errors.ts';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const csv = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string()),
);

export const configSchema = z.object({
  /** A directory for the embedded PGlite engine, or a postgres:// URL for a server. */
  db: z.string().min(1),
  logLevel: z.enum(logLevels),
  /** Where trained model directories go by default. */
  modelsDir: z.string().min(1),
  serve: z.object({
    host: z.string().min(1),
    port: z.coerce.number().int().min(0).max(65535),
    /** Bearer token that write and admin routes require; they are disabled when it is unset. */
    token: z.string().min(16, 'the service token must be at least 16 characters').optional(),
    corsOrigins: csv,
    maxK: z.coerce.number().int().min(1).max(10_000),
    queryTimeoutMs: z.coerce.number().int().min(10),
  }),
  ingest: z.object({
    /** Local folders that HTTP-requested ingests may read from. */
    roots: csv,
    /** Hosts that URL ingests may fetch from; empty means any host for the CLI, none over HTTP. */
    allowHosts: csv,
  }),
});

export type Config = z.infer<typeof configSchema>;
type Input = {
  [K in keyof Config]?: Config[K] extends object ? Partial<Record<keyof Config[K], unknown>> : unknown;
};

export const DEFAULT_DB = '.tilevec/db';

const defaults: Config = {
  db: DEFAULT_DB,
  logLevel: 'warn',
  modelsDir: '.tilevec/models',
  serve: { host: '127.0.0.1', port: 8080, token: undefined, corsOrigins: [], maxK: 1000, queryTimeoutMs: 10_000 },
  ingest: { roots: [], allowHosts: [] },
};

function fromEnv(env: NodeJS.ProcessEnv): Input {
  return {
    db: env.TILEVEC_DB ?? env.DATABASE_URL,
    logLevel: env.TILEVEC_LOG_LEVEL,
    modelsDir: env.TILEVEC_MODELS_DIR,
    serve: {
      host: env.TILEVEC_HOST,
      port: env.TILEVEC_PORT,
      token: env.TILEVEC_TOKEN,
      corsOrigins: env.TILEVEC_CORS_ORIGINS,
      maxK: env.TILEVEC_MAX_K,
      queryTimeoutMs: env.TILEVEC_QUERY_TIMEOUT_MS,
    },
    ingest: { roots: env.TILEVEC_DATA_ROOTS, allowHosts: env.TILEVEC_ALLOW_HOSTS },
  };
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Flags win over the environment, which wins over the defaults. */
export function loadConfig(flags: Input = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const e = fromEnv(env);
  const merged = {
    ...defaults,
    ...definedOnly(e),
    ...definedOnly(flags),
    serve: { ...defaults.serve, ...definedOnly(e.serve), ...definedOnly(flags.serve) },
    ingest: { ...defaults.ingest, ...definedOnly(e.ingest), ...definedOnly(flags.ingest) },
  };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`invalid configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** The config as `tilevec config` shows it: secrets are never printed. */
export function redactConfig(config: Config): Config {
  const db = config.db.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  return { ...config, db, serve: { ...config.serve, token: config.serve.token ? '***' : undefined } };
}
