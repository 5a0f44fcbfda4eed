/**
 * A model as it crosses plugin boundaries: the serialized ONNX `ModelProto` and where it lives.
 * Bytes rather than a parsed graph keep core independent of the IR (each plugin parses with
 * `@open-autoglm/onnx`) and can be transferred to worker threads.
 */
export interface ModelArtifact {
  /** Absolute path of the `.onnx` file the bytes were read from or will be written to. */
  readonly path: string;
  /** The serialized `ModelProto`. */
  readonly bytes: Uint8Array;
}
