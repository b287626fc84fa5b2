/**
 * The few S3 calls Stele makes, on the AWS SDK: objects under one key prefix, written with Object
 * Lock when asked. Credentials come from the SDK's usual places ($AWS_ACCESS_KEY_ID, ~/.aws,
 * instance roles); `endpoint` names an S3-compatible store (Ceph RGW, MinIO), addressed path-style.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { quietAwsSdk } from '../../core/config/env.js';
import type { S3Location } from '../../core/config/parse.js';
import { SteleError } from '../../core/errors.js';

/** What an SDK error says, in one line: the S3 code, the HTTP status and the message when it has one. */
function describe(err: unknown): string {
  const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name ?? 'Error';
  const msg = e.message && e.message !== 'UnknownError' && e.message !== code ? `: ${e.message}` : '';
  return `${code}${status ? ` (HTTP ${status})` : ''}${msg}`;
}

const status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

export interface PutOptions {
  contentType: string;
  cacheControl: string;
  /** COMPLIANCE retention until this time (and a legal hold when `legalHold`). */
  lock?: { until: Date; legalHold: boolean };
}

export class Bucket {
  private readonly client: S3Client;
  readonly url: string;

  constructor(
    readonly location: S3Location,
    opts: { endpoint?: string; region: string },
  ) {
    quietAwsSdk();
    this.url = `s3://${location.bucket}${location.prefix ? `/${location.prefix}` : ''}`;
    this.client = new S3Client({
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      region: opts.region,
      // Checksums only where S3 requires them: S3-compatible stores (Ceph RGW 16) refuse the SDK's
      // default aws-chunked uploads; every PUT here carries Content-MD5 instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An unreachable bucket fails a request in seconds (the mirror retries), not minutes.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
      maxAttempts: 2,
    });
  }

  /** The object key of `path` (relative to the prefix). */
  key(path: string): string {
    return this.location.prefix ? `${this.location.prefix}/${path}` : path;
  }

  private fail(op: string, path: string, err: unknown): SteleError {
    return new SteleError('s3_failed', `${op} ${this.url}/${path}: ${describe(err)}`, { cause: err });
  }

