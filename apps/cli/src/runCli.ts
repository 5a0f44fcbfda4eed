import { CommanderError } from 'commander';
import { isAutoGlmError } from '@open-autoglm/core';
import { type CliIo, processIo } from './cliIo.js';
import { createProgram } from './program.js';

/** Exit codes: 0 success, 1 a user error (bad file, bad config), 2 bad usage, 70 an internal bug. */
export const ExitCode = { ok: 0, userError: 1, usage: 2, internal: 70 } as const;

/**
 * Runs the CLI on `argv` (without `node` and the script path) and returns the exit code. Errors
 * are reported as one message; the stack (and causes) only with `--verbose`.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const verbose = argv.includes('--verbose');
  const program = createProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (help, version, or a usage error).
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    io.stderr(`autoglm: ${describeError(error, verbose)}\n`);
    if (!verbose) {
      if (!isAutoGlmError(error)) io.stderr('This is a bug in autoglm; run again with --verbose and report the output.\n');
    }
    return isAutoGlmError(error) ? ExitCode.userError : ExitCode.internal;
  }
}

function describeError(error: unknown, verbose: boolean): string {
  if (!verbose) return error instanceof Error ? error.message : String(error);
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? current.message) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}
