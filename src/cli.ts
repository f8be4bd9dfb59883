import { Command, CommanderError } from 'commander';
import { UserError, errorMessage } from './errors.ts';
import { redactConfig } from './config.ts';
import { logger } from './log.ts';
import { configFrom, emit } from './cli/context.ts';
import { registerDbCommands } from './cli/db.ts';
import { registerDemoCommand } from './cli/demo.ts';
import { registerClassifyCommands } from './cli/classify.ts';
import { registerSampleCommand } from './cli/sample.ts';
import { registerIngestCommands } from './cli/ingest.ts';
import { registerServeCommand } from './cli/serve.ts';
import { registerTrainCommand } from './cli/train.ts';
import { registerEmbedCommands } from './cli/embed.ts';
import { registerWorkerCommands } from './cli/worker.ts';

function buildProgram(): Command {
  const program = new Command('tilevec')
    .description('Geospatial embeddings: GeoTIFF tiles -> RevBiFPN/Tile2Vec vectors in pgvector -> similar tiles, analogies, land cover')
    .option('--db <dir|url>', 'embedded database directory, or a postgres:// URL (env TILEVEC_DB, DATABASE_URL; default .tilevec/db)')
    .option('--json', 'print one JSON object as the last line of stdout')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env TILEVEC_LOG_LEVEL; default warn)')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(run tilevec --help for usage)')
    .exitOverride();

  program.command('config')
    .description('print the effective configuration (flags, then environment, then defaults)')
    .action((_opts, cmd: Command) => {
      const config = redactConfig(configFrom(cmd));
      emit(cmd, config, (c) => JSON.stringify(c, null, 2));
    });

  // In pipeline order, as --help lists them.
  registerDbCommands(program);
  registerIngestCommands(program);
  registerSampleCommand(program);
  registerTrainCommand(program);
  registerEmbedCommands(program);
  registerServeCommand(program);
  registerClassifyCommands(program);
  registerWorkerCommands(program);
  registerDemoCommand(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander already printed the message or help
    if (err instanceof UserError) {
      process.stderr.write(`tilevec: ${err.message}\n`);
      return 1;
    }
    logger().debug({ err }, 'unexpected error');
    process.stderr.write(`tilevec: internal error: ${errorMessage(err)} (rerun with --log-level debug for details)\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv);