  /** The object's bytes, or null when there is none. */
  async get(path: string): Promise<Buffer | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(path) }));
      return Buffer.from((await r.Body?.transformToByteArray()) ?? []);
    } catch (err) {
      if (status(err) === 404) return null;
      throw this.fail('GET', path, err);
    }
  }

  /** The object's MD5 (its ETag, for a single PUT) in hex, or null when there is none. */
  async md5(path: string): Promise<string | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(path) }));
      return (r.ETag ?? '').replaceAll('"', '');
    } catch (err) {
      if (status(err) === 404) return null;
      throw this.fail('HEAD', path, err);
    }
  }

  /** Writes the object (a new version in a versioned bucket); returns its version id. */
  async put(path: string, data: Buffer, opts: PutOptions): Promise<string | undefined> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.key(path),
          Body: data,
          ContentLength: data.length,
          ContentMD5: createHash('md5').update(data).digest('base64'),
          ContentType: opts.contentType,
          CacheControl: opts.cacheControl,
          ...(opts.lock
            ? {
                ObjectLockMode: 'COMPLIANCE' as const,
                ObjectLockRetainUntilDate: opts.lock.until,
                ...(opts.lock.legalHold ? { ObjectLockLegalHoldStatus: 'ON' as const } : {}),
              }
            : {}),
        }),
      );
      if (opts.lock) await this.checkLock(path, r.VersionId, opts.lock);
      return r.VersionId;
    } catch (err) {
      throw err instanceof SteleError ? err : this.fail('PUT', path, err);
    }
  }

  /**
   * Reads back the lock of a version just written: a store that accepts Object Lock headers but
   * keeps something else (Ceph RGW 16 wraps a date past 2038 to one in the past, leaving the object
   * unlocked) must not pass for WORM. Refused with s3_failed, naming what the store kept.
   */
  private async checkLock(path: string, versionId: string | undefined, lock: { until: Date; legalHold: boolean }): Promise<void> {
    const h = await this.client.send(
      new HeadObjectCommand({
        Bucket: this.location.bucket,
        Key: this.key(path),
        ...(versionId ? { VersionId: versionId } : {}),
      }),
    );
    const kept = h.ObjectLockRetainUntilDate?.getTime() ?? 0;
    const held = h.ObjectLockLegalHoldStatus === 'ON';
    // Stores keep the date to the second (S3) or the millisecond.
    if (h.ObjectLockMode === 'COMPLIANCE' && Math.abs(kept - lock.until.getTime()) < 1000 && held === lock.legalHold) return;
    throw new SteleError(
      's3_failed',
      `PUT ${this.url}/${path}: the store did not keep the lock asked for (COMPLIANCE until ${lock.until.toISOString()}${lock.legalHold ? ', legal hold' : ''}); it has ${h.ObjectLockMode ?? 'no mode'} until ${h.ObjectLockRetainUntilDate?.toISOString() ?? 'never'}${held ? ', legal hold' : ''}`,
    );
  }

  /** Deletes one version of an object (one not locked: a partial tile the mirror wrote). */
  async deleteVersion(path: string, versionId: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.key(path), VersionId: versionId }),
      );
    } catch (err) {
      throw this.fail('DELETE', path, err);
    }
  }

  /**
   * Every version of every object whose path starts with `pathPrefix` (relative to the prefix),
   * with its MD5 (the ETag of a single PUT) and whether it is the latest; delete markers have none.
   */
  async versions(pathPrefix: string): Promise<{ path: string; versionId: string; md5: string | null; latest: boolean }[]> {
    const out: { path: string; versionId: string; md5: string | null; latest: boolean }[] = [];
    const strip = this.key('').length;
    let marker: { KeyMarker?: string; VersionIdMarker?: string } = {};
    try {
      for (;;) {
        const r = await this.client.send(
          new ListObjectVersionsCommand({ Bucket: this.location.bucket, Prefix: this.key(pathPrefix), ...marker }),
        );
        for (const v of r.Versions ?? [])
          if (v.Key && v.VersionId)
            out.push({
              path: v.Key.slice(strip),
              versionId: v.VersionId,
              md5: (v.ETag ?? '').replaceAll('"', ''),
              latest: !!v.IsLatest,
            });
        for (const v of r.DeleteMarkers ?? [])
          if (v.Key && v.VersionId)
            out.push({ path: v.Key.slice(strip), versionId: v.VersionId, md5: null, latest: !!v.IsLatest });
        if (!r.IsTruncated) return out;
        marker = { KeyMarker: r.NextKeyMarker, VersionIdMarker: r.NextVersionIdMarker };
      }
    } catch (err) {
      throw this.fail('LIST', `${pathPrefix}*`, err);
    }
  }

  /** Whether the bucket has Object Lock enabled (a bucket that cannot be reached throws). */
  async objectLockEnabled(): Promise<boolean> {
    try {
      const r = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.location.bucket }));
      return r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      const code = (err as { name?: string }).name;
      if (code === 'ObjectLockConfigurationNotFoundError' || code === 'ObjectLockConfigurationNotFound') return false;
      throw new SteleError('s3_failed', `cannot read the Object Lock configuration of ${this.url}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Refuses (bad_option, naming `flag`) a bucket known to have no Object Lock; one that cannot be
   * reached yet is only reported to `unreachable` (the writer retries until it can).
   */
  async requireObjectLock(flag: string, unreachable: (err: Error) => void): Promise<void> {
    let locked: boolean | undefined;
    try {
      locked = await this.objectLockEnabled();
    } catch (err) {
      unreachable(err as Error);
    }
    if (locked === false)
      throw new SteleError(
        'bad_option',
        `${flag} ${this.url}: the bucket has no Object Lock (create it with Object Lock enabled)`,
      );
  }

  close(): void {
    this.client.destroy();
  }
}
