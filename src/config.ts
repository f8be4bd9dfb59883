import { dirname, join } from 'node:path';
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
    /** A connection must send a request's headers within this, and a new one is closed if it sends nothing. */
    headersTimeoutMs: z.coerce.number().int().min(10).max(600_000),
    /** How long an idle keep-alive connection is kept after a response. */
    keepAliveTimeoutMs: z.coerce.number().int().min(10).max(600_000),
    /** Open connections at most; further ones are closed at once. */
    maxConnections: z.coerce.number().int().min(1).max(1_000_000),
  }),
  ingest: z.object({
    /** Local folders that HTTP-requested ingests may read from. */
    roots: csv,
    /** Hosts that URL ingests may fetch from; empty means any host for the CLI, none over HTTP. */
    allowHosts: csv,
    /** The most pixels (width x height) one raster may declare. */
    maxPixels: z.coerce.number().int().min(1),
    /** The most tiles one raster's grid may hold. */
    maxTiles: z.coerce.number().int().min(1),
  }),
  /** The pg-boss work queue (server engine only): retries, back-off and how long a unit may run before it is retried. */
  queue: z.object({
    retryLimit: z.coerce.number().int().min(0).max(100),
    retryDelaySeconds: z.coerce.number().int().min(1).max(3600),
    /** A unit still active after this long counts as failed (its worker died) and is retried. */
    expireSeconds: z.coerce.number().int().min(1).max(86_400),
    /** How often a worker checks for expired units (one worker does it per interval). */
    superviseSeconds: z.coerce.number().int().min(1).max(3600),
    pollSeconds: z.coerce.number().min(0.5).max(60),
  }),
});

export type Config = z.infer<typeof configSchema>;
type Input = {
  [K in keyof Config]?: Config[K] extends object ? Partial<Record<keyof Config[K], unknown>> : unknown;
};

export const DEFAULT_DB = '.tilevec/db';
const DEFAULT_MODELS_DIR = '.tilevec/models';

export const DEFAULT_INGEST_LIMITS = { maxPixels: 20_000_000_000, maxTiles: 20_000_000 };

const defaults: Config = {
  db: DEFAULT_DB,
  logLevel: 'warn',
  modelsDir: DEFAULT_MODELS_DIR,
  serve: { host: '127.0.0.1', port: 8080, token: undefined, corsOrigins: [], maxK: 1000, queryTimeoutMs: 10_000,
    headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024 },
  // A 100k x 100k mosaic (1e10 pixels, 9.8 million 32-pixel tiles) passes; a header declaring more does not.
  ingest: { roots: [], allowHosts: [], ...DEFAULT_INGEST_LIMITS },
  queue: { retryLimit: 5, retryDelaySeconds: 10, expireSeconds: 900, superviseSeconds: 30, pollSeconds: 2 },
};

function fromEnv(rawEnv: NodeJS.ProcessEnv): Input {
  // An empty variable (TILEVEC_DB=) counts as unset, as shells and container files often produce them.
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([, v]) => v !== '')) as NodeJS.ProcessEnv;
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
      headersTimeoutMs: env.TILEVEC_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: env.TILEVEC_KEEPALIVE_TIMEOUT_MS,
      maxConnections: env.TILEVEC_MAX_CONNECTIONS,
    },
    ingest: { roots: env.TILEVEC_DATA_ROOTS, allowHosts: env.TILEVEC_ALLOW_HOSTS, maxPixels: env.TILEVEC_MAX_PIXELS, maxTiles: env.TILEVEC_MAX_TILES },
    queue: {
      retryLimit: env.TILEVEC_QUEUE_RETRY_LIMIT,
      retryDelaySeconds: env.TILEVEC_QUEUE_RETRY_DELAY,
      expireSeconds: env.TILEVEC_QUEUE_EXPIRE,
      superviseSeconds: env.TILEVEC_QUEUE_SUPERVISE,
      pollSeconds: env.TILEVEC_QUEUE_POLL,
    },
  };
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Models live beside an embedded database unless told otherwise, so one --db folder holds a whole project. */
export function defaultModelsDir(db: string): string {
  return /^postgres(ql)?:\/\//i.test(db) || db === 'memory://' ? DEFAULT_MODELS_DIR : join(dirname(db), 'models');
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
    queue: { ...defaults.queue, ...definedOnly(e.queue), ...definedOnly(flags.queue) },
  };
  if (merged.modelsDir === DEFAULT_MODELS_DIR && typeof merged.db === 'string') merged.modelsDir = defaultModelsDir(merged.db);
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
