import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { Logger } from '../contracts/Logger.js';
import { RuntimeExecutionError } from '../errors/errors.js';
import type { TrialMeasurement, TrialRequest } from './executeTrial.js';

/** What the worker thread is started with: enough to assemble the pipeline from the config itself. */
export interface TrialWorkerData {
  readonly configFile: string;
  readonly engine: string | undefined;
  /** The pass-output cache folder, or undefined for none. */
  readonly cacheDir: string | undefined;
  /** Options merged over each pass's `with:` (by the pass's index in the config), for the final recovery; undefined for none. */
  readonly passOptions?: ReadonlyArray<Readonly<Record<string, JsonValue>> | undefined>;
}

/** Messages the worker thread sends. */
export type TrialWorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'setupFailed'; readonly message: string }
  | { readonly type: 'step'; readonly trialNumber: number; readonly step: string }
  | { readonly type: 'log'; readonly level: keyof Logger; readonly message: string }
  | { readonly type: 'result'; readonly trialNumber: number; readonly measurement: TrialMeasurement; readonly cacheHits: number; readonly cacheMisses: number }
  | { readonly type: 'error'; readonly trialNumber: number; readonly message: string };

export interface TrialWorkerOptions extends TrialWorkerData {
  /** Heap limit of the worker's JavaScript (onnxruntime's native buffers are not counted), in MB. */
  readonly memoryLimitMb: number | undefined;
  /**
   * Resident memory of the whole process (this thread, the trial worker, and native buffers such
   * as onnxruntime's), in MB, sampled every 100 ms while a trial runs: above it the trial is
   * stopped. Undefined for none.
   */
  readonly rssLimitMb?: number | undefined;
  readonly logger: Logger;
}

/** How often the resident memory is sampled while a trial runs, in ms. */
const rssSampleIntervalMs = 100;
/** How long a failed trial waits for its thread to be terminated before the next one may start, in ms. */
const terminationWaitMs = 5000;

/** How one trial is run: its timeout, its progress callback, and a signal that stops it. */
export interface TrialWorkerRunOptions {
  readonly timeoutMs: number | undefined;
  readonly onStep?: (step: string) => void;
  /** Aborting stops the trial at once (the thread is terminated) and rejects. */
  readonly signal?: AbortSignal;
}

/**
 * Runs trials in a worker thread that assembles the plugins from the config on its own, so that a
 * trial that hangs or runs out of memory is stopped (the thread is terminated and the next trial
 * gets a new one) while the main thread keeps the study, the progress display and Ctrl-C. The
 * thread is kept between trials: plugins, engine and datasets are loaded once per thread.
 *
 * A thread that fails before its pipeline is set up (a plugin that does not load in a worker, a
 * crash while loading the data, a timeout while setting up) is discarded like any failed one, so
 * the next trial tries a fresh thread; `setupFailuresInARow` counts such failures until a thread
 * sets up, for the caller to give up on a cause that does not go away.
 */
export class TrialWorker {
  readonly #options: TrialWorkerOptions;
  #worker: Worker | undefined;
  /** Whether `#worker` has reported its pipeline set up. */
  #ready = false;
  #setupFailuresInARow = 0;
  cacheHits = 0;
  cacheMisses = 0;

  constructor(options: TrialWorkerOptions) {
    this.#options = options;
  }

  /** Threads that failed before setting up their pipeline since the last one that did (0 once one sets up). */
  get setupFailuresInARow(): number {
    return this.#setupFailuresInARow;
  }

