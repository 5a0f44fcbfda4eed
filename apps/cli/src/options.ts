import { InvalidArgumentError } from 'commander';

/** Commander parser for options that take a positive whole number (`--batch 32`). */
export function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}".`);
  }
  return n;
}
