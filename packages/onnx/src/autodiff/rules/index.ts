import type { GradientRuleTable } from '../GradientRule.js';
import { elementwiseGradients } from './elementwiseGradients.js';
import { linearAlgebraGradients } from './linearAlgebraGradients.js';
import { convolutionGradients } from './convolutionGradients.js';
import { poolingGradients } from './poolingGradients.js';
import { normalizationGradients } from './normalizationGradients.js';
import { softmaxGradients } from './softmaxGradients.js';
import { shapeGradients } from './shapeGradients.js';
import { indexingGradients } from './indexingGradients.js';
import { reductionGradients } from './reductionGradients.js';
import { dropoutGradients } from './dropoutGradients.js';
import { quantizationGradients } from './quantizationGradients.js';

/**
 * Every built-in gradient rule by op type (default ONNX domain): the table `buildTrainingStep`
 * uses unless a spec adds its own. Each rule file exports one `GradientRuleTable`, imported
 * above and spread in below (one line per file).
 */
export const gradientRules: GradientRuleTable = {
  ...elementwiseGradients,
  ...linearAlgebraGradients,
  ...convolutionGradients,
  ...poolingGradients,
  ...normalizationGradients,
  ...softmaxGradients,
  ...shapeGradients,
  ...indexingGradients,
  ...reductionGradients,
  ...dropoutGradients,
  ...quantizationGradients,
};
