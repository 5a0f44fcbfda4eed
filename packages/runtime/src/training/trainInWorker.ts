import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  AutoGlmError,
  ConfigError,
  DatasetError,
  ExternalDataError,
  FileAccessError,
  ModelFormatError,
  PluginError,
  RuntimeExecutionError,
  UnsupportedOperationError,
} from '@open-autoglm/core';
import type { TrainingJob, TrainingJobResult } from './runTrainingJob.js';
import type { TrainingEvent } from './Trainer.js';

/** What the worker receives. */
export interface TrainingWorkerData {
  readonly job: TrainingJob;
  /** One Int32: 1 asks the worker to stop at the next step boundary. */
  readonly stopFlag: SharedArrayBuffer;
}

/** An error as it crosses the thread boundary (structured cloning drops subclasses and fields). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly file: string | undefined;
  readonly isAutoGlmError: boolean;
}

/** Messages from the worker. */
export type TrainingWorkerMessage =
  | { readonly type: 'event'; readonly event: TrainingEvent }
  | { readonly type: 'result'; readonly result: TrainingJobResult }
  | { readonly type: 'error'; readonly error: SerializedError };

/** A training job running in a worker thread. */
export interface TrainingRun {
  /** Settles when the worker has finished: the job's result, or its error (same class as in the worker). */
  readonly result: Promise<TrainingJobResult>;
  /**
   * Asks the worker to finish the update in progress, write the checkpoint (when the job names
   * one) and end; `result` then resolves with `completed: false`.
   */
  stop(): void;
  /** Ends the worker at once (the update in progress and any checkpoint are lost). */
  terminate(): Promise<void>;
}

export interface TrainInWorkerOptions {
  /** Called on the calling thread for every step and epoch event. */
  readonly onEvent?: (event: TrainingEvent) => void;
}

/**
 * Runs `runTrainingJob(job)` in a worker thread, because onnxruntime's `session.run` blocks the
 * thread it runs on for a whole update: the calling thread stays free to draw progress and handle
 * Ctrl-C. Works from the built package and, for tests and development, from the TypeScript
 * sources (the worker then loads them through tsx, a development dependency of this repository).
 */
export function trainInWorker(job: TrainingJob, options: TrainInWorkerOptions = {}): TrainingRun {
  const stopFlag = new SharedArrayBuffer(4);
  const workerData: TrainingWorkerData = { job, stopFlag };
  const worker = startWorker(workerData);
  let settled = false;
  const result = new Promise<TrainingJobResult>((resolve, reject) => {
    worker.on('message', (message: TrainingWorkerMessage) => {
      if (message.type === 'event') options.onEvent?.(message.event);
      else if (message.type === 'result') {
        settled = true;
        resolve(message.result);
      } else {
        settled = true;
        reject(deserializeError(message.error));
      }
    });
    worker.on('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.on('exit', (code) => {
      if (!settled) {
        reject(new RuntimeExecutionError(`The training worker ended (exit code ${code}) before reporting a result.`));
      }
    });
  });
  return {
    result,
    stop: () => {
      Atomics.store(new Int32Array(stopFlag), 0, 1);
    },
    terminate: async () => {
      await worker.terminate();
    },
  };
}

function startWorker(workerData: TrainingWorkerData): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(`./trainingWorker.${fromSources ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSources) return new Worker(entry, { workerData, execArgv: withoutSourceConditions(process.execArgv) });
  // Running from TypeScript sources (vitest, tsx): register tsx's loader in the worker first, and
  // resolve the workspace packages to their sources as the test setup does.
  const tsx = tsxEsmApi();
  const bootstrap =
    `import(${JSON.stringify(tsx)}).then((api) => { api.register(); ` +
    `return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData, execArgv: ['--conditions=@open-autoglm/source'] });
}

/**
 * The file URL of tsx's ESM loader API (`tsx/esm/api`, import condition), read from its package
 * exports: `require.resolve` would give the CommonJS build, which cannot be imported in a worker.
 */
function tsxEsmApi(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    exports?: Record<string, { import?: { default?: string } } | string>;
  };
  const entry = manifest.exports?.['./esm/api'];
  const relative = typeof entry === 'object' ? entry.import?.default : undefined;
  if (relative === undefined) {
    throw new RuntimeExecutionError(
      `tsx at ${path.dirname(manifestPath)} has no "./esm/api" import export, which running the training worker from TypeScript sources needs. ` +
        'Install the tsx version of the repository (npm ci), or build the packages (npm run build) and use the built ones.',
    );
  }
  return pathToFileURL(path.join(path.dirname(manifestPath), relative)).href;
}

/**
 * The parent's Node flags minus the export conditions that point workspace packages at their
 * TypeScript sources (test runners add them): the built worker must load the built packages.
 */
function withoutSourceConditions(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    if (/^(--conditions|-C)=@open-autoglm\/source$/.test(arg)) continue;
    if ((arg === '--conditions' || arg === '-C') && execArgv[i + 1] === '@open-autoglm/source') {
      i++;
      continue;
    }
    kept.push(arg);
  }
  return kept;
}

const ERROR_CLASSES: Readonly<Record<string, new (message: string, options?: { file?: string }) => AutoGlmError>> = {
  ConfigError,
  DatasetError,
  ExternalDataError,
  FileAccessError,
  ModelFormatError,
  PluginError,
  RuntimeExecutionError,
  UnsupportedOperationError,
};

export function serializeError(error: unknown): SerializedError {
  const isError = error instanceof Error;
  return {
    name: isError ? error.name : 'Error',
    message: isError ? error.message : String(error),
    stack: isError ? error.stack : undefined,
    file: error instanceof AutoGlmError ? error.file : undefined,
    isAutoGlmError: error instanceof AutoGlmError,
  };
}

function deserializeError(serialized: SerializedError): Error {
  const options = serialized.file === undefined ? {} : { file: serialized.file };
  const Class = ERROR_CLASSES[serialized.name];
  const error =
    Class !== undefined
      ? new Class(serialized.message, options)
      : serialized.isAutoGlmError
        ? new AutoGlmError(serialized.message, options)
        : new Error(serialized.message);
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}
