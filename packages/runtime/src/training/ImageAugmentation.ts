import { ConfigError, SeededRandom } from '@open-autoglm/core';

/**
 * Random image augmentation applied to every training batch as it is fed (see
 * `TrainerOptions.augmentation`): each sample of a float32 NCHW batch is mirrored and shifted on
 * its own, all its channels alike. Evaluation data is never augmented.
 */
export interface ImageAugmentation {
  /**
   * Shift every image by a whole number of pixels drawn uniformly from [-translate, translate],
   * independently along height and width: the random crop of an image padded by `translate` on
   * every side. Default 0 (no shift).
   */
  readonly translate?: number;
  /** What the pixels shifted in from outside the image take: 0 (`zero`, the default) or the nearest border pixel (`edge`). */
  readonly padding?: 'zero' | 'edge';
  /** Mirror every image left-right (along width) with probability 1/2; default false. */
  readonly flip?: boolean;
}

/** One sample's draw: output pixel (y, x) reads input pixel (y - dy, x - dx) of the image, mirrored first when `flip`. */
export interface ImageTransform {
  readonly dy: number;
  readonly dx: number;
  readonly flip: boolean;
}

/** ConfigError unless `augmentation` is well formed (`translate` a whole number >= 0, `padding` zero or edge). */
export function checkImageAugmentation(augmentation: ImageAugmentation): void {
  const translate = augmentation.translate ?? 0;
  if (!Number.isSafeInteger(translate) || translate < 0) {
    throw new ConfigError(`Augmentation translate is a number of pixels, a whole number >= 0, got ${String(translate)}.`);
  }
  if (augmentation.padding !== undefined && augmentation.padding !== 'zero' && augmentation.padding !== 'edge') {
    throw new ConfigError(`Augmentation padding is 'zero' or 'edge', got ${JSON.stringify(augmentation.padding)}.`);
  }
}

/** True when `augmentation` changes nothing (no shift, no flip). */
export function isIdentityAugmentation(augmentation: ImageAugmentation): boolean {
  return (augmentation.translate ?? 0) === 0 && augmentation.flip !== true;
}

/**
 * The generator of the augmentation of update `update` (1-based) of a run seeded `seed`: a
 * function of the two numbers alone, so a resumed run redraws the same augmentation for every
 * update, whatever came before. It mixes the SplitMix-expanded states of both numbers, and is
 * independent of the run's shuffling stream (`new SeededRandom(seed)`) because update >= 1.
 */
export function augmentationRandom(seed: number, update: number): SeededRandom {
  const ofSeed = new SeededRandom(seed).state;
  const ofUpdate = new SeededRandom(update).state;
  const words = ofSeed.map((word, i) => (word ^ (ofUpdate[i] as number)) >>> 0) as unknown as [number, number, number, number];
  if (words.every((w) => w === 0)) words[0] = 1;
  return SeededRandom.fromState(words);
}

/** One transform per sample: draws dy, then dx (when translating), then the flip (when flipping), sample after sample. */
export function drawImageTransforms(augmentation: ImageAugmentation, samples: number, random: SeededRandom): ImageTransform[] {
  checkImageAugmentation(augmentation);
  const translate = augmentation.translate ?? 0;
  const transforms: ImageTransform[] = [];
  for (let n = 0; n < samples; n++) {
    const dy = translate > 0 ? random.nextInt(2 * translate + 1) - translate : 0;
    const dx = translate > 0 ? random.nextInt(2 * translate + 1) - translate : 0;
    const flip = augmentation.flip === true && random.nextFloat() < 0.5;
    transforms.push({ dy, dx, flip });
  }
  return transforms;
}

/**
 * Writes `images` (float32 [N, C, H, W], row-major) with sample n transformed by `transforms[n]`
 * into `target` (a new array when not given; never `images` itself). ConfigError when the batch
 * is not 4-D, its data does not fill `dims`, or there is not one transform per sample.
 */
export function applyImageTransforms(
  images: Float32Array,
  dims: readonly number[],
  transforms: readonly ImageTransform[],
  padding: 'zero' | 'edge' = 'zero',
  target: Float32Array = new Float32Array(images.length),
): Float32Array {
  checkImageBatch(images, dims, 'augment');
  const [samples, channels, height, width] = dims as [number, number, number, number];
  if (transforms.length !== samples) {
    throw new ConfigError(`An image batch of ${samples} samples needs one transform per sample, got ${transforms.length}.`);
  }
  if (target.length !== images.length || target === images) {
    throw new ConfigError('The augmented batch needs a target array of its own, as long as the batch.');
  }
  const plane = height * width;
  for (let n = 0; n < samples; n++) {
    const { dy, dx, flip } = transforms[n] as ImageTransform;
    for (let c = 0; c < channels; c++) {
      const base = (n * channels + c) * plane;
      for (let y = 0; y < height; y++) {
        let sy = y - dy;
        const rowOutside = sy < 0 || sy >= height;
        if (rowOutside && padding === 'zero') {
          target.fill(0, base + y * width, base + (y + 1) * width);
          continue;
        }
        sy = sy < 0 ? 0 : sy >= height ? height - 1 : sy;
        for (let x = 0; x < width; x++) {
          let sx = x - dx;
          if (sx < 0 || sx >= width) {
            if (padding === 'zero') {
              target[base + y * width + x] = 0;
              continue;
            }
            sx = sx < 0 ? 0 : width - 1;
          }
          target[base + y * width + x] = images[base + sy * width + (flip ? width - 1 - sx : sx)] as number;
        }
      }
    }
  }
  return target;
}

/** Draws and applies the augmentation of one batch: `applyImageTransforms(images, dims, drawImageTransforms(...))`. */
export function augmentImageBatch(
  images: Float32Array,
  dims: readonly number[],
  augmentation: ImageAugmentation,
  random: SeededRandom,
  target?: Float32Array,
): Float32Array {
  checkImageBatch(images, dims, 'augment');
  const transforms = drawImageTransforms(augmentation, dims[0] as number, random);
  return applyImageTransforms(images, dims, transforms, augmentation.padding ?? 'zero', target);
}

function checkImageBatch(images: Float32Array, dims: readonly number[], what: string): void {
  if (dims.length !== 4 || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ConfigError(
      `Cannot ${what} a batch of shape [${dims.join(', ')}]: image augmentation takes float32 images [N, C, H, W]. ` +
        'Turn augmentation off for data that is not images.',
    );
  }
  const size = dims.reduce((a, b) => a * b, 1);
  if (images.length !== size) {
    throw new ConfigError(`An image batch of shape [${dims.join(', ')}] holds ${size} values, but its data has ${images.length}.`);
  }
}
