import { EventStream } from '/work/main/dist/bench/query/gen.js';
import Database from 'better-sqlite3';
const N = 300000;
const s = new EventStream(N, 0x1234);
const rows = [];
for (let i = 0; i < N; i += 10000) rows.push(...s.rows(10000));
for (const detail of ['full', 'column', 'none']) {
  const db = new Database(':memory:');
  db.exec(`CREATE VIRTUAL TABLE fts USING fts5(text, content='', contentless_delete=1, detail=${detail}, tokenize='unicode61 remove_diacritics 2')`);
  const ins = db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
  const t = performance.now();
  for (let i = 0; i < rows.length; i += 10000) db.transaction(() => { for (const r of rows.slice(i, i + 10000)) ins.run(r.row.idx, r.text); })();
  const ms = performance.now() - t;
  const st = db.prepare("SELECT name, sum(pgsize) b FROM dbstat GROUP BY name").all();
  console.log(detail, st.filter(x => x.name.startsWith('fts')).map(x => `${x.name} ${(x.b / N).toFixed(1)}`).join(', '), `${(N / ms * 1000).toFixed(0)} rows/s`);
  db.close();
}
const txt = rows.reduce((a, r) => a + Buffer.byteLength(r.text), 0) / N;
console.log('avg fts text bytes', txt.toFixed(0));
const db = new Database(':memory:');
db.exec('CREATE TABLE a (idx INTEGER PRIMARY KEY, id TEXT) STRICT; CREATE TABLE b (idx INTEGER PRIMARY KEY, id BLOB) STRICT;');
const ia = db.prepare('INSERT INTO a VALUES (?, ?)'), ib = db.prepare('INSERT INTO b VALUES (?, ?)');
db.transaction(() => { for (const r of rows) { ia.run(r.row.idx, r.row.id); ib.run(r.row.idx, Buffer.from(r.row.id.replaceAll('-', ''), 'hex')); } })();
console.log(db.prepare("SELECT name, sum(pgsize)*1.0/" + N + " b FROM dbstat GROUP BY name").all());
