import { jsonOnFailure } from '../errors.js';
import { openSource, readVerifiedCheckpoint, type SourceOptions } from './source.js';

/** `stele checkpoint`: the latest signed checkpoint, after checking its signature. */
export async function checkpointCommand(opts: SourceOptions & { json?: boolean }): Promise<void> {
  const { note, checkpoint: cp } = await jsonOnFailure(opts.json, async () => {
    const { source, verifier } = openSource(opts);
    return readVerifiedCheckpoint(source, verifier);
  });
  if (opts.json)
    console.log(JSON.stringify({ ok: true, origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note }));
  else process.stdout.write(note);
}
