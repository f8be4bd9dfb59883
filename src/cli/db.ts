import type { Command } from 'commander';
import { configFrom, emit, withStore } from './context.ts';
import type { StoreStatus } from '../store/index.ts';

export function formatStatus(s: StoreStatus): string {
  const c = s.counts;
  return [
    `engine      ${s.engine} (${s.location})${s.standby ? ', a read-only standby' : ''}`,
    `postgres    ${s.postgresVersion}`,
    `pgvector    ${s.pgvectorVersion}`,
    `migration   ${s.migrationLevel}${s.pendingMigrations.length ? ` (pending: ${s.pendingMigrations.join(', ')}; run tilevec db migrate)` : ''}`,
    `rows        rasters ${c.rasters}, tiles ${c.tiles}, models ${c.models}, embeddings ${c.embeddings}, label sets ${c.labelSets}, labels ${c.labels}, jobs ${c.jobs}`,
  ].join('\n');
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('database: migrations and status');

  db.command('migrate')
    .description('apply pending SQL migrations (safe to run twice, and from two processes at once)')
    .action(async (_opts, cmd: Command) => {
      const config = configFrom(cmd);
      const result = await withStore(config, (store) => store.migrate(), { migrate: false, create: true });
      emit(cmd, result, (r) => (r.applied.length ? `applied ${r.applied.join(', ')}; now at level ${r.level}` : `already at level ${r.level}; nothing to apply`));
    });

  db.command('status')
    .description('migration level, engine, pgvector version and row counts')
    .action(async (_opts, cmd: Command) => {
      const config = configFrom(cmd);
      const status = await withStore(config, (store) => store.status(), { migrate: false });
      emit(cmd, status, formatStatus);
    });
}
