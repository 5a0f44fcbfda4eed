// @ts-check
// A minimal strategy plugin for the CLI tests (real strategies come from search-bayes and
// search-rl): it proposes the lower corner of the search space, the same every trial.
import { StrategyToken, definePlugin, registerValue } from '@open-autoglm/core';
import * as z from 'zod';

/** @type {import('@open-autoglm/core').Strategy} */
const lowerCornerStrategy = {
  async ask(study) {
    /** @type {Record<string, import('@open-autoglm/core').ParameterValue>} */
    const params = {};
    for (const { name, distribution } of study.space) {
      const first = distribution.kind === 'categorical' ? distribution.choices[0] : distribution.low;
      if (first !== undefined) params[name] = first;
    }
    return params;
  },
  async tell() {},
};

export default definePlugin({
  name: 'autoglm-test-strategy',
  version: '0.0.0',
  description: 'test-only strategy: proposes the lower corner of the search space',
  provides: [StrategyToken],
  configSchema: z.strictObject({}),
  register(container) {
    registerValue(container, StrategyToken, lowerCornerStrategy);
  },
});
