// Owns one ONNX Runtime session off the main thread: onnxruntime-node's run() blocks the thread that calls it, so
// in a worker it leaves the main thread free to read tiles and write vectors meanwhile. Plain JS: workers start
// without the tsx loader.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const { onnx, threads, spinning } = workerData;
const noSpinning = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
let session;
try {
  session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', ...(spinning ? {} : { extra: noSpinning }) });
  parentPort.postMessage({ ready: true, input: session.inputNames[0], output: session.outputNames[0] });
} catch (err) {
  parentPort.postMessage({ ready: false, error: String(err?.message ?? err) });
}

parentPort.on('message', async (msg) => {
  if (msg.release) {
    await session?.release();
    parentPort.close();
    return;
  }
  try {
    const x = new ort.Tensor('float32', msg.tiles, msg.shape);
    const out = await session.run({ [msg.input]: x });
    const data = out[msg.output].data;
    parentPort.postMessage({ id: msg.id, data }, [data.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err?.message ?? err) });
  }
});
