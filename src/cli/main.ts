/**
 * The process shell: signals in, one exit code out. Every way a run ends passes through `main`, the
 * only place that turns results and typed errors into the process's exit code.
 */
import { existsSync } from 'node:fs';
import { editDistance } from '../release/models.js';
import { CommanderError } from 'commander';
import { ExitCode, MetharmeXorError } from '../errors.js';
import { buildProgram, type CliRun } from './program.js';
import { errorLine, PROGRAM, type Streams } from './reporter.js';

/** SIGBREAK is Ctrl-Break on Windows; SIGHUP a closed terminal. Each stops the run with its own code. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', ...(process.platform === 'win32' ? ['SIGBREAK'] : [])] as NodeJS.Signals[];
const SIGNAL_EXIT: Record<string, number> = { SIGTERM: ExitCode.terminated, SIGHUP: ExitCode.hangup };

function errorDocument(message: string, exitCode: number, file?: string, hint?: string): string {
  return `${JSON.stringify({ error: { message, file: file ?? null, hint: hint ?? null, exitCode }, exitCode }, null, 2)}\n`;
}

function reportError(err: unknown, run: CliRun, streams: Streams): number {
  if (err instanceof MetharmeXorError) {
    // A closed stdout (| head) is the reader's choice, not an error to report.
    if (err.exitCode === ExitCode.stdoutClosed) return err.exitCode;
    streams.err.write(errorLine(err.oneLine()));
    if (run.debug) {
      streams.err.write(`${err.stack}\n`);
      if (err.cause instanceof Error) streams.err.write(`caused by: ${err.cause.stack ?? String(err.cause)}\n`);
    }
    if (run.json) streams.out.write(errorDocument(err.message, err.exitCode, err.file, err.hint));
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  streams.err.write(errorLine(`internal error: ${message}; run with --debug and report it`));
  if (run.debug && err instanceof Error) streams.err.write(`${err.stack}\n`);
  if (run.json) streams.out.write(errorDocument(`internal error: ${message}`, ExitCode.internal));
  return ExitCode.internal;
}

/**
 * The model cards say "python3 xor_codec.py <output> <xor-dir> <base-dir> --decode": the same words
 * with no command (three paths first) run as `decode` (or `encode` with --encode), with a note.
 */
export function modelCardForm(argv: readonly string[], commands: readonly string[]): { argv: string[]; command: string } | undefined {
  const args = argv.slice(2);
  if (args.length < 3 || commands.includes(args[0]!) || args.slice(0, 3).some((a) => a.startsWith('-'))) return undefined;
  // "decod a b c" is a command mistyped, not an output folder: commander names the command meant.
  if (commands.some((c) => editDistance(args[0]!, c) <= 2) && !existsSync(args[0]!)) return undefined;
  const command = args.includes('--encode') ? 'encode' : 'decode';
  return { argv: [...argv.slice(0, 2), command, ...args.filter((a) => a !== '--encode')], command };
}

export async function main(argv: readonly string[], streams: Streams = { out: process.stdout, err: process.stderr }): Promise<number> {
  const controller = new AbortController();
  // --json is known before parsing, so that argument errors get their JSON document too.
  const run: CliRun = { code: ExitCode.ok, debug: argv.includes('--debug'), signal: controller.signal, json: argv.includes('--json') };
  let stdoutFailure: number | undefined;
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (stdoutFailure !== undefined) return;
    stdoutFailure = err.code === 'EPIPE' ? ExitCode.stdoutClosed : ExitCode.stdout;
    if (stdoutFailure === ExitCode.stdout) streams.err.write(errorLine(`cannot write to standard output (${err.code ?? err.message}); the run stops`));
    controller.abort(err.code === 'EPIPE' ? 'SIGPIPE' : 'SIGTERM');
  };
  const out = streams.out as NodeJS.WritableStream & Partial<NodeJS.EventEmitter>;
  out.on?.('error', onStdoutError);
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal means "now": temporary files may be left in the hidden folder, never final names.
    if (controller.signal.aborted) process.exit(SIGNAL_EXIT[signal] ?? ExitCode.interrupted);
    controller.abort(signal === 'SIGBREAK' ? 'SIGINT' : signal);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  let code: number;
  try {
    const program = buildProgram(run, streams);
    const dropIn = modelCardForm(argv, program.commands.map((c) => c.name()));
    if (dropIn) streams.err.write(`${PROGRAM}: note: running as "${PROGRAM} ${dropIn.command} ..."; "${dropIn.command}" is the documented form\n`);
    await program.parseAsync(dropIn?.argv ?? [...argv]);
    code = run.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        code = ExitCode.ok;
      } else {
        // Commander's own errors (unknown option, missing argument) are usage errors.
        if (run.json) streams.out.write(errorDocument(err.message.replace(/^error: /, ''), ExitCode.usage, undefined, 'see --help'));
        code = ExitCode.usage;
      }
    } else {
      code = reportError(err, run, streams);
    }
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
  // Writes to stdout fail asynchronously: give a pending error the chance to arrive before deciding.
  await new Promise((r) => setImmediate(r));
  return stdoutFailure ?? code;
}
