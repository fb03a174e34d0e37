/**
 * The process shell: signals in, one exit code out. Every way a run ends passes through `main`, the
 * only place that turns results and typed errors into the process's exit code.
 */
import { CommanderError } from 'commander';
import { ExitCode, MetharmeXorError } from '../errors.js';
import { buildProgram, type CliRun } from './program.js';
import { errorLine, type Streams } from './reporter.js';

function reportError(err: unknown, run: CliRun, streams: Streams): number {
  if (err instanceof MetharmeXorError) {
    streams.err.write(errorLine(err.oneLine()));
    if (run.debug) {
      streams.err.write(`${err.stack}\n`);
      if (err.cause instanceof Error) streams.err.write(`caused by: ${err.cause.stack ?? String(err.cause)}\n`);
    }
    if (run.json) {
      streams.out.write(
        `${JSON.stringify({ error: { message: err.message, file: err.file ?? null, hint: err.hint ?? null, exitCode: err.exitCode }, exitCode: err.exitCode }, null, 2)}\n`,
      );
    }
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  streams.err.write(errorLine(`internal error: ${message}; run with --debug and report it`));
  if (run.debug && err instanceof Error) streams.err.write(`${err.stack}\n`);
  return ExitCode.internal;
}

export async function main(argv: readonly string[], streams: Streams = { out: process.stdout, err: process.stderr }): Promise<number> {
  const controller = new AbortController();
  const run: CliRun = { code: ExitCode.ok, debug: argv.includes('--debug'), signal: controller.signal, json: false };
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C means "now": temporary files may be left in the hidden folder, never final names.
    if (controller.signal.aborted) process.exit(signal === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted);
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await buildProgram(run, streams).parseAsync([...argv]);
    return run.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return ExitCode.ok;
      }
      // Commander's own errors (unknown option, missing argument) are usage errors.
      return ExitCode.usage;
    }
    return reportError(err, run, streams);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
