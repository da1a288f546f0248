"""hookq-api /v1/sources: create, list, read, change and delete inbound webhook sources,
and read the payloads they received.

Runs the real hookq-api against a real redis-server; inbound requests (to fill payloads)
are plain HTTP posts to /v1/in/<id>, with a verifier of type none or api_key. The
verifiers themselves are test_api_inbound.py's subject."""
import hashlib
import hmac
import http.client
import json

import apiutil as au
import harness as h

P = 'hookq'
GH = {'type': 'github', 'secret': "It's a Secret to Everybody"}


def src_keys(rs, sid):
    return sorted(k for k in rs.call('KEYS', '*') if sid in k)


class Sources(h.TestCase):
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

    def create(self, body, key=au.ADMIN, want=201):
        st, hd, out = self.api.call('POST', '/v1/sources', body, key=key)
        self.assertEqual(st, want, out)
        return out

    def bad(self, method, path, body, status, code, field=None, key=au.ADMIN):
        st, hd, out = self.api.call(method, path, body, key=key)
        au.problem_ok(self, st, hd, out, status, code)
        if field is not None:
            self.assertEqual(out.get('field'), field, out)
        return out

    # ---- create / read ---------------------------------------------------------------

    def test_create_answer_shows_secret_once(self):
        st, hd, s = self.api.call('POST', '/v1/sources',
                                  {'description': 'GitHub org hooks', 'event_type': 'github.event',
                                   'verification': GH, 'dedupe': True})
        self.assertEqual(st, 201, s)
        self.assertRegex(s['id'], r'^src_[0-9a-f]{32}$')
        self.assertEqual(hd['location'], '/v1/sources/' + s['id'])
        self.assertEqual(s['ingest_url'], '/v1/in/' + s['id'])
        self.assertEqual(s['verification'], GH)  # in full, only here
        self.assertEqual(s['enabled'], True)
        self.assertEqual(s['dedupe'], True)
        self.assertEqual(s['event_type'], 'github.event')
        self.assertIsNone(s['event_type_header'])
        self.assertIsNone(s['event_type_prefix'])
        self.assertIsNone(s['tenant'])
        self.assertEqual(s['allow_ips'], [])
        self.assertRegex(s['created_at'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
        self.assertEqual(s['created_at'], s['updated_at'])
        # GET and list mask it
        g = self.api.ok('GET', '/v1/sources/' + s['id'])
        self.assertEqual(g['verification'], {'type': 'github', 'secret': '****'})
        lst = self.api.ok('GET', '/v1/sources')
        self.assertEqual([x['id'] for x in lst['data']], [s['id']])
        self.assertEqual(lst['data'][0]['verification']['secret'], '****')
        self.assertIsNone(lst['next_cursor'])
        self.assertNotIn("It's a Secret", json.dumps(g) + json.dumps(lst))
        self.assertNotIn("It's a Secret", self.api.log())
        # stored as plain text fields, verification as JSON with the secret
        hsh = self.rs.call('HGETALL', '%s:{%s}:source' % (P, s['id']))
        hd = dict(zip(hsh[0::2], hsh[1::2]))
        self.assertEqual(hd['enabled'], 'true')
        self.assertEqual(hd['dedupe'], 'true')
        self.assertEqual(hd['event_type'], 'github.event')
        self.assertEqual(json.loads(hd['verification']), GH)
        self.assertEqual(self.rs.call('SMEMBERS', P + ':sources'), [s['id']])

    def test_ids_are_random(self):
        a = self.create({'event_type': 'x', 'verification': {'type': 'none'}})['id']
        b = self.create({'event_type': 'x', 'verification': {'type': 'none'}})['id']
        # no shared time prefix (not ULIDs): 128 random bits each
        self.assertNotEqual(a[4:12], b[4:12])

    def test_all_verifier_kinds_round_trip_masked(self):
        kinds = [
            ({'type': 'stripe', 'secret': 'whsec_abc'},
             {'type': 'stripe', 'secret': '****', 'tolerance': 300}),
            ({'type': 'shopify', 'secret': 'shp'}, {'type': 'shopify', 'secret': '****'}),
            ({'type': 'slack', 'secret': 'sl', 'tolerance': 60},
             {'type': 'slack', 'secret': '****', 'tolerance': 60}),
            ({'type': 'standard', 'secret': 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'},
             {'type': 'standard', 'secret': '****', 'tolerance': 300}),
            ({'type': 'hmac', 'secret': 'k', 'header': 'X-Sig', 'algorithm': 'sha512',
              'encoding': 'base64', 'prefix': 'sha512=', 'timestamp_header': 'X-Ts'},
             {'type': 'hmac', 'secret': '****', 'algorithm': 'sha512', 'encoding': 'base64',
              'header': 'X-Sig', 'prefix': 'sha512=', 'timestamp_header': 'X-Ts',
              'tolerance': 300}),
            ({'type': 'basic', 'username': 'u', 'password': 'pw'},
             {'type': 'basic', 'username': 'u', 'password': '****'}),
            ({'type': 'api_key', 'key': 'kkk'},
             {'type': 'api_key', 'header': 'X-API-Key', 'key': '****'}),
            ({'type': 'none'}, {'type': 'none'}),
        ]
        for given, shown in kinds:
            s = self.create({'event_type': 'x', 'verification': given})
            g = self.api.ok('GET', '/v1/sources/' + s['id'])
            self.assertEqual(g['verification'], shown)

    def test_create_validation_names_fields(self):
        ok = {'event_type': 'x', 'verification': {'type': 'none'}}
        cases = [
            (dict(ok, colour='red'), 'unknown_field', 'colour'),
            ({'event_type': 'x'}, 'invalid_field', 'verification'),
            ({'verification': {'type': 'none'}}, 'invalid_field', 'event_type'),
            (dict(ok, event_type_header='X-GitHub-Event'), 'invalid_field', 'event_type'),
            (dict(ok, event_type='bad type!'), 'invalid_field', 'event_type'),
            (dict(ok, event_type=7), 'invalid_field', 'event_type'),
            (dict(ok, event_type_prefix='gh.'), 'invalid_field', 'event_type_prefix'),
            ({'event_type_header': 'Bad Header', 'verification': {'type': 'none'}},
             'invalid_field', 'event_type_header'),
            ({'event_type_header': 'X-E', 'event_type_prefix': 'a b',
              'verification': {'type': 'none'}}, 'invalid_field', 'event_type_prefix'),
            (dict(ok, enabled='yes'), 'invalid_field', 'enabled'),
            (dict(ok, dedupe=1), 'invalid_field', 'dedupe'),
            (dict(ok, dedupe=True), 'invalid_field', 'dedupe'),  # none has no delivery id
            (dict(ok, tenant='a b'), 'invalid_field', 'tenant'),
            (dict(ok, description='x' * 1025), 'invalid_field', 'description'),
            (dict(ok, allow_ips='10.0.0.0/8'), 'invalid_field', 'allow_ips'),
            (dict(ok, allow_ips=['10.0.0.0/33']), 'invalid_field', 'allow_ips'),
            (dict(ok, allow_ips=['x'] * 65), 'invalid_field', 'allow_ips'),
            (dict(ok, verification='github'), 'invalid_field', 'verification'),
            (dict(ok, verification={'type': 'nope'}), 'invalid_field', 'verification.type'),
            (dict(ok, verification={'type': 'stripe'}), 'invalid_field', 'verification.secret'),
            (dict(ok, verification={'type': 'github', 'secret': 's', 'foo': 1}),
             'invalid_field', 'verification'),
            (dict(ok, verification={'type': 'hmac', 'secret': 's', 'header': 'X-S',
                                    'algorithm': 'md5'}),
             'invalid_field', 'verification.algorithm'),
            (dict(ok, verification={'type': 'standard', 'secret': 'not base64!'}),
             'invalid_field', 'verification.secret'),
        ]
        for body, code, field in cases:
            with self.subTest(body=body):
                out = self.bad('POST', '/v1/sources', body, 422, code, field)
                # a bad value's message never echoes a secret
                self.assertNotIn('"s"', out['detail'])
        self.assertEqual(self.rs.call('SMEMBERS', P + ':sources'), [])
        # bodies that are not JSON objects
        st, hd, out = self.api.call('POST', '/v1/sources', raw='{nope',
                                    headers={'Content-Type': 'application/json'})
        au.problem_ok(self, st, hd, out, 400, 'invalid_json')
        st, hd, out = self.api.call('POST', '/v1/sources', raw='[]',
                                    headers={'Content-Type': 'application/json'})
        au.problem_ok(self, st, hd, out, 400, 'invalid_json')
        st, hd, out = self.api.call('POST', '/v1/sources', raw='a=b',
                                    headers={'Content-Type': 'application/x-www-form-urlencoded'})
        au.problem_ok(self, st, hd, out, 415, 'unsupported_media_type')

    def test_event_type_header_and_allow_ips_stored(self):
        s = self.create({'event_type_header': 'X-GitHub-Event', 'event_type_prefix': 'github.',
                         'allow_ips': ['192.30.252.0/22', '2620:112:3000::/44', '127.0.0.1'],
                         'verification': GH, 'enabled': False})
        self.assertEqual(s['event_type_header'], 'X-GitHub-Event')
        self.assertEqual(s['event_type_prefix'], 'github.')
        self.assertIsNone(s['event_type'])
        self.assertFalse(s['enabled'])
        self.assertEqual(s['allow_ips'], ['192.30.252.0/22', '2620:112:3000::/44', '127.0.0.1'])
        hsh = dict(zip(*[iter(self.rs.call('HGETALL', '%s:{%s}:source' % (P, s['id'])))] * 2))
        self.assertEqual(hsh['allow_ips'], '192.30.252.0/22,2620:112:3000::/44,127.0.0.1')
        self.assertEqual(hsh['enabled'], 'false')

    def test_get_missing_and_bad_ids(self):
        for sid in ('src_' + '0' * 32, 'src_nope', 'ep_x', 'src_' + 'A' * 32):
            self.bad('GET', '/v1/sources/' + sid, None, 404, 'not_found')
            self.bad('PATCH', '/v1/sources/' + sid, {'description': 'x'}, 404, 'not_found')
            self.bad('DELETE', '/v1/sources/' + sid, None, 404, 'not_found')
            self.bad('GET', '/v1/sources/%s/payloads' % sid, None, 404, 'not_found')
            self.bad('GET', '/v1/sources/%s/payloads/pay_1-0' % sid, None, 404, 'not_found')

    def test_auth_required(self):
        for m, p in (('GET', '/v1/sources'), ('POST', '/v1/sources'),
                     ('GET', '/v1/sources/src_x'), ('GET', '/v1/sources/src_x/payloads')):
            st, hd, out = self.api.call(m, p, {} if m == 'POST' else None, key=None)
            au.problem_ok(self, st, hd, out, 401, 'unauthorized')

    # ---- list ------------------------------------------------------------------------

    def test_list_pages_in_id_order(self):
        ids = sorted(self.create({'event_type': 'x', 'verification': {'type': 'none'}})['id']
                     for _ in range(7))
        seen, cursor, pages = [], None, 0
        while True:
            path = '/v1/sources?limit=3' + ('&cursor=' + cursor if cursor else '')
            page = self.api.ok('GET', path)
            pages += 1
            seen += [x['id'] for x in page['data']]
            self.assertLessEqual(len(page['data']), 3)
            cursor = page['next_cursor']
            if not cursor:
                break
        self.assertEqual(seen, ids)
        self.assertEqual(pages, 3)
        # exactly a page's worth: no next page
        page = self.api.ok('GET', '/v1/sources?limit=7')
        self.assertEqual(len(page['data']), 7)
        self.assertIsNone(page['next_cursor'])
        for q, code in (('limit=0', 'invalid_parameter'), ('limit=1001', 'invalid_parameter'),
                        ('limit=x', 'invalid_parameter'), ('cursor=%%%', 'invalid_cursor'),
                        ('cursor=bm9wZQ', 'invalid_cursor'), ('tenant=a%20b', 'invalid_parameter')):
            self.bad('GET', '/v1/sources?' + q, None, 400, code)

    def test_list_skips_a_dangling_id(self):
        a = self.create({'event_type': 'x', 'verification': {'type': 'none'}})['id']
        self.rs.call('SADD', P + ':sources', 'src_' + 'f' * 32)  # a create that died half-way
        page = self.api.ok('GET', '/v1/sources')
        self.assertEqual([x['id'] for x in page['data']], [a])

    # ---- tenants -----------------------------------------------------------------------

    def test_tenant_isolation(self):
        mine = self.create({'event_type': 'x', 'verification': GH}, key=au.ACME)
        self.assertEqual(mine['tenant'], 'acme')
        self.assertEqual(mine['verification']['secret'], GH['secret'])
        same = self.create({'event_type': 'x', 'tenant': 'acme', 'verification': GH},
                           key=au.ACME)
        self.assertEqual(same['tenant'], 'acme')
        theirs = self.create({'event_type': 'x', 'verification': GH}, key=au.GLOBEX)
        untenanted = self.create({'event_type': 'x', 'verification': GH})
        admin_acme = self.create({'event_type': 'x', 'tenant': 'acme', 'verification': GH})
        self.bad('POST', '/v1/sources', {'event_type': 'x', 'tenant': 'globex',
                                         'verification': GH}, 403, 'forbidden', key=au.ACME)
        # acme sees its own three, never globex's or the untenanted one
        acme_ids = sorted([mine['id'], same['id'], admin_acme['id']])
        page = self.api.ok('GET', '/v1/sources', key=au.ACME)
        self.assertEqual([x['id'] for x in page['data']], acme_ids)
        page = self.api.ok('GET', '/v1/sources?tenant=acme', key=au.ACME)
        self.assertEqual([x['id'] for x in page['data']], acme_ids)
        self.bad('GET', '/v1/sources?tenant=globex', None, 403, 'forbidden', key=au.ACME)
        for other in (theirs['id'], untenanted['id']):
            self.bad('GET', '/v1/sources/' + other, None, 404, 'not_found', key=au.ACME)
            self.bad('PATCH', '/v1/sources/' + other, {'enabled': False}, 404, 'not_found',
                     key=au.ACME)
            self.bad('DELETE', '/v1/sources/' + other, None, 404, 'not_found', key=au.ACME)
            self.bad('GET', '/v1/sources/%s/payloads' % other, None, 404, 'not_found',
                     key=au.ACME)
        # the admin sees all five and filters by tenant
        self.assertEqual(len(self.api.ok('GET', '/v1/sources')['data']), 5)
        page = self.api.ok('GET', '/v1/sources?tenant=globex')
        self.assertEqual([x['id'] for x in page['data']], [theirs['id']])
        # a tenant key cannot move its source to another tenant, nor off tenants
        self.bad('PATCH', '/v1/sources/' + mine['id'], {'tenant': 'globex'}, 403, 'forbidden',
                 key=au.ACME)
        p = self.api.ok('PATCH', '/v1/sources/' + mine['id'], {'tenant': None}, key=au.ACME)
        self.assertEqual(p['tenant'], 'acme')
        # the admin can
        p = self.api.ok('PATCH', '/v1/sources/' + mine['id'], {'tenant': 'globex'})
        self.assertEqual(p['tenant'], 'globex')
        self.bad('GET', '/v1/sources/' + mine['id'], None, 404, 'not_found', key=au.ACME)
        self.api.ok('GET', '/v1/sources/' + mine['id'], key=au.GLOBEX)

    # ---- update ------------------------------------------------------------------------

    def test_patch(self):
        s = self.create({'event_type': 'github.event', 'verification': GH,
                         'description': 'first'})
        sid = s['id']
        p = self.api.ok('PATCH', '/v1/sources/' + sid,
                        {'description': None, 'enabled': False, 'allow_ips': ['10.0.0.0/8']})
        self.assertIsNone(p['description'])
        self.assertFalse(p['enabled'])
        self.assertEqual(p['allow_ips'], ['10.0.0.0/8'])
        self.assertEqual(p['verification'], {'type': 'github', 'secret': '****'})
        self.assertEqual(p['created_at'], s['created_at'])
        self.assertGreaterEqual(p['updated_at'], s['updated_at'])
        hsh = dict(zip(*[iter(self.rs.call('HGETALL', '%s:{%s}:source' % (P, sid)))] * 2))
        self.assertNotIn('description', hsh)
        # switching to a header-named type needs the fixed one cleared
        out = self.bad('PATCH', '/v1/sources/' + sid, {'event_type_header': 'X-GitHub-Event'},
                       422, 'invalid_field', 'event_type_header')
        self.assertIn('null', out['detail'])
        p = self.api.ok('PATCH', '/v1/sources/' + sid,
                        {'event_type': None, 'event_type_header': 'X-GitHub-Event',
                         'event_type_prefix': 'github.', 'allow_ips': None})
        self.assertIsNone(p['event_type'])
        self.assertEqual(p['event_type_header'], 'X-GitHub-Event')
        self.assertEqual(p['allow_ips'], [])
        # the masked secret sent back keeps the stored one (same type) ...
        p = self.api.ok('PATCH', '/v1/sources/' + sid,
                        {'verification': {'type': 'github', 'secret': '****'}, 'dedupe': True})
        self.assertTrue(p['dedupe'])
        hsh = dict(zip(*[iter(self.rs.call('HGETALL', '%s:{%s}:source' % (P, sid)))] * 2))
        self.assertEqual(json.loads(hsh['verification']), GH)
        # ... but cannot become another type's secret
        self.bad('PATCH', '/v1/sources/' + sid,
                 {'verification': {'type': 'shopify', 'secret': '****'}}, 422, 'invalid_field',
                 'verification.secret')
        # a verifier without delivery ids while dedupe is on
        self.bad('PATCH', '/v1/sources/' + sid,
                 {'verification': {'type': 'api_key', 'key': 'k'}}, 422, 'invalid_field',
                 'dedupe')
        p = self.api.ok('PATCH', '/v1/sources/' + sid,
                        {'verification': {'type': 'api_key', 'key': 'k2'}, 'dedupe': False})
        self.assertEqual(p['verification'], {'type': 'api_key', 'header': 'X-API-Key',
                                             'key': '****'})
        self.bad('PATCH', '/v1/sources/' + sid, {'nope': 1}, 422, 'unknown_field', 'nope')
        self.bad('PATCH', '/v1/sources/' + sid, {'enabled': None}, 422, 'invalid_field',
                 'enabled')
        self.bad('PATCH', '/v1/sources/' + sid, {'verification': None}, 422, 'invalid_field',
                 'verification')
        st, hd, out = self.api.call('PATCH', '/v1/sources/' + sid, raw='',
                                    headers={'Content-Type': 'application/json'})
        au.problem_ok(self, st, hd, out, 400, 'invalid_json')
        # {} changes nothing but the time
        before = self.api.ok('GET', '/v1/sources/' + sid)
        after = self.api.ok('PATCH', '/v1/sources/' + sid, {})
        self.assertEqual({k: v for k, v in before.items() if k != 'updated_at'},
                         {k: v for k, v in after.items() if k != 'updated_at'})

    # ---- payloads and delete ------------------------------------------------------------

    def post_in(self, sid, body, headers=None):
        hd = {'Content-Type': 'application/json'}
        hd.update(headers or {})
        return self.api.call('POST', '/v1/in/' + sid, raw=body, key=None, headers=hd)

    def test_payloads_list_and_get(self):
        s = self.create({'event_type': 'acme.order', 'verification': {'type': 'api_key',
                                                                      'key': 'k-123'}})
        sid = s['id']
        bodies = ['{"n":%d,"big":123456789012345678901234567890}' % i for i in range(5)]
        pids = []
        for b in bodies:
            st, hd, out = self.post_in(sid, b, {'X-API-Key': 'k-123', 'X-Trace': 't1'})
            self.assertEqual(st, 202, out)
            pids.append(out['payload_id'])
        st, hd, out = self.post_in(sid, 'a=1&b=%C3%A9', {
            'X-API-Key': 'k-123', 'X-Trace': 't1',
            'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(st, 202, out)
        pids.append(out['payload_id'])
        form_evt = out['event_id']
        # newest first, paged, without bodies
        page = self.api.ok('GET', '/v1/sources/%s/payloads?limit=4' % sid)
        self.assertEqual([x['id'] for x in page['data']], pids[::-1][:4])
        self.assertTrue(page['next_cursor'])
        for x in page['data']:
            self.assertNotIn('body', x)
            self.assertEqual(x['source_id'], sid)
            self.assertEqual(x['source_ip'], '127.0.0.1')
            self.assertEqual(x['type'], 'acme.order')
            self.assertEqual(x['headers']['x-trace'], 't1')
            self.assertNotIn('x-api-key', x['headers'])  # the credential is not kept
        self.assertEqual(page['data'][0]['size'], len('a=1&b=%C3%A9'))
        self.assertEqual(page['data'][1]['size'], len(bodies[4]))
        page2 = self.api.ok('GET', '/v1/sources/%s/payloads?limit=4&cursor=%s' %
                            (sid, page['next_cursor']))
        self.assertEqual([x['id'] for x in page2['data']], pids[::-1][4:])
        self.assertIsNone(page2['next_cursor'])
        # one whole: the JSON body as received (the big number intact)
        st, hd, whole = self.api.call('GET', '/v1/sources/%s/payloads/%s' % (sid, pids[0]))
        self.assertEqual(st, 200)
        self.assertEqual(hd['content-type'], 'application/json')
        self.assertEqual(whole['body'], json.loads(bodies[0]))
        self.assertEqual(whole['id'], pids[0])
        self.assertEqual(whole['content_type'], 'application/json')
        self.assertEqual(whole['size'], len(bodies[0]))
        self.assertRegex(whole['event_id'], r'^evt_')
        self.assertRegex(whole['received_at'], r'Z$')
        self.assertEqual(whole['source_ip'], '127.0.0.1')
        conn = http.client.HTTPConnection('127.0.0.1', self.api.port, timeout=10)
        conn.request('GET', '/v1/sources/%s/payloads/%s' % (sid, pids[0]),
                     headers={'Authorization': 'Bearer ' + au.ADMIN})
        rawtext = conn.getresponse().read().decode()
        conn.close()
        self.assertTrue(rawtext.endswith(',"body":%s}' % bodies[0]), rawtext)
        # a form body is a string
        form = self.api.ok('GET', '/v1/sources/%s/payloads/%s' % (sid, pids[5]))
        self.assertEqual(form['body'], 'a=1&b=%C3%A9')
        self.assertEqual(form['event_id'], form_evt)
        self.assertEqual(form['content_type'], 'application/x-www-form-urlencoded')
        # missing ones
        self.bad('GET', '/v1/sources/%s/payloads/pay_1-0' % sid, None, 404, 'not_found')
        self.bad('GET', '/v1/sources/%s/payloads/evt_1' % sid, None, 404, 'not_found')
        self.bad('GET', '/v1/sources/%s/payloads?cursor=bm9wZQ' % sid, None, 400,
                 'invalid_cursor')
        self.bad('GET', '/v1/sources/%s/payloads?limit=0' % sid, None, 400, 'invalid_parameter')
        # the payload entry as stored
        entries = h.xrange_dicts(self.rs, '%s:{%s}:payloads' % (P, sid))
        self.assertEqual(len(entries), 6)
        eid, f = entries[0]
        self.assertEqual('pay_' + eid, pids[0])
        self.assertEqual(f['body'], bodies[0])
        self.assertEqual(f['json'], 'true')
        self.assertEqual(f['type'], 'acme.order')
        self.assertEqual(json.loads(f['headers'])['x-trace'], 't1')

    def test_delete_removes_payloads_and_keys(self):
        s = self.create({'event_type': 'gh', 'verification': GH, 'dedupe': True})
        sid = s['id']
        keep = self.create({'event_type': 'gh', 'verification': GH, 'dedupe': True})['id']
        for target in (sid, keep):
            for i in range(3):
                body = '{"i":%d}' % i
                sig = 'sha256=' + hmac.new(GH['secret'].encode(), body.encode(),
                                           hashlib.sha256).hexdigest()
                st, hd, out = self.post_in(target, body, {'X-Hub-Signature-256': sig,
                                                          'X-GitHub-Delivery': 'd-%d' % i})
                self.assertEqual(st, 202, out)
        ks = src_keys(self.rs, sid)
        self.assertIn('%s:{%s}:payloads' % (P, sid), ks)
        self.assertIn('%s:{%s}:dedupe:d-0' % (P, sid), ks)
        self.assertEqual(len(ks), 5)  # source, payloads, 3 dedupe keys
        st, hd, out = self.api.call('DELETE', '/v1/sources/' + sid)
        self.assertEqual(st, 204, out)
        self.assertEqual(out, '')
        self.assertEqual(src_keys(self.rs, sid), [])
        self.assertNotIn(sid, self.rs.call('SMEMBERS', P + ':sources'))
        self.bad('GET', '/v1/sources/' + sid, None, 404, 'not_found')
        self.bad('DELETE', '/v1/sources/' + sid, None, 404, 'not_found')
        st, hd, out = self.post_in(sid, '{}')
        au.problem_ok(self, st, hd, out, 404, 'not_found')
        # the other source is untouched
        self.assertEqual(len(src_keys(self.rs, keep)), 5)

    def test_tenant_key_reads_own_payloads(self):
        s = self.create({'event_type': 'x', 'verification': {'type': 'none'}}, key=au.ACME)
        st, hd, out = self.post_in(s['id'], '{"a":1}')
        self.assertEqual(st, 202, out)
        page = self.api.ok('GET', '/v1/sources/%s/payloads' % s['id'], key=au.ACME)
        self.assertEqual([x['id'] for x in page['data']], [out['payload_id']])
        self.api.ok('GET', '/v1/sources/%s/payloads/%s' % (s['id'], out['payload_id']),
                    key=au.ACME)
        self.bad('GET', '/v1/sources/%s/payloads/%s' % (s['id'], out['payload_id']), None, 404,
                 'not_found', key=au.GLOBEX)
        # the event carries the source's tenant
        evs = h.xrange_dicts(self.rs, P + ':{q}:events')
        self.assertEqual(evs[-1][1]['tenant'], 'acme')
        self.assertEqual(evs[-1][1]['id'], out['event_id'])


if __name__ == '__main__':
    h.main()
