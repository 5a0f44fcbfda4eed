/**
 * Entry module of the thread `TrialWorker` starts: assembles the pipeline from the config once
 * (reporting `ready` or `setupFailed`), then runs the trials it is sent, one at a time. Not part
 * of the package API.
 */
import 'reflect-metadata';
import { parentPort, workerData } from 'node:worker_threads';
import { container } from 'tsyringe';
import { loadConfig } from '../config/loadConfig.js';
import type { Logger } from '../contracts/Logger.js';
import { executeTrial, type TrialRequest } from './executeTrial.js';
import { PassOutputCache } from './PassOutputCache.js';
import { preparePipeline, type PreparedPipeline } from './preparePipeline.js';
import type { TrialWorkerData, TrialWorkerMessage } from './TrialWorker.js';
import { withPassOptions } from './withPassOptions.js';

const data = workerData as TrialWorkerData;
const post = (message: TrialWorkerMessage): void => parentPort?.postMessage(message);
const forward = (level: keyof Logger) => (message: string): void => post({ type: 'log', level, message });
const logger: Logger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
const cache = data.cacheDir === undefined ? undefined : new PassOutputCache(data.cacheDir);
const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function prepare(): Promise<PreparedPipeline> {
  const loaded = withPassOptions(await loadConfig(data.configFile), data.passOptions);
  return preparePipeline(loaded, { container: container.createChildContainer(), logger, ...(data.engine === undefined ? {} : { engine: data.engine }) });
}

// Set up once, at start; a failure is reported once and the thread runs nothing (the main thread
// discards it and starts a fresh one for the next trial).
let pipeline: PreparedPipeline | undefined;
const setUp = prepare().then(
  (prepared) => {
    pipeline = prepared;
    post({ type: 'ready' });
  },
  (error: unknown) => post({ type: 'setupFailed', message: describe(error) }),
);

parentPort?.on('message', (request: TrialRequest) => {
  void (async () => {
    await setUp;
    if (pipeline === undefined) return;
    const hitsBefore = cache?.hits ?? 0;
    const missesBefore = cache?.misses ?? 0;
    try {
      const measurement = await executeTrial(pipeline, request, {
        logger,
        cache,
        onStep: (step) => post({ type: 'step', trialNumber: request.trialNumber, step }),
      });
      post({ type: 'result', trialNumber: request.trialNumber, measurement, cacheHits: (cache?.hits ?? 0) - hitsBefore, cacheMisses: (cache?.misses ?? 0) - missesBefore });
    } catch (error) {
      post({ type: 'error', trialNumber: request.trialNumber, message: describe(error) });
    }
  })();
});
