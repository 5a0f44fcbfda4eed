/** A value that survives `JSON.stringify` unchanged (reports, study storage). */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };
