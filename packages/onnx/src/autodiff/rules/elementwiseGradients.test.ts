import { describe, expect, it } from 'vitest';
import { DataType } from '../../proto.js';
import { checkGradients } from '../test-support/checkGradients.js';

describe('elementwiseGradients', () => {
  it('should give the gradient of Add with broadcasting', async () => {
    const result = await checkGradients({
      nodes: [{ op: 'Add', inputs: ['a', 'b'], outputs: ['y'] }],
      inputs: [
        { name: 'a', dims: [2, 3, 4] },
        { name: 'b', dims: [3, 1] },
      ],
      outputs: ['y'],
    });
    console.log(result.precision, result.maxRelativeError);
    expect(result.maxRelativeError).toBeLessThan(1e-3);
  });
});
