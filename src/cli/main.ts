/**
 * The process shell: signals in, one exit code out. Every way a run can end passes through `main`,
 * the only place that decides the process's exit code.
 */
import { CommanderError } from 'commander';
import { ExitCode } from '../errors.js';
import { buildProgram, reportError, type RunState } from './program.js';
import type { Streams } from './report.js';

export async function main(argv: readonly string[], streams: Streams = { out: process.stdout, err: process.stderr }): Promise<number> {
  const controller = new AbortController();
  const state: RunState = { code: ExitCode.ok, debug: argv.includes('--debug'), signal: controller.signal, json: false };
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C means "now": temporary files may be left in the hidden folder, never final names.
    if (controller.signal.aborted) process.exit(signal === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted);
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await buildProgram(state, streams).parseAsync([...argv]);
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return ExitCode.ok;
      }
      // Commander's own errors (unknown option, missing argument) are usage errors.
      return ExitCode.usage;
    }
    return reportError(err, state, streams);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

