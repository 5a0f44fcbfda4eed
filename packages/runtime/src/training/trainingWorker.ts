/**
 * Entry module of the worker thread started by `trainInWorker`: runs one training job and
 * reports through the parent port. Not part of the package API.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runTrainingJob } from './runTrainingJob.js';
import { serializeError, type TrainingWorkerData, type TrainingWorkerMessage } from './trainInWorker.js';

const { job, stopFlag } = workerData as TrainingWorkerData;
const stop = new Int32Array(stopFlag);
const post = (message: TrainingWorkerMessage): void => parentPort?.postMessage(message);

try {
  const result = await runTrainingJob(job, {
    onEvent: (event) => post({ type: 'event', event }),
    // The main thread sets the flag; reading it needs no turn of this thread's event loop, which
    // onnxruntime keeps busy for the whole of every update.
    shouldStop: () => Atomics.load(stop, 0) === 1,
  });
  post({ type: 'result', result });
} catch (error) {
  post({ type: 'error', error: serializeError(error) });
}
