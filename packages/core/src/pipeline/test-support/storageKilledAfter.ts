import type { StudyStorage } from '../../contracts/StudyStorage.js';

/** What a write of a `storageKilledAfter` storage throws in place of the write the killed process never made. */
export class ProcessKilled extends Error {}

/**
 * `storage` as a process killed (kill -9) after `writesBeforeKill` writes leaves it: each of its
 * methods is one write (one SQLite transaction in `SqliteStorage`), and the next write throws
 * `ProcessKilled` instead of happening. Reads go through.
 */
export function storageKilledAfter(storage: StudyStorage, writesBeforeKill: number): StudyStorage {
  let writes = 0;
  return new Proxy(storage, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const isWrite = typeof property === 'string' && /^(create|set|delete)/.test(property);
      return (...args: unknown[]): unknown => {
        if (isWrite && writes++ === writesBeforeKill) throw new ProcessKilled();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
