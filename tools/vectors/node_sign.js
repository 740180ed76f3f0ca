#!/usr/bin/env node
// Signs the cases from cases.py with the npm package oauth-1.0a (pinned in
// package.json / package-lock.json).
//
// stdin:  JSON array of cases (see cases.py); cases whose "libraries" list
//         lacks "node-oauth-1.0a" are skipped.
// stdout: JSON {"version": "...", "results": [{case, authorization, base_string, signature}]}
//
// Usage follows the library's README:
//   const oauth = OAuth({consumer: {key, secret}, signature_method, hash_function, realm});
//   const header = oauth.toHeader(oauth.authorize({url, method, data}, {key, secret}));
// with these test-only changes:
//   * getNonce()/getTimeStamp() are overridden on the instance to return the case's values;
//   * getBaseString() is wrapped to capture the base string the library signed;
//   * form-urlencoded body fields are passed DECODED as `data` (an object; a repeated
//     name becomes an array), which is what the library expects. Non-form bodies
//     (JSON, XML) are not passed at all: as `data` they would be signed as fields.
//   * oauth_callback / oauth_verifier go in `data`, as the README says
//     ("data: ... including extra oauth option oauth_* as oauth_callback");
//     authorize() merges `data` into the returned oauth data, so toHeader() emits them.
//   * includeBodyHash is never used: the library hashes the body with hash_function
//     (an HMAC keyed with the signing key), not with plain SHA-1 as the
//     oauth_body_hash draft says.
'use strict';

const crypto = require('crypto');
const OAuth = require('oauth-1.0a');
const VERSION = require('oauth-1.0a/package.json').version;

const LIB = 'node-oauth-1.0a';

function hmac(alg) {
  return (baseString, key) => crypto.createHmac(alg, key).update(baseString).digest('base64');
}

function formData(pairs) {
  const data = {};
  for (const [name, value] of pairs || []) {
    if (Object.prototype.hasOwnProperty.call(data, name)) {
      if (!Array.isArray(data[name])) data[name] = [data[name]];
      data[name].push(value);
    } else {
      data[name] = value;
    }
  }
  return data;
}

function sign(c) {
  const alg = { 'HMAC-SHA256': 'sha256', 'HMAC-SHA1': 'sha1' }[c.signature_method];
  if (!alg) throw new Error(`unsupported signature method ${c.signature_method}`);
  const oauth = OAuth({
    consumer: { key: c.consumer_key, secret: c.consumer_secret },
    signature_method: c.signature_method,
    hash_function: hmac(alg),
    realm: c.realm === null ? undefined : c.realm,
  });
  oauth.getNonce = () => c.nonce;
  oauth.getTimeStamp = () => c.timestamp;

  const captured = [];
  const getBaseString = oauth.getBaseString;
  oauth.getBaseString = function (request, oauthData) {
    const s = getBaseString.call(this, request, oauthData);
    captured.push(s);
    return s;
  };

  const data = formData(c.form_pairs);
  if (c.callback !== null) data.oauth_callback = c.callback;
  if (c.verifier !== null) data.oauth_verifier = c.verifier;
  const request = { url: c.url, method: c.method_input, data };
  const token = c.token === null ? undefined : { key: c.token, secret: c.token_secret };

  const authorized = oauth.authorize(request, token);
  const authorization = oauth.toHeader(authorized).Authorization;
  if (captured.length !== 1) throw new Error(`${c.case}: expected one base string, got ${captured.length}`);
  return {
    case: c.case,
    authorization,
    base_string: captured[0],
    signature: authorized.oauth_signature,
  };
}

function main() {
  const chunks = [];
  process.stdin.on('data', (d) => chunks.push(d));
  process.stdin.on('end', () => {
    const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const results = cases.filter((c) => c.libraries.includes(LIB)).map(sign);
    process.stdout.write(JSON.stringify({ version: VERSION, results }) + '\n');
  });
}

main();
