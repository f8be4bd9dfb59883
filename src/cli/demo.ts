import type { Command } from 'commander';
import { configFrom, emit, withStore } from './context.ts';
import { formatStatus } from './db.ts';

export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('run the main job end to end on the embedded database')
    .action(async (_opts, cmd: Command) => {
      const config = configFrom(cmd);
      const status = await withStore(config, async (store) => {
        await store.migrate();
        return store.status();
      });
      emit(cmd, status, (s) => `tilevec demo: the store is ready\n${formatStatus(s)}`);
    });
}
