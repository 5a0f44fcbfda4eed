import { describe, expect, it } from 'vitest';
import { ConfigError, SeededRandom } from '@open-autoglm/core';
import {
  applyImageTransforms,
  augmentationRandom,
  augmentImageBatch,
  checkImageAugmentation,
  drawImageTransforms,
  type ImageTransform,
  isIdentityAugmentation,
} from './ImageAugmentation.js';

/** A 3x3 image 1..9, row by row. */
const IMAGE = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);

/**
 * Reference: the random crop as torchvision writes it. Pad the (mirrored) image by `pad` on every
 * side (zeros, or numpy's `edge` mode), then cut the HxW window starting at (pad - dy, pad - dx).
 */
function padAndCrop(image: readonly number[], height: number, width: number, pad: number, mode: 'zero' | 'edge', t: ImageTransform): number[] {
  const mirrored = image.map((_, i) => {
    const y = Math.floor(i / width);
    const x = i % width;
    return image[y * width + (t.flip ? width - 1 - x : x)] as number;
  });
  const paddedWidth = width + 2 * pad;
  const padded: number[] = [];
  for (let y = -pad; y < height + pad; y++) {
    for (let x = -pad; x < width + pad; x++) {
      const inside = y >= 0 && y < height && x >= 0 && x < width;
      const cy = Math.min(height - 1, Math.max(0, y));
      const cx = Math.min(width - 1, Math.max(0, x));
      padded.push(inside || mode === 'edge' ? (mirrored[cy * width + cx] as number) : 0);
    }
  }
  const crop: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) crop.push(padded[(y + pad - t.dy) * paddedWidth + (x + pad - t.dx)] as number);
  }
  return crop;
}

describe('applyImageTransforms', () => {
  it('should shift an image down by one row with zeros shifted in', () => {
    expect([...applyImageTransforms(IMAGE, [1, 1, 3, 3], [{ dy: 1, dx: 0, flip: false }])]).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 6]);
  });

  it('should mirror, then shift right by one, repeating the border column with edge padding', () => {
    // Mirrored: 3 2 1 / 6 5 4 / 9 8 7; shifted right by one, the left column repeats.
    expect([...applyImageTransforms(IMAGE, [1, 1, 3, 3], [{ dy: 0, dx: 1, flip: true }], 'edge')]).toEqual([3, 3, 2, 6, 6, 5, 9, 9, 8]);
  });

  it('should shift up and left with zero padding, and leave the image as it is for the identity', () => {
    expect([...applyImageTransforms(IMAGE, [1, 1, 3, 3], [{ dy: -1, dx: -1, flip: false }])]).toEqual([5, 6, 0, 8, 9, 0, 0, 0, 0]);
    expect([...applyImageTransforms(IMAGE, [1, 1, 3, 3], [{ dy: 0, dx: 0, flip: false }])]).toEqual([...IMAGE]);
  });

  it('should move all channels of a sample alike and each sample by its own transform', () => {
    const tens = IMAGE.map((v) => v * 10);
    const twoChannels = applyImageTransforms(Float32Array.from([...IMAGE, ...tens]), [1, 2, 3, 3], [{ dy: 0, dx: -1, flip: false }]);
    expect([...twoChannels]).toEqual([2, 3, 0, 5, 6, 0, 8, 9, 0, 20, 30, 0, 50, 60, 0, 80, 90, 0]);
    const twoSamples = applyImageTransforms(Float32Array.from([...IMAGE, ...tens]), [2, 1, 3, 3], [
      { dy: 0, dx: 0, flip: true },
      { dy: 1, dx: 0, flip: false },
    ]);
    expect([...twoSamples]).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7, 0, 0, 0, 10, 20, 30, 40, 50, 60]);
  });

  it('should agree with pad-and-crop on every shift of up to 2 pixels, mirrored or not, for both paddings', () => {
    const random = new SeededRandom(11);
    const [height, width] = [5, 4];
    const image = Array.from({ length: height * width }, () => Math.round(random.nextFloat() * 100));
    for (const padding of ['zero', 'edge'] as const) {
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          for (const flip of [false, true]) {
            const t = { dy, dx, flip };
            const out = applyImageTransforms(Float32Array.from(image), [1, 1, height, width], [t], padding);
            expect([...out], JSON.stringify({ padding, ...t })).toEqual(padAndCrop(image, height, width, 2, padding, t));
          }
        }
      }
    }
  });

  it('should refuse a batch that is not [N, C, H, W], data that does not fill it, a missing transform, and writing in place', () => {
    expect(() => applyImageTransforms(IMAGE, [1, 9], [{ dy: 0, dx: 0, flip: false }])).toThrow(ConfigError);
    expect(() => applyImageTransforms(IMAGE, [1, 9], [{ dy: 0, dx: 0, flip: false }])).toThrow(/shape \[1, 9\].*\[N, C, H, W\]/);
    expect(() => applyImageTransforms(IMAGE, [1, 1, 3, 4], [{ dy: 0, dx: 0, flip: false }])).toThrow(/holds 12 values, but its data has 9/);
    expect(() => applyImageTransforms(IMAGE, [1, 1, 3, 3], [])).toThrow(/one transform per sample/);
    expect(() => applyImageTransforms(IMAGE, [1, 1, 3, 3], [{ dy: 0, dx: 0, flip: false }], 'zero', IMAGE)).toThrow(/target array of its own/);
  });
});

