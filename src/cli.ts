import { Command, CommanderError } from 'commander';
import { redactConfig } from './config.ts';
import { logger } from './log.ts';
import { VERSION } from './version.ts';
import { describeFailure, reportFailure } from './cli/failure.ts';
import { configFrom, emit, jsonResultPrinted } from './cli/context.ts';
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
    .version(VERSION, '-V, --version', 'print the version')
    .configureHelp({ showGlobalOptions: true })
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
  noteFailingCommand(program);
  return program;
}

/** The command whose usage error is being reported, e.g. `tilevec db migrate`. */
let failingCommand = 'tilevec';

/**
 * commander prints a usage error through the failing command's outputError: silenced here, so that main prints
 * one line that points to that command's own help, not just `tilevec --help`.
 */
function noteFailingCommand(cmd: Command, path = cmd.name()): void {
  cmd.configureOutput({ outputError: () => { failingCommand = path; } });
  for (const sub of cmd.commands) noteFailingCommand(sub, `${path} ${sub.name()}`);
}

/** --json anywhere before a bare `--`: known even when parsing fails before commander reads it. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    // --help, --version, or the help a bare `tilevec` prints: commander has written it.
    if (err instanceof CommanderError && (err.exitCode === 0 || err.code === 'commander.help')) return err.exitCode;
    const failure = describeFailure(err, `${failingCommand} --help`);
    if (failure.code === 'internal_error') logger().debug({ err }, 'unexpected error');
    reportFailure(failure, wantsJson(argv.slice(2)) && !jsonResultPrinted());
    return failure.exitCode;
  }
}

process.exitCode = await main(process.argv);
