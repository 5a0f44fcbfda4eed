import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../contracts/Logger.js';
import { RuntimeExecutionError } from '../errors/errors.js';
import type { TrialMeasurement, TrialRequest } from './executeTrial.js';

/** What the worker thread is started with: enough to assemble the pipeline from the config itself. */
export interface TrialWorkerData {
  readonly configFile: string;
  readonly engine: string | undefined;
  /** The pass-output cache folder, or undefined for none. */
  readonly cacheDir: string | undefined;
}

/** Messages the worker thread sends. */
export type TrialWorkerMessage =
  | { readonly type: 'step'; readonly trialNumber: number; readonly step: string }
  | { readonly type: 'log'; readonly level: keyof Logger; readonly message: string }
  | { readonly type: 'result'; readonly trialNumber: number; readonly measurement: TrialMeasurement; readonly cacheHits: number; readonly cacheMisses: number }
  | { readonly type: 'error'; readonly trialNumber: number; readonly message: string };

export interface TrialWorkerOptions extends TrialWorkerData {
  /** Heap limit of the worker's JavaScript (onnxruntime's native buffers are not counted), in MB. */
  readonly memoryLimitMb: number | undefined;
  readonly logger: Logger;
}

/**
 * Runs trials in a worker thread that assembles the plugins from the config on its own, so that a
 * trial that hangs or runs out of memory is stopped (the thread is terminated and the next trial
 * gets a new one) while the main thread keeps the study, the progress display and Ctrl-C. The
 * thread is kept between trials: plugins, engine and datasets are loaded once per thread.
 */
export class TrialWorker {
  readonly #options: TrialWorkerOptions;
  #worker: Worker | undefined;
  cacheHits = 0;
  cacheMisses = 0;

  constructor(options: TrialWorkerOptions) {
    this.#options = options;
  }

  /** Runs one trial; rejects with the trial's error, or a RuntimeExecutionError when it timed out or the thread died. */
  run(request: TrialRequest, options: { readonly timeoutMs: number | undefined; readonly onStep?: (step: string) => void }): Promise<TrialMeasurement> {
    const worker = (this.#worker ??= startWorker(this.#options));
    return new Promise<TrialMeasurement>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      worker.ref();
      const finish = (): void => {
        worker.unref();
        if (timer !== undefined) clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const discard = (): void => {
        // The thread is gone or unusable: the next trial starts a new one.
        if (this.#worker === worker) this.#worker = undefined;
        void worker.terminate();
      };
      const onMessage = (message: TrialWorkerMessage): void => {
        if (message.type === 'log') {
          this.#options.logger[message.level](message.message);
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
        finish();
        discard();
        const outOfMemory = (error as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
        reject(
          new RuntimeExecutionError(
            outOfMemory
              ? `Trial ${request.trialNumber} ran out of memory (the trial worker's limit is ${this.#options.memoryLimitMb ?? 'the default'} MB); raise the memory limit or shrink the data.`
              : `Trial ${request.trialNumber}'s worker failed: ${error.message}`,
            { cause: error },
          ),
        );
      };
      const onExit = (code: number): void => {
        finish();
        discard();
        reject(new RuntimeExecutionError(`Trial ${request.trialNumber}'s worker exited (code ${code}) before reporting a result.`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          finish();
          discard();
          reject(
            new RuntimeExecutionError(
              `Trial ${request.trialNumber} timed out after ${(options.timeoutMs ?? 0) / 1000} s and was stopped; raise the trial timeout if such trials are expected to take longer.`,
            ),
          );
        }, options.timeoutMs);
      }
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

function startWorker(options: TrialWorkerOptions): Worker {
  const workerData: TrialWorkerData = { configFile: options.configFile, engine: options.engine, cacheDir: options.cacheDir };
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
