/**
 * Typed errors. Each carries the process exit code the CLI must use, so the library never decides
 * how the process ends and the CLI never guesses from a message.
 */

export const ExitCode = {
  ok: 0,
  verificationFailed: 1,
  usage: 2,
  io: 3,
  internal: 70,
  stdout: 74,
  hangup: 129,
  interrupted: 130,
  stdoutClosed: 141,
  terminated: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What each exit code means: the one table the help text prints and the README repeats (tested). */
export const EXIT_CODE_MEANINGS: readonly { code: ExitCodeValue; meaning: string }[] = [
  { code: ExitCode.ok, meaning: 'every file done and verified (or verification skipped on request, or no digest known: said loudly)' },
  {
    code: ExitCode.verificationFailed,
    meaning:
      'a file failed verification (mismatch), was not kept (invalid, or unsafe to load), is listed in the manifest but missing, or was not started after a failure that repeats; with --check-base, a base file that is not the published one; with --strict, a file that could not be verified',
  },
  {
    code: ExitCode.usage,
    meaning: 'usage or input error: bad arguments, missing, unreadable or changing input, a network failure (the Hub unreachable, refusing or cutting off), unknown model, unparsable manifest, unsafe output folder, an existing output that does not match, a git-lfs pointer, a held lock',
  },
  { code: ExitCode.io, meaning: 'I/O failure while writing: not enough free space, disk full, file too large, permission denied, read-only file system' },
  { code: ExitCode.internal, meaning: 'internal error: a bug; please report it with the --debug output' },
  { code: ExitCode.stdout, meaning: 'standard output could not be written (e.g. a full disk behind a redirection); the run stops' },
  { code: ExitCode.hangup, meaning: 'hung up (SIGHUP, the terminal closed); cleaned up as for SIGTERM' },
  { code: ExitCode.interrupted, meaning: 'interrupted (SIGINT, Ctrl-C; Ctrl-Break on Windows)' },
  { code: ExitCode.stdoutClosed, meaning: 'standard output was closed early (a pipe whose reader exited, such as head); the run stops quietly' },
  { code: ExitCode.terminated, meaning: 'terminated (SIGTERM)' },
];

export class MetharmeXorError extends Error {
  readonly exitCode: ExitCodeValue;
  /** The file the error is about, when there is one; shown first in the one-line message. */
  readonly file: string | undefined;
  /** What the user should do about it. */
  readonly hint: string | undefined;

  constructor(
    exitCode: ExitCodeValue,
    message: string,
    options: { file?: string; hint?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.file = options.file;
    this.hint = options.hint;
  }

  /** The one line a user sees: file, what happened, what to do. */
  oneLine(): string {
    const parts = [this.file ? `${this.file}: ${this.message}` : this.message];
    if (this.hint) parts.push(this.hint);
    return parts.join('; ');
  }
}

/** Bad arguments, missing or unreadable inputs, unknown model, unparsable manifest (exit 2). */
export class InputError extends MetharmeXorError {
  constructor(message: string, options: { file?: string; hint?: string; cause?: unknown } = {}) {
    super(ExitCode.usage, message, options);
  }
}

/** Failure while writing outputs: disk full, permission, read-only file system (exit 3). */
export class WriteError extends MetharmeXorError {
  constructor(message: string, options: { file?: string; hint?: string; cause?: unknown } = {}) {
    super(ExitCode.io, message, options);
  }
}

const SIGNAL_EXIT: Partial<Record<string, ExitCodeValue>> = {
  SIGTERM: ExitCode.terminated,
  SIGHUP: ExitCode.hangup,
  SIGPIPE: ExitCode.stdoutClosed,
};

/** The run was stopped by a signal: 130 for SIGINT (and a library AbortSignal), 143 SIGTERM, 129 SIGHUP, 141 SIGPIPE. */
export class InterruptedError extends MetharmeXorError {
  readonly signal: string;
  constructor(signal: string) {
    super(SIGNAL_EXIT[signal] ?? ExitCode.interrupted, `interrupted by ${signal}`, {
      hint: 'no partial file was left under a final name; run the same command again to finish',
    });
    this.signal = signal;
  }
}

/** The InterruptedError for an aborted signal: its reason names the OS signal (CLI), else it was a library abort. */
export function interruptedBy(signal: AbortSignal): InterruptedError {
  const reason: unknown = signal.reason;
  return new InterruptedError(typeof reason === 'string' && /^SIG[A-Z]+$/.test(reason) ? reason : 'SIGINT');
}

/** Anything thrown, as an Error. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Throws the run's InterruptedError once its signal is aborted: checked between steps that do not stream. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interruptedBy(signal);
}

const writeErrorHints: Record<string, string> = {
  ENOSPC: 'the output file system is full; free space or choose another output folder',
  EDQUOT: 'the disk quota is exhausted; free space or choose another output folder',
  EFBIG: 'the file is larger than this process may write (ulimit -f or file-system limit)',
  EACCES: 'permission denied; choose an output folder you can write to',
  EPERM: 'operation not permitted; choose an output folder you can write to',
  EROFS: 'the output file system is read-only; choose another output folder',
  EIO: 'the device reported an I/O error; check the disk',
};

/** Wraps a Node error raised while writing `file` into a WriteError with a useful hint. */
export function asWriteError(err: unknown, file: string, action: string): MetharmeXorError {
  if (err instanceof MetharmeXorError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
  const hint = writeErrorHints[code] ?? 'check the output folder and the disk';
  return new WriteError(`${action} failed (${code})`, { file, hint, cause: err });
}

/** Wraps a Node error raised while reading an input `file` (or folder) into an InputError. */
export function asReadError(err: unknown, file: string, kind: 'file' | 'folder' = 'file'): MetharmeXorError {
  if (err instanceof MetharmeXorError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
  const hint =
    code === 'ENOENT'
      ? `the ${kind} does not exist; check the path`
      : code === 'EACCES' || code === 'EPERM'
        ? `permission denied; make the ${kind} readable`
        : code === 'EISDIR'
          ? 'expected a file, found a folder'
          : 'check the file and the disk';
  return new InputError(`cannot read (${code})`, { file, hint, cause: err });
}
