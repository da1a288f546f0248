"""hookq-api POST /v1/in/{source_id}: inbound webhooks from third parties.

Every verifier is driven with requests signed the way its sender signs them, computed
here (hmac/hashlib) or by the sender's own library (Stripe's `stripe` npm package via
tests/tools/stripe-sign.mjs), plus a tampered or wrong one that must be refused: each
good case is the control of its bad case. The last test is end to end: a GitHub-signed
push goes in at /v1/in, a real hookq-worker delivers it, and a real receiver gets the
payload inside the event's data, signed for the endpoint."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time

import apiutil as au
import harness as h

P = 'hookq'
EVENTS = P + ':{q}:events'
TOOLS = os.path.join(h.SRC, 'tests', 'tools')

GH_SECRET = "It's a Secret to Everybody"
GH_BODY = 'Hello, World!'
GH_SIG = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'
STRIPE_SECRET = 'whsec_test_0123456789abcdef'
SW_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'


def stripe_headers(items):
    """items: list of (payload, secret, timestamp or None) -> Stripe-Signature values made by
    the stripe package's webhooks.generateTestHeaderString."""
    node = shutil.which('node')
    if not node:
        raise AssertionError('node is not installed: tests/run.sh installs it')
    if not os.path.isdir(os.path.join(TOOLS, 'node_modules', 'stripe')):
        raise AssertionError('stripe is not installed in tests/tools: run `npm install` there')
    lines = ''.join(json.dumps({'payload': p, 'secret': s, **({'timestamp': t} if t else {})})
                    + '\n' for p, s, t in items)
    r = subprocess.run([node, os.path.join(TOOLS, 'stripe-sign.mjs')], input=lines,
                       capture_output=True, text=True, timeout=60, cwd=TOOLS)
    if r.returncode != 0:
        raise AssertionError('stripe-sign failed: %s' % r.stderr)
    out = r.stdout.splitlines()
    for o in out:
        if o.startswith('error:'):
            raise AssertionError(o)
    return out


def hmac_hex(secret, msg, algo=hashlib.sha256):
    return hmac.new(secret.encode(), msg.encode() if isinstance(msg, str) else msg,
                    algo).hexdigest()


def hmac_b64(secret, msg, algo=hashlib.sha256):
    return base64.b64encode(hmac.new(secret.encode(), msg.encode() if isinstance(msg, str)
                                     else msg, algo).digest()).decode()


def events(rs):
    return h.xrange_dicts(rs, EVENTS)


def payloads(rs, sid):
    return h.xrange_dicts(rs, '%s:{%s}:payloads' % (P, sid))


