import * as tf from '@tensorflow/tfjs';

/**
 * The tfjs namespace the agents compute with. The pure-JS CPU backend is enough for networks of
 * this size; `useNativeTensorflow` switches to tfjs-node / tfjs-node-gpu when the user installed
 * them. tfjs' "install the node backend" banner is silenced: it is advice, not a problem.
 */
tf.env().set('PROD', true);

export { tf };

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