  /** Runs one trial; rejects with the trial's error, or a RuntimeExecutionError when it timed out, was aborted or the thread died. */
  run(request: TrialRequest, options: TrialWorkerRunOptions): Promise<TrialMeasurement> {
    if (options.signal?.aborted === true) return Promise.reject(abortedError(request, options.signal));
    if (this.#worker === undefined) {
      this.#worker = startWorker(this.#options);
      this.#ready = false;
    }
    const worker = this.#worker;
    return new Promise<TrialMeasurement>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let sampler: NodeJS.Timeout | undefined;
      worker.ref();
      const finish = (): void => {
        worker.unref();
        if (timer !== undefined) clearTimeout(timer);
        if (sampler !== undefined) clearInterval(sampler);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        options.signal?.removeEventListener('abort', onAbort);
      };
      // The thread is gone or unusable: the next trial starts a new one.
      const fail = (error: Error): void => {
        finish();
        if (this.#worker === worker) {
          this.#worker = undefined;
          if (!this.#ready) this.#setupFailuresInARow++;
        }
        // Settle once the thread is gone, so the next trial does not start beside its memory; a
        // thread stuck in native code is not waited for longer than terminationWaitMs.
        let waited: NodeJS.Timeout | undefined;
        const gone = new Promise<void>((settle) => {
          waited = setTimeout(settle, terminationWaitMs);
          worker.terminate().then(() => settle(), () => settle());
        });
        void gone.then(() => {
          clearTimeout(waited);
          reject(error);
        });
      };
      const onMessage = (message: TrialWorkerMessage): void => {
        if (message.type === 'log') {
          this.#options.logger[message.level](message.message);
        } else if (message.type === 'ready') {
          this.#ready = true;
          this.#setupFailuresInARow = 0;
        } else if (message.type === 'setupFailed') {
          fail(new RuntimeExecutionError(`Trial ${request.trialNumber} did not run: the trial worker could not set up the pipeline of ${this.#options.configFile}: ${message.message}`));
        } else if (message.type === 'step') {
          options.onStep?.(message.step);
        } else if (message.type === 'result') {
          finish();
          this.cacheHits += message.cacheHits;
          this.cacheMisses += message.cacheMisses;
          resolve(message.measurement);
        } else {
          finish();
          reject(new RuntimeExecutionError(message.message));
        }
      };
      const onError = (error: Error): void => {
        const outOfMemory = (error as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
        fail(
          new RuntimeExecutionError(
            outOfMemory
              ? `Trial ${request.trialNumber} ran out of memory (the trial worker's limit is ${this.#options.memoryLimitMb ?? 'the default'} MB); raise the memory limit or shrink the data.`
              : `Trial ${request.trialNumber}'s worker failed: ${error.message}`,
            { cause: error },
          ),
        );
      };
      const onExit = (code: number): void => {
        fail(new RuntimeExecutionError(`Trial ${request.trialNumber}'s worker exited (code ${code}) before reporting a result.`));
      };
      const onAbort = (): void => {
        fail(abortedError(request, options.signal));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        const timeoutMs = options.timeoutMs;
        timer = setTimeout(() => {
          fail(
            new RuntimeExecutionError(
              `Trial ${request.trialNumber} timed out after ${timeoutMs / 1000} s and was stopped; raise the trial timeout if such trials are expected to take longer.`,
            ),
          );
        }, timeoutMs);
      }
      const rssLimitMb = this.#options.rssLimitMb;
      if (rssLimitMb !== undefined) {
        // Worker threads share the process: its resident set is the only figure that counts the
        // trial's native memory (onnxruntime's tensors and arenas), which the heap limit does not.
        const checkRss = (): void => {
          const rssMb = process.memoryUsage.rss() / 2 ** 20;
          if (rssMb <= rssLimitMb) return;
          fail(
            new RuntimeExecutionError(
              `Trial ${request.trialNumber} was stopped: the process's resident memory reached ${Math.round(rssMb)} MB, over the limit of ${rssLimitMb} MB ` +
                "(it counts this process's main thread, the trial worker and onnxruntime's native buffers); raise the limit or shrink the data or the batch.",
            ),
          );
        };
        sampler = setInterval(checkRss, rssSampleIntervalMs);
        sampler.unref();
      }
      try {
        worker.postMessage(request);
      } catch (error) {
        fail(new RuntimeExecutionError(`Trial ${request.trialNumber} could not be sent to its worker: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
      }
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

function abortedError(request: TrialRequest, signal: AbortSignal | undefined): RuntimeExecutionError {
  return new RuntimeExecutionError(`Trial ${request.trialNumber} was stopped: the run was aborted.`, { cause: signal?.reason });
}

function startWorker(options: TrialWorkerOptions): Worker {
  const workerData: TrialWorkerData = { configFile: options.configFile, engine: options.engine, cacheDir: options.cacheDir, ...(options.passOptions === undefined ? {} : { passOptions: options.passOptions }) };
  const resourceLimits = options.memoryLimitMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.memoryLimitMb } };
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(`./trialWorkerMain.${fromSources ? 'ts' : 'js'}`, import.meta.url);
  const worker = fromSources
    ? // From TypeScript sources (vitest, tsx): register tsx's loader in the thread first, and
      // resolve the workspace packages to their sources as the test setup does.
      new Worker(`import(${JSON.stringify(tsxEsmApi())}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`, {
        eval: true,
        workerData,
        execArgv: ['--conditions=@open-autoglm/source'],
        ...resourceLimits,
      })
    : new Worker(entry, { workerData, ...resourceLimits });
  // An idle thread between trials must not keep the process alive.
  worker.unref();
  return worker;
}

/** The file URL of tsx's ESM loader API, read from its exports (the CommonJS build cannot be imported in a worker). */
function tsxEsmApi(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports?: Record<string, { import?: { default?: string } } | string> };
  const entry = manifest.exports?.['./esm/api'];
  const relative = typeof entry === 'object' ? entry.import?.default : undefined;
  if (relative === undefined) {
    throw new RuntimeExecutionError(
      `tsx at ${path.dirname(manifestPath)} has no "./esm/api" import export, which running trial workers from TypeScript sources needs. Build the packages (npm run build) and use the built ones.`,
    );
  }
  return pathToFileURL(path.join(path.dirname(manifestPath), relative)).href;
}