class Inbound(h.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rs = h.RedisServer().start()
        cls.api = au.ApiServer(cls.rs).start()

    @classmethod
    def tearDownClass(cls):
        cls.api.__exit__(None, None, None)
        cls.rs.__exit__(None, None, None)

    def setUp(self):
        self.rs.call('FLUSHALL')

    def source(self, verification, api=None, **kw):
        body = {'event_type': 'inbound.test', 'verification': verification}
        body.update(kw)
        if 'event_type_header' in kw:
            del body['event_type']
        return (api or self.api).ok('POST', '/v1/sources', body, want=(201,))['id']

    def post(self, sid, body, headers=None, api=None, ctype='application/json'):
        hd = {'Content-Type': ctype} if ctype else {}
        hd.update(headers or {})
        return (api or self.api).call('POST', '/v1/in/' + sid, raw=body, key=None, headers=hd)

    def accepted(self, sid, body, headers=None, **kw):
        st, hd, out = self.post(sid, body, headers, **kw)
        self.assertEqual(st, 202, out)
        self.assertEqual(set(out), {'source_id', 'payload_id', 'event_id'})
        self.assertEqual(out['source_id'], sid)
        return out

    def refused(self, sid, body, headers=None, status=401, code='signature_invalid', **kw):
        n_ev, n_pl = len(events(self.rs)), len(payloads(self.rs, sid))
        st, hd, out = self.post(sid, body, headers, **kw)
        au.problem_ok(self, st, hd, out, status, code)
        self.assertNotIn('www-authenticate', hd)
        # a refused request stores and publishes nothing
        self.assertEqual(len(events(self.rs)), n_ev)
        self.assertEqual(len(payloads(self.rs, sid)), n_pl)
        return out

    # ---- verifiers -------------------------------------------------------------------------

    def test_github_known_answer(self):
        sid = self.source({'type': 'github', 'secret': GH_SECRET})
        out = self.accepted(sid, GH_BODY, {'X-Hub-Signature-256': GH_SIG}, ctype='text/plain')
        # stored as received, published with the body as a JSON string (it is not JSON)
        (eid, f), = payloads(self.rs, sid)
        self.assertEqual(out['payload_id'], 'pay_' + eid)
        self.assertEqual(f['body'], GH_BODY)
        self.assertEqual(f['event_id'], out['event_id'])
        (_, ev), = events(self.rs)
        self.assertEqual(ev['id'], out['event_id'])
        self.assertEqual(ev['type'], 'inbound.test')
        data = json.loads(ev['data'])
        self.assertEqual(data, {'source_id': sid, 'payload_id': out['payload_id'],
                                'content_type': 'text/plain',
                                'headers': {'content-type': 'text/plain',
                                            'x-hub-signature-256': GH_SIG},
                                'payload': GH_BODY})
        out = self.refused(sid, 'Hello, World?', {'X-Hub-Signature-256': GH_SIG})
        self.assertIn('mismatch', out['detail'])
        self.refused(sid, GH_BODY, {'X-Hub-Signature-256': GH_SIG[:-1] + '0'})
        self.refused(sid, GH_BODY, {'X-Hub-Signature-256': GH_SIG.upper().replace('SHA256',
                                                                                   'sha1')})
        out = self.refused(sid, GH_BODY)
        self.assertIn('X-Hub-Signature-256', out['detail'])
        # hex in upper case is the same signature
        self.accepted(sid, GH_BODY, {'X-Hub-Signature-256': 'sha256=' + GH_SIG[7:].upper()})

    def test_stripe_reference_headers(self):
        sid = self.source({'type': 'stripe', 'secret': STRIPE_SECRET})
        now = int(time.time())
        body = json.dumps({'id': 'evt_1Nstripe', 'object': 'event', 'type': 'charge.succeeded'})
        good, other, old, wrong = stripe_headers([
            (body, STRIPE_SECRET, now), (body, 'whsec_other', now),
            (body, STRIPE_SECRET, now - 1000), (body, 'whsec_wrong', now)])
        self.assertTrue(good.startswith('t=%d,v1=' % now), good)
        out = self.accepted(sid, body, {'Stripe-Signature': good})
        (_, ev), = events(self.rs)
        data = json.loads(ev['data'])
        self.assertEqual(data['payload'], json.loads(body))
        self.assertEqual(data['headers']['stripe-signature'], good)
        self.assertIn('"payload":' + body + '}', ev['data'])  # verbatim, not re-serialised
        self.assertEqual(data['payload_id'], out['payload_id'])
        # several v1 (as during a secret roll): any one matching is enough
        several = 't=%d,v1=%s,%s' % (now, other.split('v1=')[1], good.split(',', 1)[1])
        self.accepted(sid, body, {'Stripe-Signature': several})
        # with a v0 (ignored) as well
        self.accepted(sid, body, {'Stripe-Signature': good + ',v0=abc'})
        self.refused(sid, body.replace('succeeded', 'failed'), {'Stripe-Signature': good})
        out = self.refused(sid, body, {'Stripe-Signature': old})
        self.assertIn('tolerance', out['detail'])
        self.refused(sid, body, {'Stripe-Signature': wrong})
        self.refused(sid, body, {'Stripe-Signature': 't=%d,v1=%s' % (now, other.split('v1=')[1])})
        self.refused(sid, body)

    def test_shopify(self):
        sid = self.source({'type': 'shopify', 'secret': 'shpss_abc'})
        body = '{"id":820982911946154508,"email":"jon@example.com"}'
        sig = hmac_b64('shpss_abc', body)
        self.accepted(sid, body, {'X-Shopify-Hmac-Sha256': sig, 'X-Shopify-Topic': 'orders/create',
                                  'X-Shopify-Webhook-Id': 'b54557e4'})
        (_, ev), = events(self.rs)
        data = json.loads(ev['data'])
        self.assertEqual(data['headers']['x-shopify-topic'], 'orders/create')
        self.assertIn('"payload":' + body, ev['data'])  # the big id as sent
        self.refused(sid, body + ' ', {'X-Shopify-Hmac-Sha256': sig})
        self.refused(sid, body, {'X-Shopify-Hmac-Sha256': hmac_b64('other', body)})

    def test_slack(self):
        secret = '8f742231b10e8888abcd99yyyzzz85a5'
        sid = self.source({'type': 'slack', 'secret': secret})
        body = 'token=xyz&team_id=T1&command=%2Fweather&text=94070'
        ts = str(int(time.time()))
        sig = 'v0=' + hmac_hex(secret, 'v0:%s:%s' % (ts, body))
        self.accepted(sid, body, {'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': sig},
                      ctype='application/x-www-form-urlencoded')
        (_, ev), = events(self.rs)
        self.assertEqual(json.loads(ev['data'])['payload'], body)
        self.refused(sid, body.replace('94070', '94071'),
                     {'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': sig})
        old = str(int(time.time()) - 3600)
        out = self.refused(sid, body, {'X-Slack-Request-Timestamp': old,
                                       'X-Slack-Signature': 'v0=' + hmac_hex(
                                           secret, 'v0:%s:%s' % (old, body))})
        self.assertIn('tolerance', out['detail'])
        # the Events API URL handshake: the challenge comes back, nothing is stored
        ch = json.dumps({'token': 't', 'challenge': '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFX',
                         'type': 'url_verification'})
        sig = 'v0=' + hmac_hex(secret, 'v0:%s:%s' % (ts, ch))
        st, hd, out = self.post(sid, ch, {'X-Slack-Request-Timestamp': ts,
                                          'X-Slack-Signature': sig})
        self.assertEqual((st, out), (200, {'challenge': json.loads(ch)['challenge']}))
        self.assertEqual(len(payloads(self.rs, sid)), 1)
        # ... but only when signed
        self.refused(sid, ch, {'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': 'v0=00'})

    def test_standard_webhooks(self):
        sid = self.source({'type': 'standard', 'secret': SW_SECRET})
        body = '{"type":"invoice.paid","data":{"id":1}}'
        ts = str(int(time.time()))
        sig = h.sw_sign(SW_SECRET, 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', ts, body)
        hd = {'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', 'webhook-timestamp': ts,
              'webhook-signature': 'v1,bm90IGl0 ' + sig}
        self.accepted(sid, body, hd)
        (_, ev), = events(self.rs)
        got = json.loads(ev['data'])['headers']
        self.assertEqual(got['webhook-id'], hd['webhook-id'])
        self.assertEqual(got['webhook-signature'], hd['webhook-signature'])
        self.refused(sid, body.replace('1', '2'), hd)
        self.refused(sid, body, dict(hd, **{'webhook-id': 'msg_other'}))
        old = str(int(time.time()) - 3600)
        self.refused(sid, body, dict(hd, **{'webhook-timestamp': old, 'webhook-signature':
                                            h.sw_sign(SW_SECRET, hd['webhook-id'], old, body)}))

    def test_generic_hmac(self):
        cases = [
            ({'algorithm': 'sha256', 'encoding': 'hex'}, hashlib.sha256, hmac_hex, ''),
            ({'algorithm': 'sha512', 'encoding': 'hex', 'prefix': 'sha512='}, hashlib.sha512,
             hmac_hex, 'sha512='),
            ({'algorithm': 'sha256', 'encoding': 'base64'}, hashlib.sha256, hmac_b64, ''),
            ({'algorithm': 'sha512', 'encoding': 'base64'}, hashlib.sha512, hmac_b64, ''),
        ]
        body = '{"order":42}'
        for extra, algo, enc, prefix in cases:
            for with_ts in (False, True):
                with self.subTest(extra=extra, ts=with_ts):
                    v = dict({'type': 'hmac', 'secret': 'k3y', 'header': 'X-Signature'}, **extra)
                    if with_ts:
                        v['timestamp_header'] = 'X-Timestamp'
                    sid = self.source(v)
                    ts = str(int(time.time()))
                    msg = ('%s.%s' % (ts, body)) if with_ts else body
                    hd = {'X-Signature': prefix + enc('k3y', msg, algo)}
                    if with_ts:
                        hd['X-Timestamp'] = ts
                    self.accepted(sid, body, hd)
                    self.refused(sid, body + '\n', hd)
                    self.refused(sid, body, {**hd, 'X-Signature': prefix + enc('k3Y', msg, algo)})
                    if with_ts:
                        # signed without the timestamp, or with a stale one
                        self.refused(sid, body, {**hd, 'X-Signature': prefix + enc('k3y', body,
                                                                                   algo)})
                        old = str(int(time.time()) - 3600)
                        self.refused(sid, body, {'X-Timestamp': old, 'X-Signature': prefix + enc(
                            'k3y', '%s.%s' % (old, body), algo)})

    def test_basic_auth(self):
        sid = self.source({'type': 'basic', 'username': 'hooks', 'password': 'pa:ss word'})
        good = 'Basic ' + base64.b64encode(b'hooks:pa:ss word').decode()
        self.accepted(sid, '{}', {'Authorization': good})
        (_, ev), = events(self.rs)
        self.assertNotIn('authorization', json.loads(ev['data'])['headers'])
        self.assertNotIn('pa:ss', ev['data'])
        self.refused(sid, '{}', {'Authorization': 'Basic ' + base64.b64encode(
            b'hooks:pa:ss').decode()})
        self.refused(sid, '{}', {'Authorization': 'Bearer ' + au.ADMIN})
        self.refused(sid, '{}')

    def test_api_key(self):
        sid = self.source({'type': 'api_key', 'key': 'k-0123456789'})
        self.accepted(sid, '{}', {'X-API-Key': 'k-0123456789'})
        self.refused(sid, '{}', {'X-API-Key': 'k-012345678'})
        self.refused(sid, '{}')
        sid2 = self.source({'type': 'api_key', 'key': 'other-key', 'header': 'X-Hook-Token'})
        self.accepted(sid2, '{}', {'X-Hook-Token': 'other-key'})
        self.refused(sid2, '{}', {'X-API-Key': 'other-key'})
        for _, ev in events(self.rs):
            self.assertNotIn('key', ev['data'].lower().replace('x-api-key', ''))

    def test_none_accepts_anything(self):
        sid = self.source({'type': 'none'})
        self.accepted(sid, '{"anything":true}')
        self.accepted(sid, '', ctype=None)
        _, ev = events(self.rs)[-1]
        data = json.loads(ev['data'])
        self.assertEqual(data['payload'], '')
        self.assertIsNone(data['content_type'])

    # ---- refusals before verification -------------------------------------------------------

    def test_unknown_and_disabled(self):
        for sid in ('src_' + '0' * 32, 'src_nope', 'x'):
            self.refused(sid, '{}', status=404, code='not_found')
        sid = self.source({'type': 'github', 'secret': GH_SECRET})
        self.api.ok('PATCH', '/v1/sources/' + sid, {'enabled': False})
        out = self.refused(sid, GH_BODY, {'X-Hub-Signature-256': GH_SIG}, status=410,
                           code='gone')
        self.assertIn('disabled', out['detail'])
        self.api.ok('PATCH', '/v1/sources/' + sid, {'enabled': True})
        self.accepted(sid, GH_BODY, {'X-Hub-Signature-256': GH_SIG})
        # only POST
        st, hd, out = self.api.call('GET', '/v1/in/' + sid, key=None)
        au.problem_ok(self, st, hd, out, 405, 'method_not_allowed')

    def test_allow_ips(self):
        sid = self.source({'type': 'none'}, allow_ips=['10.0.0.0/8', '192.0.2.1'])
        out = self.refused(sid, '{}', status=403, code='forbidden')
        self.assertIn('127.0.0.1', out['detail'])
        # X-Forwarded-For from an untrusted peer is ignored
        self.refused(sid, '{}', {'X-Forwarded-For': '10.1.2.3'}, status=403, code='forbidden')
        self.api.ok('PATCH', '/v1/sources/' + sid, {'allow_ips': ['10.0.0.0/8', '127.0.0.1/32']})
        self.accepted(sid, '{}')
        # checked before the signature: a bad signature from a refused address is a 403
        sid2 = self.source({'type': 'github', 'secret': GH_SECRET}, allow_ips=['10.0.0.0/8'])
        self.refused(sid2, GH_BODY, {'X-Hub-Signature-256': 'sha256=00'}, status=403,
                     code='forbidden')

    def test_forwarded_for_from_trusted_proxy(self):
        with au.ApiServer(self.rs, env={'HOOKQ_API_TRUSTED_PROXIES': '127.0.0.1/32'}) as api:
            sid = self.source({'type': 'none'}, api=api, allow_ips=['10.0.0.0/8'])
            self.refused(sid, '{}', status=403, code='forbidden', api=api)
            out = self.accepted(sid, '{}', {'X-Forwarded-For': '10.1.2.3'}, api=api)
            (_, f), = payloads(self.rs, sid)
            self.assertEqual(f['source_ip'], '10.1.2.3')
            got = api.ok('GET', '/v1/sources/%s/payloads/%s' % (sid, out['payload_id']))
            self.assertEqual(got['source_ip'], '10.1.2.3')
            # the client is the rightmost address that is not a trusted proxy
            self.refused(sid, '{}', {'X-Forwarded-For': '10.1.2.3, 203.0.113.9'}, status=403,
                         code='forbidden', api=api)
            self.accepted(sid, '{}', {'X-Forwarded-For': '203.0.113.9, 10.1.2.3, 127.0.0.1'},
                          api=api)

    def test_body_limits(self):
        env = {'HOOKQ_API_MAX_BODY': '8KiB', 'HOOKQ_EVENTS_MAX_PAYLOAD': '4KiB'}
        with au.ApiServer(self.rs, env=env) as api:
            sid = self.source({'type': 'none'}, api=api)
            # over api.max_body: the server refuses before the handler
            self.refused(sid, '"' + 'x' * 9000 + '"', status=413, code='body_too_large', api=api)
            # under it, but the event would be over events.max_payload: refused before storing
            out = self.refused(sid, '"' + 'x' * 5000 + '"', status=413,
                               code='payload_too_large', api=api)
            self.assertIn('events.max_payload', out['detail'])
            self.accepted(sid, '"' + 'x' * 3000 + '"', api=api)

    def test_body_encodings(self):
        sid = self.source({'type': 'none'})
        # not UTF-8: refused, nothing stored
        self.refused(sid, b'\xff\xfe\x00binary', status=415, code='unsupported_media_type',
                     ctype='application/octet-stream')
        # JSON nested deeper than the event limit travels as a string
        deep = '[' * 40 + ']' * 40
        self.accepted(sid, deep)
        ok = '[' * 5 + '1' + ']' * 5
        self.accepted(sid, ok)
        evs = events(self.rs)
        self.assertEqual(json.loads(evs[0][1]['data'])['payload'], deep)
        self.assertEqual(json.loads(evs[1][1]['data'])['payload'], [[[[[1]]]]])
        # text with a NUL and unicode is kept exactly
        self.accepted(sid, 'a\x00b é'.encode(), ctype='text/plain')
        (_, ev) = events(self.rs)[-1]
        self.assertEqual(json.loads(ev['data'])['payload'], 'a\x00b é')

    def test_headers_kept(self):
        sid = self.source({'type': 'none'})
        self.accepted(sid, '{}', {'User-Agent': 'GitHub-Hookshot/abc', 'X-Custom': 'one',
                                  'Cookie': 'session=1', 'Accept': '*/*',
                                  'webhook-id': 'msg_1', 'Stripe-Signature': 't=1,v1=00'})
        (_, ev), = events(self.rs)
        got = json.loads(ev['data'])['headers']
        self.assertEqual(got, {'content-type': 'application/json',
                               'user-agent': 'GitHub-Hookshot/abc', 'x-custom': 'one',
                               'webhook-id': 'msg_1', 'stripe-signature': 't=1,v1=00'})

    # ---- dedupe and event types ---------------------------------------------------------------

    def gh(self, body, delivery=None, event=None):
        hd = {'X-Hub-Signature-256': 'sha256=' + hmac_hex(GH_SECRET, body)}
        if delivery:
            hd['X-GitHub-Delivery'] = delivery
        if event:
            hd['X-GitHub-Event'] = event
        return hd

    def test_dedupe_redeliveries(self):
        sid = self.source({'type': 'github', 'secret': GH_SECRET}, dedupe=True)
        body = '{"action":"opened"}'
        first = self.accepted(sid, body, self.gh(body, '72d3162e-cc78-11e3-81ab-4c9367dc0958'))
        st, hd, again = self.post(sid, body, self.gh(body, '72d3162e-cc78-11e3-81ab-4c9367dc0958'))
        self.assertEqual(st, 200, again)
        self.assertEqual(again, dict(first, duplicate=True))
        self.assertEqual(len(payloads(self.rs, sid)), 1)
        self.assertEqual(len(events(self.rs)), 1)
        # a new delivery id is a new payload; a request without one is never deduped
        self.accepted(sid, body, self.gh(body, 'another-delivery'))
        self.accepted(sid, body, self.gh(body))
        self.accepted(sid, body, self.gh(body))
        self.assertEqual(len(events(self.rs)), 4)
        ttl = self.rs.call('PTTL', '%s:{%s}:dedupe:72d3162e-cc78-11e3-81ab-4c9367dc0958' %
                           (P, sid))
        self.assertGreater(ttl, 23 * 3600 * 1000)
        self.assertLessEqual(ttl, 24 * 3600 * 1000)
        # a redelivery still has to be signed
        self.refused(sid, body, {'X-GitHub-Delivery': 'another-delivery',
                                 'X-Hub-Signature-256': 'sha256=00'})
        # without dedupe the same delivery id is stored twice
        sid2 = self.source({'type': 'github', 'secret': GH_SECRET})
        a = self.accepted(sid2, body, self.gh(body, 'same'))
        b = self.accepted(sid2, body, self.gh(body, 'same'))
        self.assertNotEqual(a['payload_id'], b['payload_id'])

    def test_dedupe_concurrent_redeliveries(self):
        """Twenty copies of one delivery at once: one is stored and published, every other
        answer is a duplicate with its ids (the store script decides atomically)."""
        import concurrent.futures
        sid = self.source({'type': 'github', 'secret': GH_SECRET}, dedupe=True)
        body = '{"zen":"Non-blocking is better than blocking."}'
        hd = self.gh(body, 'burst-1')
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: self.post(sid, body, hd), range(20)))
        firsts = [out for st, _, out in answers if st == 202]
        dups = [out for st, _, out in answers if st == 200]
        self.assertEqual(len(firsts), 1, answers)
        self.assertEqual(len(dups), 19, answers)
        for d in dups:
            self.assertEqual(d, dict(firsts[0], duplicate=True))
        self.assertEqual(len(payloads(self.rs, sid)), 1)
        self.assertEqual(len(events(self.rs)), 1)

    def test_real_curl_sender(self):
        """A sender's HTTP client, not ours: the real curl binary, asking for the interim
        100 Continue before it sends the body (as many clients do for big bodies)."""
        curl = shutil.which('curl')
        if not curl:
            raise AssertionError('curl is not installed')
        sid = self.source({'type': 'github', 'secret': GH_SECRET})
        body = json.dumps({'commits': [{'id': '%040d' % i, 'message': 'x' * 50}
                                       for i in range(40)]})
        self.assertGreater(len(body), 1024)
        sig = 'sha256=' + hmac_hex(GH_SECRET, body)
        p = subprocess.run([curl, '-sS', '-i', '--max-time', str(10 * h.SLOW), '-X', 'POST',
                            '-H', 'Content-Type: application/json', '-H',
                            'X-Hub-Signature-256: ' + sig, '-H', 'Expect: 100-continue',
                            '--data-binary', '@-',
                            self.api.url('/v1/in/' + sid)],
                           input=body.encode(), capture_output=True, timeout=30 * h.SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        text = p.stdout.decode()
        self.assertIn('HTTP/1.1 100 Continue', text)
        final = text[text.rindex('HTTP/1.1 '):]
        self.assertTrue(final.startswith('HTTP/1.1 202'), text)
        out = json.loads(final.split('\r\n\r\n', 1)[1])
        (_, ev), = events(self.rs)
        self.assertEqual(ev['id'], out['event_id'])
        self.assertIn('"payload":' + body + '}', ev['data'])

    def test_dedupe_repairs_a_lost_publish(self):
        """A request that died after storing and before publishing: the payload entry and
        dedupe key exist, the event does not. The sender's redelivery publishes it, once,
        under the recorded event id."""
        sid = self.source({'type': 'stripe', 'secret': STRIPE_SECRET}, dedupe=True)
        body = json.dumps({'id': 'evt_1LostPublish', 'object': 'event'})
        hdr, = stripe_headers([(body, STRIPE_SECRET, int(time.time()))])
        first = self.accepted(sid, body, {'Stripe-Signature': hdr})
        (_, ev), = events(self.rs)
        # undo the publish: what a crash between the two steps leaves
        self.rs.call('DEL', EVENTS, '%s:{q}:idem:%s' % (P, first['event_id']))
        self.assertEqual(events(self.rs), [])
        st, hd, again = self.post(sid, body, {'Stripe-Signature': hdr})
        self.assertEqual((st, again), (200, dict(first, duplicate=True)))
        (_, healed), = events(self.rs)
        self.assertEqual(healed['id'], first['event_id'])
        self.assertEqual(healed['data'], ev['data'])  # rebuilt exactly from the stored entry
        self.assertIn('had not been published', self.api.log())
        # and a third delivery publishes nothing more
        st, hd, third = self.post(sid, body, {'Stripe-Signature': hdr})
        self.assertEqual(st, 200)
        self.assertEqual(len(events(self.rs)), 1)

    def test_event_type_from_header(self):
        sid = self.source({'type': 'github', 'secret': GH_SECRET},
                          event_type_header='X-GitHub-Event', event_type_prefix='github.')
        body = '{"ref":"refs/heads/main"}'
        out = self.accepted(sid, body, self.gh(body, event='push'))
        (_, ev), = events(self.rs)
        self.assertEqual(ev['type'], 'github.push')
        self.assertEqual(payloads(self.rs, sid)[0][1]['type'], 'github.push')
        got = self.api.ok('GET', '/v1/sources/%s/payloads/%s' % (sid, out['payload_id']))
        self.assertEqual(got['type'], 'github.push')
        # characters outside [A-Za-z0-9_-] become '_'
        self.accepted(sid, body, self.gh(body, event='pull request/review.x'))
        self.assertEqual(events(self.rs)[-1][1]['type'], 'github.pull_request_review_x')
        out = self.refused(sid, body, self.gh(body), status=422, code='invalid_event_type')
        self.assertIn('X-GitHub-Event', out['detail'])
        self.refused(sid, body, self.gh(body, event='x' * 200), status=422,
                     code='invalid_event_type')
        # without a prefix
        sid2 = self.source({'type': 'none'}, event_type_header='X-Event')
        self.accepted(sid2, '{}', {'X-Event': 'ping'})
        self.assertEqual(events(self.rs)[-1][1]['type'], 'ping')

    def test_redis_down(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            sid = self.source({'type': 'none'}, api=api)
            rs.stop()
            st, hd, out = self.post(sid, '{}', api=api)
            au.problem_ok(self, st, hd, out, 503, 'redis_unavailable')
            self.assertIn('retry-after', hd)

    def test_redis_full(self):
        """Redis at maxmemory: 507 with Retry-After, nothing stored; fine again after."""
        sid = self.source({'type': 'none'})
        self.rs.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
        self.rs.call('CONFIG', 'SET', 'maxmemory', '1')
        try:
            out = self.refused(sid, '{"a":1}', status=507, code='redis_full')
            self.assertIn('maxmemory', out['detail'])
            st, hd, out = self.post(sid, '{"a":1}')
            self.assertEqual((st, hd.get('retry-after')), (507, '5'), out)
        finally:
            self.rs.call('CONFIG', 'SET', 'maxmemory', '0')
        self.accepted(sid, '{"a":1}')

    # ---- end to end ------------------------------------------------------------------------------

    def test_end_to_end_through_worker_and_receiver(self):
        import wkutil as u
        with h.Receiver() as rcv, h.Worker(self.rs, env=u.env()) as w:
            ep, ep_secret = u.add_endpoint(self.rs, rcv.url('/github'), '--events', 'github.*')
            sid = self.source({'type': 'github', 'secret': GH_SECRET},
                              event_type_header='X-GitHub-Event', event_type_prefix='github.',
                              dedupe=True)
            body = json.dumps({'ref': 'refs/heads/main', 'after': 'abc123',
                               'repository': {'full_name': 'octo/hello', 'id': 1296269}})
            out = self.accepted(sid, body, self.gh(body, 'e2e-delivery-1', 'push'))
            self.assertTrue(rcv.wait_for(1, 20 * h.SLOW), w.log())
            req, = rcv.for_path('/github')
            got = json.loads(req.body)
            self.assertEqual(got['id'], out['event_id'])
            self.assertEqual(got['type'], 'github.push')
            self.assertEqual(got['data']['source_id'], sid)
            self.assertEqual(got['data']['payload_id'], out['payload_id'])
            self.assertEqual(got['data']['payload'], json.loads(body))
            self.assertEqual(got['data']['headers']['x-github-event'], 'push')
            self.assertEqual(got['data']['headers']['x-github-delivery'], 'e2e-delivery-1')
            self.assertIn(b'"payload":' + body.encode() + b'}', req.body)
            # signed for the endpoint, as any hookq delivery
            self.assertTrue(h.sw_verify(ep_secret, req.headers, req.body), req.headers)
            # GitHub's redelivery does not reach the receiver again
            st, hd, again = self.post(sid, body, self.gh(body, 'e2e-delivery-1', 'push'))
            self.assertEqual(st, 200)
            time.sleep(1)
            self.assertEqual(len(rcv.for_path('/github')), 1)


if __name__ == '__main__':
    h.main()
