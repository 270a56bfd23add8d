// The official Node SDK clients the e2e suites share, pointed at the emulator.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const openApiCore = require('@alicloud/openapi-core');
const OpenApiClient = openApiCore.default;
const { $OpenApiUtil, OpenApiUtil } = openApiCore;
const { RuntimeOptions } = require('@darabonba/typescript');

export const REGION = 'cn-hangzhou';
export const KMS_VERSION = '2016-01-20';
export const ECS_VERSION = '2014-05-26';

// @alicloud/openapi-core's generic client for `endpoint` ('127.0.0.1:PORT').
// creds: {accessKeyId, accessKeySecret, securityToken} or {credential}, and
// optionally {ca}: a PEM to trust (else NODE_EXTRA_CA_CERTS must cover it).
// signatureAlgorithm: undefined (ACS3-HMAC-SHA256, the default) or 'v2'
// (HMAC-SHA1 RPC).
export function makeOpenApiClient(endpoint, creds, signatureAlgorithm) {
  const config = new $OpenApiUtil.Config({
    accessKeyId: creds.accessKeyId,
    accessKeySecret: creds.accessKeySecret,
    securityToken: creds.securityToken,
    credential: creds.credential,
    endpoint,
    protocol: 'https',
    regionId: REGION,
    ca: creds.ca,
  });
  if (signatureAlgorithm) config.signatureAlgorithm = signatureAlgorithm;
  return new OpenApiClient(config);
}

// The generic RPC call of @alicloud/openapi-core: resolves the parsed body.
export async function callRpc(client, action, version, query) {
  const params = new $OpenApiUtil.Params({
    action,
    version,
    protocol: 'HTTPS',
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: 'json',
  });
  const request = new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) });
  const response = await client.callApi(params, request, new RuntimeOptions({}));
  assert.equal(response.statusCode, 200);
  return response.body;
}
