import { SteleError } from '../../errors.js';
import { parseCheckpoint } from '../../tlog/checkpoint.js';
import { openNote } from '../../tlog/note.js';
import { openSource, type SourceOptions } from './source.js';

/** `stele checkpoint`: the latest signed checkpoint, after checking its signature. */
export async function checkpointCommand(opts: SourceOptions & { json?: boolean }): Promise<void> {
  const { source, verifier } = openSource(opts);
  const note = await source.readCheckpoint();
  if (!note) throw new SteleError('no_checkpoint', 'the log has no checkpoint');
  let cp: ReturnType<typeof parseCheckpoint>;
  try {
    cp = parseCheckpoint(openNote(note, [verifier]).text);
  } catch (err) {
    throw new SteleError('bad_checkpoint', `the checkpoint does not verify: ${(err as Error).message}`);
  }
  if (opts.json) console.log(JSON.stringify({ origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note }));
  else process.stdout.write(note);
}
