import * as z from 'zod';

/** The sampler names `search: { use: search-bayes, with: { sampler } }` accepts. */
export const samplerNames = ['random', 'tpe', 'gp', 'nsga2', 'motpe'] as const;

const tpeOnly = ['tpe', 'motpe'] as const;
const optionsBySampler: Readonly<Record<string, readonly string[]>> = {
  startupTrials: [...tpeOnly, 'gp'],
  eiCandidates: tpeOnly,
  multivariate: tpeOnly,
  constantLiar: tpeOnly,
  populationSize: ['nsga2'],
  crossover: ['nsga2'],
  lengthscalePrior: ['gp'],
  priorMean: ['gp'],
  startupDesign: ['gp', 'tpe'],
  goodWeights: ['tpe'],
};

/** Start-up designs each sampler has (the others' would be silently ignored, so they are refused). */
const startupDesignsBySampler: Readonly<Record<string, readonly string[]>> = {
  gp: ['latinHypercube', 'random'],
  tpe: ['halton', 'random'],
};

/** The plugin's `with:` options (strict: a misspelt key, or an option of another sampler, is an error). */
export const searchBayesOptionsSchema = z
  .strictObject({
    /** Which sampler proposes the trials. */
    sampler: z.enum(samplerNames).default('tpe'),
    /** How many trials to run. */
    trials: z.int().positive(),
    /** Makes the search reproducible. */
    seed: z.int().optional(),
    /** Random trials before the model takes over (TPE, MOTPE: 10; GP: 10). */
    startupTrials: z.int().min(0).optional(),
    /** Candidates scored per suggestion (TPE, MOTPE: 24). */
    eiCandidates: z.int().min(1).optional(),
    /** Model the parameters jointly (TPE, MOTPE). */
    multivariate: z.boolean().optional(),
    /** Treat running trials as bad ones, for parallel workers (TPE, MOTPE). */
    constantLiar: z.boolean().optional(),
    /** Individuals per generation (NSGA-II: 50). */
    populationSize: z.int().min(2).optional(),
    /** Crossover of NSGA-II: uniform (default) or simulated binary (sbx). */
    crossover: z.enum(['uniform', 'sbx']).optional(),
    /**
     * The GP's prior on its lengthscales: gamma (default; Gamma(3, 6) on the lengthscale, trusts the
     * data less far away) or optuna (Optuna's, tolerant of long lengthscales).
     */
    lengthscalePrior: z.enum(['optuna', 'gamma']).optional(),
    /** What the GP predicts far from every trial: the worst value seen (default) or the average (Optuna's). */
    priorMean: z.enum(['worst', 'average']).optional(),
    /**
     * How the start-up trials are drawn: random (Optuna's), or space-filling: latinHypercube (the
     * GP's default) or halton (a scrambled Halton sequence, TPE's default).
     */
    startupDesign: z.enum(['latinHypercube', 'halton', 'random']).optional(),
    /**
     * How TPE weighs the good group's observations: improvement (default; each by its improvement
     * over the rest's best, Watanabe 2023) or recency (Optuna's).
     */
    goodWeights: z.enum(['improvement', 'recency']).optional(),
    /** Stops unpromising trials from their intermediate values: median (default), successiveHalving, or none. */
    pruner: z.enum(['median', 'successiveHalving', 'none']).default('median'),
  })
  .superRefine((options, ctx) => {
    for (const [key, samplers] of Object.entries(optionsBySampler)) {
      if ((options as Record<string, unknown>)[key] !== undefined && !samplers.includes(options.sampler)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to sampler ${samplers.join(' or ')}, not ${options.sampler}; remove it or change the sampler` });
      }
    }
    const designs = startupDesignsBySampler[options.sampler];
    if (options.startupDesign !== undefined && designs !== undefined && !designs.includes(options.startupDesign)) {
      ctx.addIssue({
        code: 'custom',
        path: ['startupDesign'],
        message: `startupDesign ${options.startupDesign} is not one of sampler ${options.sampler}'s: use ${designs.join(' or ')}`,
      });
    }
  });

export type SearchBayesOptions = z.output<typeof searchBayesOptionsSchema>;
