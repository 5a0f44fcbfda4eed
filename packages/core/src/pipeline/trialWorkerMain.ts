/**
 * Entry module of the thread `TrialWorker` starts: assembles the pipeline from the config once,
 * then runs the trials it is sent, one at a time. Not part of the package API.
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

const data = workerData as TrialWorkerData;
const post = (message: TrialWorkerMessage): void => parentPort?.postMessage(message);
const forward = (level: keyof Logger) => (message: string): void => post({ type: 'log', level, message });
const logger: Logger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
const cache = data.cacheDir === undefined ? undefined : new PassOutputCache(data.cacheDir);

let pipeline: Promise<PreparedPipeline> | undefined;

parentPort?.on('message', (request: TrialRequest) => {
  void (async () => {
    const hitsBefore = cache?.hits ?? 0;
    const missesBefore = cache?.misses ?? 0;
    try {
      pipeline ??= loadConfig(data.configFile).then((loaded) =>
        preparePipeline(loaded, { container: container.createChildContainer(), logger, ...(data.engine === undefined ? {} : { engine: data.engine }) }),
      );
      const measurement = await executeTrial(await pipeline, request, {
        logger,
        cache,
        onStep: (step) => post({ type: 'step', trialNumber: request.trialNumber, step }),
      });
      post({ type: 'result', trialNumber: request.trialNumber, measurement, cacheHits: (cache?.hits ?? 0) - hitsBefore, cacheMisses: (cache?.misses ?? 0) - missesBefore });
    } catch (error) {
      post({ type: 'error', trialNumber: request.trialNumber, message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