describe('drawImageTransforms', () => {
  it('should draw every shift in [-translate, translate] and flip about half of the samples', () => {
    const transforms = drawImageTransforms({ translate: 2, flip: true }, 4000, new SeededRandom(5));
    const shifts = new Set(transforms.flatMap((t) => [t.dy, t.dx]));
    expect([...shifts].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2]);
    const flipped = transforms.filter((t) => t.flip).length / transforms.length;
    expect(flipped).toBeGreaterThan(0.46);
    expect(flipped).toBeLessThan(0.54);
  });

  it('should draw no shift without translate and no flip without flip', () => {
    expect(drawImageTransforms({ flip: false }, 3, new SeededRandom(1))).toEqual(Array(3).fill({ dy: 0, dx: 0, flip: false }));
    expect(drawImageTransforms({ translate: 1 }, 50, new SeededRandom(1)).some((t) => t.flip)).toBe(false);
  });
});

describe('augmentationRandom', () => {
  it('should give the same augmentation for the same seed and update, and another for another update or seed', () => {
    const batch = Float32Array.from({ length: 8 * 2 * 6 * 6 }, (_, i) => i);
    const dims = [8, 2, 6, 6];
    const augmentation = { translate: 2, flip: true };
    const of = (seed: number, update: number): number[] => [...augmentImageBatch(batch, dims, augmentation, augmentationRandom(seed, update))];
    expect(of(3, 17)).toEqual(of(3, 17));
    expect(of(3, 18)).not.toEqual(of(3, 17));
    expect(of(4, 17)).not.toEqual(of(3, 17));
    expect(augmentationRandom(3, 17).state).not.toEqual(new SeededRandom(3).state); // not the shuffling stream
  });
});

describe('checkImageAugmentation', () => {
  it('should refuse a negative or fractional shift and an unknown padding', () => {
    expect(() => checkImageAugmentation({ translate: -1 })).toThrow(/whole number >= 0, got -1/);
    expect(() => checkImageAugmentation({ translate: 1.5 })).toThrow(ConfigError);
    expect(() => checkImageAugmentation({ padding: 'reflect' as 'zero' })).toThrow(/'zero' or 'edge', got "reflect"/);
    expect(() => checkImageAugmentation({ translate: 2, padding: 'edge', flip: true })).not.toThrow();
  });

  it('should call an augmentation without shift and flip the identity', () => {
    expect(isIdentityAugmentation({})).toBe(true);
    expect(isIdentityAugmentation({ translate: 0, flip: false, padding: 'edge' })).toBe(true);
    expect(isIdentityAugmentation({ flip: true })).toBe(false);
    expect(isIdentityAugmentation({ translate: 1 })).toBe(false);
  });
});
