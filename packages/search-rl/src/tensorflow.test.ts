import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { tf, useNativeTensorflow } from './tensorflow.js';

function installed(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}

describe('useNativeTensorflow', () => {
  const nativeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');
  it.skipIf(nativeInstalled)('should stay on the pure-JS CPU backend when neither tfjs-node nor tfjs-node-gpu is installed', async () => {
    expect(await useNativeTensorflow()).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    // Asking again reuses the first answer.
    expect(await useNativeTensorflow()).toBe('cpu');
  });
});
