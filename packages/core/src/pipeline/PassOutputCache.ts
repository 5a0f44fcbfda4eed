import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PassReport } from '../contracts/Pass.js';
import type { TrialParams } from '../contracts/SearchSpace.js';
import { writeOutputFile } from './writeOutputFile.js';

/** A pass output found in the cache. */
export interface CachedPassOutput {
  readonly bytes: Uint8Array;
  readonly report: PassReport;
}

/**
 * Pass outputs on disk, keyed by a hash of (input model bytes, pass identity, parameters): two
 * trials that share a prefix of the pipeline (the same pruning, then different quantization)
 * compute the shared prefix once, and a resumed run finds what the killed one computed.
 */
export class PassOutputCache {
  hits = 0;
  misses = 0;

  constructor(readonly folder: string) {}

  /** The key of applying `pass` (name, version and options) with `params` to `input`. */
  static key(input: Uint8Array, passIdentity: string, params: TrialParams): string {
    const modelHash = createHash('sha256').update(input).digest('hex');
    const sortedParams = Object.fromEntries(Object.entries(params).sort(([a], [b]) => a.localeCompare(b)));
    return createHash('sha256').update(`${modelHash}\n${passIdentity}\n${JSON.stringify(sortedParams)}`).digest('hex');
  }

  async get(key: string): Promise<CachedPassOutput | undefined> {
    try {
      const [bytes, report] = await Promise.all([readFile(this.#file(key, 'onnx')), readFile(this.#file(key, 'json'), 'utf8')]);
      this.hits++;
      return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), report: JSON.parse(report) as PassReport };
    } catch {
      // A missing or unreadable entry is a miss: the pass simply runs again.
      this.misses++;
      return undefined;
    }
  }

  async put(key: string, output: CachedPassOutput): Promise<void> {
    // The model first: an entry counts as present only once its report exists.
    await writeOutputFile(this.#file(key, 'onnx'), output.bytes);
    await writeOutputFile(this.#file(key, 'json'), JSON.stringify(output.report));
  }

  #file(key: string, extension: string): string {
    return path.join(this.folder, `${key}.${extension}`);
  }
}
