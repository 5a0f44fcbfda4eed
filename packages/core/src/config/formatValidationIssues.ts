import type * as z from 'zod';
import { closestMatch } from './closestMatch.js';
import { formatKeyPath, type KeyPath, type SourceLocator, type SourcePosition } from './ConfigLocation.js';

/**
 * Turns zod issues into one line per problem: where it is (line, column), the key path, what
 * was expected and what was found. Used for the config file and for plugins' `with:` blocks.
 */

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

const typeNouns: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  bigint: 'an integer',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  map: 'a mapping (key: value)',
  array: 'a list',
  tuple: 'a list',
  set: 'a list',
  null: 'null',
  undefined: 'nothing',
  nan: 'NaN',
  date: 'a date',
};

function typeNoun(expected: string): string {
  return typeNouns[expected] ?? expected;
}

function boundPhrase(origin: string, bound: number | bigint, inclusive: boolean | undefined, direction: 'min' | 'max'): string {
  const count = Number(bound);
  switch (origin) {
    case 'array':
    case 'set':
      return direction === 'min'
        ? `a list of at least ${count} item${count === 1 ? '' : 's'}`
        : `a list of at most ${count} item${count === 1 ? '' : 's'}`;
    case 'string':
      if (direction === 'min' && count === 1) return 'a non-empty string';
      return `a string of ${direction === 'min' ? 'at least' : 'at most'} ${count} characters`;
    default: {
      const noun = origin === 'int' || origin === 'bigint' ? 'an integer' : 'a number';
      if (direction === 'min') return `${noun} ${inclusive === false ? '>' : '>='} ${String(bound)}`;
      return `${noun} ${inclusive === false ? '<' : '<='} ${String(bound)}`;
    }
  }
}

const integerFormats = new Set(['safeint', 'int32', 'uint32', 'int64', 'uint64']);

/** True when the schema the issue belongs to is an integer (`z.int()`), which zod reports as "number". */
function concernsInteger(issue: RawIssue): boolean {
  const format = (issue.schema as { _zod?: { def?: { format?: unknown } } } | undefined)?._zod?.def?.format;
  return typeof format === 'string' && integerFormats.has(format);
}

/**
 * The "expected ..." half of a message, used as the error map of every parse so that the
 * wording is the same whoever wrote the schema. Messages a schema sets itself take precedence.
 */
