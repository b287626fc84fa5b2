import { initDataDir } from '../../app/datadir.js';
import { dataDir } from '../../core/config/resolve.js';

export async function initCommand(opts: { dir?: string; origin?: string; json?: boolean }): Promise<void> {
  const r = await initDataDir(dataDir(opts.dir), opts.origin);
  if (opts.json) {
    console.log(
      JSON.stringify({
        dir: r.dir,
        origin: r.origin,
        vkey: r.vkey,
        token: r.token ?? null,
        token_file: r.tokenFile,
        created: r.created,
      }),
    );
    return;
  }
  console.log(r.created ? `Created ${r.dir}` : `${r.dir} already exists (nothing changed)`);
  console.log(`  origin:       ${r.origin}`);
  console.log(`  verifier key: ${r.vkey}`);
  if (r.created && r.token) console.log(`  admin key:    ${r.token}`);
  console.log(`  key file:     ${r.tokenFile}`);
}
