import { UnsupportedOperationError } from '@open-autoglm/core';
import { describeNode } from '../../OnnxGraph.js';
import type { GraphBuilderContext } from '../GradientRule.js';

/**
 * The rank of a forward tensor, which most rules need to build axes; a tensor whose rank shape
 * inference could not follow stops the build with a message saying how to fix the model.
 */
export function rankOf(c: GraphBuilderContext, name: string): number {
  const dims = c.dims(name);
  if (dims === undefined) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: the rank of "${name}" is unknown. ` +
        'Declare the shapes of the model inputs so shape inference can follow them, then rebuild the step.',
    );
  }
  return dims.length;
}
