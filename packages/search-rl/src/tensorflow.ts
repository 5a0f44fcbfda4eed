import * as tf from '@tensorflow/tfjs';

/**
 * The tfjs namespace the agents compute with. The pure-JS CPU backend is enough for networks of
 * this size; `useNativeTensorflow` switches to tfjs-node / tfjs-node-gpu when the user installed
 * them.
 */
export { tf };

let quieted = false;

/**
 * Called before the first tensor is made: tfjs' CPU backend prints an "install the node backend"
 * banner on first use in Node.js, which is advice, not a problem; production mode silences it
 * (and skips tfjs' debug checks). Not done on import, which has no side effects.
 */
export function quietTensorflow(): void {
  if (quieted) return;
  quieted = true;
  tf.env().set('PROD', true);
}

let nativeAttempt: Promise<string> | undefined;

/**
 * Loads @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node when one is installed and makes it
 * the backend; otherwise stays on the pure-JS CPU backend. Returns the backend in use. Results
 * differ in the last bits between backends, so a seeded search is reproducible per backend.
 */
export function useNativeTensorflow(): Promise<string> {
  nativeAttempt ??= (async () => {
    for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await import(name);
        if (await tf.setBackend('tensorflow')) return 'tensorflow';
      } catch {
        // Not installed (or not loadable here): try the next one, then stay on the CPU backend.
      }
    }
    await tf.setBackend('cpu');
    return 'cpu';
  })();
  return nativeAttempt;
}
