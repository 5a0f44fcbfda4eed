import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * What the command tests of every package share: running the built `autoglm` binary as a user
 * would, and proving that a failed command wrote nothing. Test-only; packages import it by a
 * relative path, so that it ships in no package.
 */

/** The repository's root folder. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The trained models and data splits the tests use. */
export const fixturesDir = path.join(repoRoot, 'fixtures');
/** The CLI's binary; `tsc -b` (run by `npm test`) builds what it imports. */
export const autoglmBinary = path.join(repoRoot, 'apps/cli/bin/autoglm.js');

export interface BinaryRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `autoglm ...argv` in `cwd` in a child process; a non-zero exit is a result, not a throw. */
export async function runAutoglmBinary(cwd: string, ...argv: string[]): Promise<BinaryRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [autoglmBinary, ...argv], { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Names, sizes and modification times of everything in a folder, to prove nothing was written. */
export async function snapshotFolder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return Promise.all(
    entries.sort().map(async (entry) => {
      const s = await stat(path.join(dir, entry));
      return `${entry} ${s.size} ${s.mtimeMs}`;
    }),
  );
}
