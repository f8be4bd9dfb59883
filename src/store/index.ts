export { Store, vectorLiteral, parseVector, embeddingIndexName, type OpenStoreOptions } from './store.ts';
export { isServerUrl, type Engine, type EngineKind, type Sql } from './engine.ts';
export { loadMigrations, MIGRATIONS_DIR, type MigrateResult } from './migrate.ts';
export type * from './records.ts';
export { VECTOR_TYPES } from './records.ts';
