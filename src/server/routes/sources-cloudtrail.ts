import type { FastifyInstance } from 'fastify';
import type { Stele } from '../../app/stele.js';
import { cloudtrailBodyRecords, cloudtrailEvent } from '../../sources/cloudtrail.js';
import { principalOf } from '../auth.js';
import { jsonBody } from '../body.js';
import { anyBodyIsJson, appendedSchema, withItemNames } from './sources.js';

/** `POST /v1/sources/cloudtrail`: CloudTrail events delivered by EventBridge (an API destination), or a log file's Records. */
export const cloudtrailRoutes = (stele: Stele) => async (app: FastifyInstance) => {
  anyBodyIsJson(app);
  app.post(
    '/v1/sources/cloudtrail',
    {
      schema: {
        summary: 'Append AWS CloudTrail events (EventBridge, or a log file)',
        description:
          'Body: an EventBridge event whose detail-type ends in "via CloudTrail" (e.g. "AWS API Call via CloudTrail") and ' +
          'whose detail is the CloudTrail record, a JSON list of such events, or a CloudTrail log file ({"Records": [...]}). ' +
          'Each record becomes one Stele event (action aws.<service>.<operation>), idempotent by eventID, so the same ' +
          'record from EventBridge and from `stele import cloudtrail` is stored once. Answers once durable; all or ' +
          'nothing, errors naming the record ([i].detail.field or Records[i].field). The principal needs append and ' +
          'vouch for aws.*.',
        security: [{ bearer: [] }],
        response: appendedSchema,
      },
    },
    async (req) => {
      const principal = principalOf(req);
      const records = cloudtrailBodyRecords(jsonBody(req));
      const events = records.map((r) =>
        cloudtrailEvent(r.record, r.path, { agent: r.path.startsWith('Records[') ? 'cloudtrail' : 'eventbridge' }),
      );
      if (events.length === 0) return { entries: [] };
      const name = (i: number) => records[i]?.path || 'detail';
      return { entries: await withItemNames(stele.appendAs(events, principal), name, events.length) };
    },
  );
};
