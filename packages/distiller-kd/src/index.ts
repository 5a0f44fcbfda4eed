// The public API is being built (see the package's issue); this file lists its exports.
export {};
