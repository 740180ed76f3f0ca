#!/usr/bin/env node
// Signs one live request with the npm package oauth-1.0a, for the server's end-to-end tests.
// stdin:  JSON {method, url, consumer_key, consumer_secret, token, token_secret, realm?, form?}
// stdout: the Authorization header value. Nonce and timestamp are the library's own.
'use strict';

const crypto = require('crypto');
const OAuth = require('oauth-1.0a');

const req = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const oauth = OAuth({
  consumer: { key: req.consumer_key, secret: req.consumer_secret },
  signature_method: 'HMAC-SHA256',
  hash_function: (base, key) => crypto.createHmac('sha256', key).update(base).digest('base64'),
  realm: req.realm,
});
const data = {};
for (const [name, value] of req.form || []) data[name] = value;
const header = oauth.toHeader(oauth.authorize({ url: req.url, method: req.method, data }, { key: req.token, secret: req.token_secret }));
process.stdout.write(header.Authorization + '\n');