export function describeExpectation(issue: RawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeNoun(issue.expected === 'number' && concernsInteger(issue) ? 'int' : issue.expected)}`;
    case 'too_small':
      return `expected ${boundPhrase(concernsInteger(issue) ? 'int' : issue.origin, issue.minimum, issue.inclusive, 'min')}`;
    case 'too_big':
      return `expected ${boundPhrase(concernsInteger(issue) ? 'int' : issue.origin, issue.maximum, issue.inclusive, 'max')}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${JSON.stringify(issue.values[0])}`
        : `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}`;
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern !== undefined
        ? `expected a string matching ${issue.pattern}`
        : `expected a valid ${issue.format}`;
    case 'invalid_union':
      // A discriminated union lists the discriminator values it knows.
      if ('options' in issue && Array.isArray(issue.options) && issue.options.length > 0) {
        return `expected one of ${issue.options.map((option) => JSON.stringify(option)).join(', ')}`;
      }
      return 'expected one of the allowed forms';
    case 'invalid_key':
      return 'expected valid keys';
    case 'invalid_element':
      return 'expected valid elements';
    case 'unrecognized_keys':
      return 'unknown key';
    default:
      return 'invalid value';
  }
}

/** A short description of a found value: `"two"`, `3`, `a list of 2 items`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

// The parts of zod's schema definitions needed to find which keys an object allows.
interface SchemaNode {
  readonly _zod: { readonly def: SchemaDefinition };
}
interface SchemaDefinition {
  readonly type: string;
  readonly shape?: Readonly<Record<string, SchemaNode>>;
  readonly innerType?: SchemaNode;
  readonly in?: SchemaNode;
  readonly element?: SchemaNode;
  readonly options?: readonly SchemaNode[];
  readonly valueType?: SchemaNode;
  readonly items?: readonly SchemaNode[];
  readonly getter?: () => SchemaNode;
}

const wrapperTypes = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);

/** The concrete schemas a schema can stand for: wrappers removed, unions split. */
function expandSchema(schema: SchemaNode, depth = 0): SchemaNode[] {
  if (depth > 32) return [];
  const definition = schema._zod.def;
  if (wrapperTypes.has(definition.type) && definition.innerType) return expandSchema(definition.innerType, depth + 1);
  if (definition.type === 'pipe' && definition.in) return expandSchema(definition.in, depth + 1);
  if (definition.type === 'lazy' && definition.getter) return expandSchema(definition.getter(), depth + 1);
  if (definition.type === 'union' && definition.options) return definition.options.flatMap((option) => expandSchema(option, depth + 1));
  return [schema];
}

/** Keys allowed at `path` by `schema`, or `undefined` when the schema there is not an object. */
function allowedKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let current = expandSchema(schema as unknown as SchemaNode);
  for (const key of path) {
    const next: SchemaNode[] = [];
    for (const node of current) {
      const definition = node._zod.def;
      if (definition.type === 'object' && typeof key === 'string' && definition.shape?.[key]) next.push(definition.shape[key]);
      else if (definition.type === 'array' && typeof key === 'number' && definition.element) next.push(definition.element);
      else if (definition.type === 'tuple' && typeof key === 'number' && definition.items?.[key]) next.push(definition.items[key]);
      else if (definition.type === 'record' && definition.valueType) next.push(definition.valueType);
    }
    current = next.flatMap((node) => expandSchema(node));
  }
  const keys = current.flatMap((node) => (node._zod.def.type === 'object' ? Object.keys(node._zod.def.shape ?? {}) : []));
  return keys.length === 0 ? undefined : [...new Set(keys)];
}

export interface IssueFormattingContext {
  /** The schema that produced the issues (to list allowed keys). */
  readonly schema: z.ZodType;
  /** The value that was validated. */
  readonly value: unknown;
  /** Key path of `value` from the root of the file, prefixed to every issue's path. */
  readonly keyPath: KeyPath;
  readonly locate?: SourceLocator;
}

interface LocatedProblem {
  readonly position: SourcePosition | undefined;
  readonly text: string;
}

// Codes whose message describes a wrong value, so that showing the value helps.
const valueCodes = new Set(['invalid_type', 'too_small', 'too_big', 'invalid_value', 'not_multiple_of', 'invalid_format', 'invalid_union']);

function describeIssue(issue: Issue, context: IssueFormattingContext, basePath: readonly PropertyKey[]): LocatedProblem[] {
  const path = [...basePath, ...issue.path];
  const fullPath = [...context.keyPath, ...path] as (string | number)[];
  const locate = (keyPath: (string | number)[], part?: 'key' | 'value'): SourcePosition | undefined => context.locate?.(keyPath, part);

  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(context.schema, path) ?? [];
    return issue.keys.map((key) => {
      const suggestion = closestMatch(key, allowed);
      const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
      const choices = allowed.length === 0 ? 'no keys are allowed here' : `allowed keys: ${allowed.join(', ')}`;
      return {
        position: locate([...fullPath, key], 'key'),
        text: `${formatKeyPath([...fullPath, key])}: unknown key "${key}"${hint}; ${choices}`,
      };
    });
  }

  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // When the value has the shape of some alternatives (a list where a list may go), report
    // what is wrong inside the closest one; when it has none, list the shapes expected.
    const isShapeMismatch = (branchIssue: Issue): boolean =>
      branchIssue.path.length === 0 && (branchIssue.code === 'invalid_type' || branchIssue.code === 'invalid_value');
    const sameShape = issue.errors.filter((branch) => !branch.some(isShapeMismatch));
    const closest = [...sameShape].sort((a, b) => a.length - b.length)[0];
    if (closest !== undefined) return closest.flatMap((branchIssue) => describeIssue(branchIssue, context, path));
    const expected = [
      ...new Set(
        issue.errors.flatMap((branch) => branch.filter(isShapeMismatch).map((branchIssue) => branchIssue.message.replace(/^expected /, ''))),
      ),
    ];
    const value = valueAt(context.value, path);
    return [
      {
        position: locate(fullPath),
        text: `${formatKeyPath(fullPath)}: expected ${expected.join(' or ')}, got ${describeValue(value)}`,
      },
    ];
  }

  const value = valueAt(context.value, path);
  if (value === undefined && issue.code === 'invalid_type') {
    return [{ position: locate(fullPath), text: `${formatKeyPath(fullPath)}: missing (${issue.message})` }];
  }
  let text = `${formatKeyPath(fullPath)}: ${issue.message}`;
  const showsValue = valueCodes.has(issue.code) || (issue.code === 'custom' && issue.message.startsWith('expected '));
  if (showsValue) text += `, got ${describeValue(value)}`;
  if (issue.code === 'invalid_value' && typeof value === 'string') {
    const suggestion = closestMatch(value, issue.values.filter((choice): choice is string => typeof choice === 'string'));
    if (suggestion !== undefined) text += ` (did you mean "${suggestion}"?)`;
  }
  return [{ position: locate(fullPath), text }];
}

/** At most this many problems are listed; the rest are counted. */
const maxListedProblems = 10;

/**
 * One line per problem, in file order: `line 7, column 30: target.threads: expected a positive
 * integer, got "two"` (without the position when the source is unknown).
 */
export function formatValidationIssues(issues: readonly Issue[], context: IssueFormattingContext): string[] {
  const problems = issues.flatMap((issue) => describeIssue(issue, context, []));
  problems.sort(
    (a, b) => (a.position?.line ?? Infinity) - (b.position?.line ?? Infinity) || (a.position?.column ?? 0) - (b.position?.column ?? 0),
  );
  const lines = problems
    .slice(0, maxListedProblems)
    .map(({ position, text }) => (position === undefined ? text : `line ${position.line}, column ${position.column}: ${text}`));
  if (problems.length > maxListedProblems) lines.push(`... and ${problems.length - maxListedProblems} more`);
  return lines;
}
