import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OnnxModel } from '@open-autoglm/onnx';
import { resolveRuntimeTarget, sessionOptionsForTarget } from '@open-autoglm/runtime';
// onnxruntime-node is hoisted by the workspace (runtime depends on it); only this test helper
// uses it directly, to dump the graph onnxruntime actually runs.
import { InferenceSession } from 'onnxruntime-node';

/** Absolute path of a file in the repository's fixtures/. */
export const fixture = (name: string): string => new URL(`../../../../fixtures/${name}`, import.meta.url).pathname;

/** Op type -> count in the graph onnxruntime runs after its optimizations (level `all`). */
export async function optimizedOpCounts(model: OnnxModel): Promise<Record<string, number>> {
  const folder = await mkdtemp(path.join(tmpdir(), 'autoglm-quant-'));
  try {
    const file = path.join(folder, 'optimized.onnx');
    const options = sessionOptionsForTarget(resolveRuntimeTarget({ device: 'cpu', threads: 1 }));
    const session = await InferenceSession.create(model.toBytes(), { ...options, optimizedModelFilePath: file });
    await session.release();
    const counts: Record<string, number> = {};
    for (const node of (await OnnxModel.load(file)).graph.nodes) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
    return counts;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
