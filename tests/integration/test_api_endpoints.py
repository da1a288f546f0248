"""hookq-api /v1/endpoints: every route against a real Redis, a real hookq-worker and real
receivers, checked against the CLI (`hookq endpoint ...`) on the same data and against the
schemas of docs/openapi/endpoints.yaml."""
import calendar
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apiutil as au  # noqa: E402
import harness as h  # noqa: E402
import jsonschema  # noqa: E402
import yaml  # noqa: E402

P = 'hookq'
DEAD = P + ':{q}:dead'
JOBS = P + ':{q}:jobs'
EVENTS = P + ':{q}:events'
ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')

with open(os.path.join(h.SRC, 'docs', 'openapi', 'endpoints.yaml')) as f:
    SPEC = yaml.safe_load(f)

# Worker timings for tests that deliver: quick retries (a dead letter in well under a
# second), quick reloads, no breaker (it would hold the attempts these tests count).
WORKER = {'HOOKQ_RETRY_SCHEDULE': '100ms', 'HOOKQ_RETRY_JITTER': '0',
          'HOOKQ_ENDPOINTS_RELOAD_INTERVAL': '200ms', 'HOOKQ_BREAKER_ENABLED': 'false',
          'HOOKQ_DELIVERY_TIMEOUT': '%ds' % (2 * h.SLOW),
          'HOOKQ_DELIVERY_CONNECT_TIMEOUT': '%ds' % (2 * h.SLOW),
          'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT': '%ds' % (5 * h.SLOW)}


def conforms(tc, body, schema):
    """Assert body matches components/schemas/<schema> of docs/openapi/endpoints.yaml."""
    root = {'components': SPEC['components'], '$ref': '#/components/schemas/' + schema}
    errors = sorted(jsonschema.Draft202012Validator(root).iter_errors(body), key=str)
    tc.assertEqual([], [e.message + ' at ' + '/'.join(map(str, e.path)) for e in errors], body)


def ep_key(ep_id, part='endpoint'):
    return '%s:{%s}:%s' % (P, ep_id, part)


class Base(h.TestCase):
    """One Redis and one hookq-api for the class, emptied before each test."""

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

    def call(self, method, path, body=None, **kw):
        return self.api.call(method, path, body, **kw)

    def problem(self, res, status, code, field=None):
        st, hd, body = res
        au.problem_ok(self, st, hd, body, status, code)
        if field is not None:
            self.assertEqual(body.get('field'), field, body)
        return body

    def create(self, key=au.ADMIN, **fields):
        fields.setdefault('url', 'http://127.0.0.1:9/hook')
        st, hd, body = self.call('POST', '/v1/endpoints', fields, key=key)
        self.assertEqual(st, 201, body)
        conforms(self, body, 'EndpointWithSecret')
        return body

    def get(self, ep_id, key=au.ADMIN):
        st, hd, body = self.call('GET', '/v1/endpoints/' + ep_id, key=key)
        self.assertEqual(st, 200, body)
        conforms(self, body, 'Endpoint')
        return body

    def cli(self, *args, code=0):
        r = h.hookq(self.rs, *args)
        self.assertEqual(r.returncode, code, 'hookq %s: %s %s' % (args, r.stdout, r.stderr))
        return r

    def cli_show(self, ep_id):
        return json.loads(self.cli('endpoint', 'show', ep_id, '--json').stdout)


class Crud(Base):
    def test_create_get_and_the_cli_sees_it(self):
        body = self.create(url='https://example.com/hook', events=['order.*', 'invoice.paid'],
                           description='orders', tenant='acme', headers={'X-Team': 'core'},
                           github_signature=True, ordered=True, order_key='task_id',
                           rate='50/s', max_in_flight=8, on_disabled='hold', hold_max=500)
        ep = body['id']
        self.assertRegex(ep, r'^ep_[0-9A-Z]{26}$')
        self.assertTrue(body['secret'].startswith('whsec_'))
        got = self.get(ep)
        self.assertNotIn('secret', got)
        want = dict(body)
        del want['secret']
        self.assertEqual(got, want)
        self.assertEqual(got['order_key'], 'data.task_id')  # canonical form, as the CLI's
        for k in ('created_at', 'updated_at'):
            self.assertRegex(got[k], ISO)
        # the CLI reads what the API wrote
        show = self.cli_show(ep)
        self.assertEqual(show['url'], 'https://example.com/hook')
        self.assertEqual(show['events'], ['order.*', 'invoice.paid'])
        self.assertEqual(show['headers'], ['X-Team: core'])
        self.assertEqual(show['tenant'], 'acme')
        self.assertEqual(show['description'], 'orders')
        self.assertTrue(show['github_signature'])
        self.assertEqual(show['policy'], {'ordered': True, 'order_key': 'data.task_id',
                                          'rate': '50/s', 'max_in_flight': 8,
                                          'on_disabled': 'hold', 'hold_max': 500})
        self.assertEqual(self.rs.call('HGET', ep_key(ep), 'secret'), body['secret'])
        self.assertEqual(self.rs.call('HGET', ep_key(ep), 'lanes'), 'true')
        # the Location of the new endpoint
        st, hd, b2 = self.call('POST', '/v1/endpoints', {'url': 'http://127.0.0.1:9/x',
                                                         'secret': body['secret']})
        self.assertEqual(st, 201)
        self.assertEqual(hd['location'], '/v1/endpoints/' + b2['id'])
        self.assertEqual(b2['secret'], body['secret'])  # a given secret is kept
        self.assertEqual(b2['events'], ['*'])
        self.assertTrue(b2['enabled'])
        self.assertIsNone(b2['tenant'])
        self.assertEqual(b2['failures'], 0)

    def test_the_api_sees_what_the_cli_wrote(self):
        r = self.cli('--json', 'endpoint', 'add', '--url', 'http://127.0.0.1:9/cli',
                     '--events', 'a.*,b', '--header', 'X-A: 1', '--header', 'X-B: two',
                     '--tenant', 'globex', '--ordered', '--order-key', 'tenant', '--rate', '10/m')
        added = json.loads(r.stdout)
        got = self.get(added['id'])
        self.assertEqual(got['url'], 'http://127.0.0.1:9/cli')
        self.assertEqual(got['events'], ['a.*', 'b'])
        self.assertEqual(got['headers'], {'X-A': '1', 'X-B': 'two'})
        self.assertEqual(got['tenant'], 'globex')
        self.assertEqual((got['ordered'], got['order_key'], got['rate']), (True, 'tenant', '10/m'))
        self.cli('endpoint', 'disable', added['id'], '--reason', 'cli said so')
        got = self.get(added['id'])
        self.assertFalse(got['enabled'])
        self.assertEqual(got['disabled_reason'], 'cli said so')
        self.assertRegex(got['disabled_at'], ISO)
        # and the CLI sees an API update
        st, hd, b = self.call('PATCH', '/v1/endpoints/' + added['id'],
                              {'url': 'https://example.org/new', 'rate': None, 'headers': None})
        self.assertEqual(st, 200, b)
        show = self.cli_show(added['id'])
        self.assertEqual(show['url'], 'https://example.org/new')
        self.assertIsNone(show['policy']['rate'])
        self.assertEqual(show['headers'], [])
        # repeated header lines (the CLI allows them) read as one joined header
        r = self.cli('--json', 'endpoint', 'add', '--url', 'http://127.0.0.1:9/x',
                     '--header', 'X-Dup: 1', '--header', 'X-Dup: 2')
        self.assertEqual(self.get(json.loads(r.stdout)['id'])['headers'], {'X-Dup': '1, 2'})

    def test_every_route_needs_a_key(self):
        ep = self.create()['id']
        for method, suffix in [('GET', ''), ('POST', ''), ('GET', '/' + ep), ('PATCH', '/' + ep),
                               ('DELETE', '/' + ep), ('POST', '/%s/enable' % ep),
                               ('POST', '/%s/disable' % ep), ('POST', '/%s/rotate-secret' % ep),
                               ('POST', '/%s/test' % ep), ('GET', '/%s/deliveries' % ep),
                               ('POST', '/%s/recover' % ep)]:
            for key in (None, 'not-a-key-0123456789'):
                with self.subTest(method=method, suffix=suffix, key=key):
                    self.problem(self.call(method, '/v1/endpoints' + suffix, {}, key=key), 401,
                                 'unauthorized')
        self.assertTrue(self.get(ep)['enabled'])
        self.assertEqual(self.rs.call('XLEN', EVENTS), 0)

    def test_create_errors(self):
        P_ = '/v1/endpoints'
        self.problem(self.call('POST', P_, raw='{"url":'), 400, 'invalid_json')
        self.problem(self.call('POST', P_, raw='[1]'), 400, 'invalid_json')
        self.problem(self.call('POST', P_, raw=''), 400, 'invalid_json')
        self.problem(self.call('POST', P_, raw='{"url":"a","url":"b"}'), 400, 'invalid_json')
        self.problem(self.call('POST', P_, {'url': 'http://a/\u0000'}), 400, 'invalid_json')
        self.problem(self.call('POST', P_, raw='url=x', headers={'Content-Type': 'text/plain'}),
                     415, 'unsupported_media_type')
        u = 'http://127.0.0.1:9/h'
        b = self.problem(self.call('POST', P_, {'url': u, 'colour': 'red'}), 422, 'unknown_field',
                         'colour')
        self.assertIn('colour', b['detail'])
        cases = [
            ({}, 'url'),
            ({'url': 'ftp://example.com/x'}, 'url'),
            ({'url': 'http://'}, 'url'),
            ({'url': 42}, 'url'),
            ({'url': None}, 'url'),
            ({'url': u, 'events': []}, 'events'),
            ({'url': u, 'events': 'order.*'}, 'events'),
            ({'url': u, 'events': ['or*der']}, 'events'),
            ({'url': u, 'events': ['ok', 7]}, 'events'),
            ({'url': u, 'events': None}, 'events'),
            ({'url': u, 'rate': 'fast'}, 'rate'),
            ({'url': u, 'rate': '0/s'}, 'rate'),
            ({'url': u, 'rate': 50}, 'rate'),
            ({'url': u, 'headers': {'Host': 'x'}}, 'headers'),
            ({'url': u, 'headers': {'X-Hookq-Id': 'x'}}, 'headers'),
            ({'url': u, 'headers': {'X-A': 1}}, 'headers'),
            ({'url': u, 'headers': {'X-A': 'a\r\nB: c'}}, 'headers'),
            ({'url': u, 'headers': {'Bad Name': 'x'}}, 'headers'),
            ({'url': u, 'headers': {'X-A': '1', 'x-a': '2'}}, 'headers'),
            ({'url': u, 'headers': ['X-A: 1']}, 'headers'),
            ({'url': u, 'headers': {'X-%d' % i: 'v' for i in range(33)}}, 'headers'),
            ({'url': u, 'secret': 'nope'}, 'secret'),
            ({'url': u, 'secret': 'whsec_c2hvcnQ='}, 'secret'),
            ({'url': u, 'tenant': 'bad tenant!'}, 'tenant'),
            ({'url': u, 'tenant': ''}, 'tenant'),
            ({'url': u, 'description': 'x' * 1025}, 'description'),
            ({'url': u, 'enabled': 'yes'}, 'enabled'),
            ({'url': u, 'enabled': None}, 'enabled'),
            ({'url': u, 'github_signature': 1}, 'github_signature'),
            ({'url': u, 'github_secret': 'old'}, 'github_secret'),
            ({'url': u, 'ordered': 'true'}, 'ordered'),
            ({'url': u, 'order_key': 'tenant'}, 'order_key'),
            ({'url': u, 'ordered': False, 'order_key': 'tenant'}, 'order_key'),
            ({'url': u, 'ordered': True, 'order_key': 'a b'}, 'order_key'),
            ({'url': u, 'max_in_flight': 0}, 'max_in_flight'),
            ({'url': u, 'max_in_flight': '3'}, 'max_in_flight'),
            ({'url': u, 'max_in_flight': True}, 'max_in_flight'),
            ({'url': u, 'max_in_flight': 1.5}, 'max_in_flight'),
            ({'url': u, 'max_in_flight': 1000001}, 'max_in_flight'),
            ({'url': u, 'hold_max': 0}, 'hold_max'),
            ({'url': u, 'on_disabled': 'keep'}, 'on_disabled'),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                b = self.problem(self.call('POST', P_, body), 422, 'invalid_field', field)
                self.assertTrue(b['detail'].startswith(field), b)
        # nothing of it was written
        self.assertEqual(self.rs.call('SCARD', P + ':endpoints'), 0)
        self.assertEqual(self.call('GET', P_)[2]['data'], [])

    def test_patch(self):
        ep = self.create(description='d', headers={'X-A': '1'}, rate='5/s', ordered=True,
                         order_key='tenant', github_secret='previous')['id']
        path = '/v1/endpoints/' + ep
        before = self.get(ep)
        time.sleep(0.01)
        st, hd, b = self.call('PATCH', path, {'url': 'https://example.com/v2', 'events': ['x.*'],
                                              'description': None, 'max_in_flight': 3})
        self.assertEqual(st, 200, b)
        conforms(self, b, 'Endpoint')
        self.assertEqual(b['url'], 'https://example.com/v2')
        self.assertEqual(b['events'], ['x.*'])
        self.assertIsNone(b['description'])
        self.assertEqual(b['max_in_flight'], 3)
        self.assertEqual(b['rate'], '5/s')  # untouched
        self.assertEqual(b['headers'], {'X-A': '1'})
        self.assertGreater(b['updated_at'], before['updated_at'])
        self.assertEqual(b['created_at'], before['created_at'])
        self.assertEqual(self.get(ep), b)
        # null clears, false drops the order key as --unordered does
        b = self.call('PATCH', path, {'ordered': False, 'rate': None, 'headers': None,
                                      'github_secret': None, 'max_in_flight': None})[2]
        self.assertEqual((b['ordered'], b['order_key'], b['rate'], b['headers'],
                          b['github_secret'], b['max_in_flight']),
                         (False, None, None, {}, 'current', None))
        # an order key on an unordered endpoint needs "ordered" in the same body
        self.problem(self.call('PATCH', path, {'order_key': 'tenant'}), 422, 'invalid_field',
                     'order_key')
        b = self.call('PATCH', path, {'ordered': True, 'order_key': 'tenant'})[2]
        self.assertEqual(b['order_key'], 'tenant')
        # every field is checked before anything is written
        self.problem(self.call('PATCH', path, {'url': 'https://example.com/v3', 'rate': 'x'}),
                     422, 'invalid_field', 'rate')
        self.assertEqual(self.get(ep)['url'], 'https://example.com/v2')
        self.problem(self.call('PATCH', path, {'secret': 'whsec_' + 'A' * 44}), 422,
                     'invalid_field', 'secret')
        self.problem(self.call('PATCH', path, {'url': None}), 422, 'invalid_field', 'url')
        self.problem(self.call('PATCH', path, {'size': 1}), 422, 'unknown_field', 'size')
        self.problem(self.call('PATCH', path, raw='nope'), 400, 'invalid_json')
        self.problem(self.call('PATCH', path, raw='{}', headers={'Content-Type': 'text/plain'}),
                     415, 'unsupported_media_type')
        # {} changes nothing and writes nothing
        version = self.rs.call('GET', P + ':{q}:endpoints:version')
        cur = self.get(ep)
        st, hd, b = self.call('PATCH', path, {})
        self.assertEqual((st, b), (200, cur))
        self.assertEqual(self.rs.call('GET', P + ':{q}:endpoints:version'), version)
        # enabled through PATCH records what disable/enable do
        b = self.call('PATCH', path, {'enabled': False})[2]
        self.assertEqual((b['enabled'], b['disabled_reason']), (False, 'disabled by operator'))
        self.rs.call('SET', ep_key(ep, 'failures'), '4')
        b = self.call('PATCH', path, {'enabled': True})[2]
        self.assertEqual((b['enabled'], b['disabled_at'], b['failures']), (True, None, 0))
        self.assertEqual(self.rs.call('EXISTS', ep_key(ep, 'failures')), 0)
        # unknown and malformed ids
        self.problem(self.call('PATCH', '/v1/endpoints/ep_nope', {'url': 'http://a/'}), 404,
                     'not_found')
        self.problem(self.call('GET', '/v1/endpoints/ep.bad'), 404, 'not_found')
        self.problem(self.call('GET', '/v1/endpoints/' + 'e' * 200), 404, 'not_found')

    def test_delete(self):
        ep = self.create(ordered=True)['id']
        # lanes and counters the worker would have written: they go with the endpoint
        self.rs.call('SADD', ep_key(ep, 'lanekeys'), '')
        self.rs.call('ZADD', ep_key(ep, 'lane:'), 0, '00000000000000000001-00000000000000000000')
        self.rs.call('SET', ep_key(ep, 'failures'), 3)
        self.rs.call('XADD', ep_key(ep, 'log'), '*', 'outcome', 'delivered')
        st, hd, b = self.call('DELETE', '/v1/endpoints/' + ep)
        self.assertEqual((st, b), (204, ''))
        for part in ('endpoint', 'lanekeys', 'lane:', 'failures', 'log'):
            self.assertEqual(self.rs.call('EXISTS', ep_key(ep, part)), 0, part)
        self.assertEqual(self.rs.call('SISMEMBER', P + ':endpoints', ep), 0)
        self.problem(self.call('GET', '/v1/endpoints/' + ep), 404, 'not_found')
        self.problem(self.call('DELETE', '/v1/endpoints/' + ep), 404, 'not_found')
        self.cli('endpoint', 'show', ep, code=1)
        # one the CLI made goes too
        r = self.cli('--json', 'endpoint', 'add', '--url', 'http://127.0.0.1:9/x')
        cid = json.loads(r.stdout)['id']
        self.assertEqual(self.call('DELETE', '/v1/endpoints/' + cid)[0], 204)
        self.assertEqual(json.loads(self.cli('endpoint', 'list', '--json').stdout), [])

    def test_tenant_isolation(self):
        gx = self.create(key=au.GLOBEX, url='http://127.0.0.1:9/globex')
        self.assertEqual(gx['tenant'], 'globex')  # bound to the key's tenant
        ac = self.create(key=au.ACME, tenant='acme', url='http://127.0.0.1:9/acme')
        glob = self.create(url='http://127.0.0.1:9/global')  # admin, no tenant
        for method, suffix, body in [('GET', '', None), ('PATCH', '', {'description': 'x'}),
                                     ('DELETE', '', None), ('POST', '/enable', None),
                                     ('POST', '/disable', None), ('POST', '/rotate-secret', None),
                                     ('POST', '/test', None), ('GET', '/deliveries', None),
                                     ('POST', '/recover', {'since': '2020-01-01T00:00:00Z'})]:
            for victim in (gx['id'], glob['id']):
                with self.subTest(method=method, suffix=suffix, victim=victim):
                    b = self.problem(self.call(method, '/v1/endpoints/' + victim + suffix, body,
                                               key=au.ACME), 404, 'not_found')
                    self.assertNotIn('globex', json.dumps(b))
        # nothing changed for globex
        self.assertEqual(self.get(gx['id'])['description'], None)
        self.assertTrue(self.get(gx['id'])['enabled'])
        self.assertEqual(self.rs.call('HGET', ep_key(gx['id']), 'secret'), gx['secret'])
        # lists
        ids = lambda res: [e['id'] for e in res[2]['data']]  # noqa: E731
        res = self.call('GET', '/v1/endpoints', key=au.ACME)
        self.assertEqual(ids(res), [ac['id']])
        self.assertNotIn('unreadable', res[2])
        self.assertEqual(ids(self.call('GET', '/v1/endpoints?tenant=acme', key=au.ACME)),
                         [ac['id']])
        self.problem(self.call('GET', '/v1/endpoints?tenant=globex', key=au.ACME), 403,
                     'forbidden')
        self.assertEqual(ids(self.call('GET', '/v1/endpoints?tenant=globex')), [gx['id']])
        self.assertEqual(sorted(ids(self.call('GET', '/v1/endpoints'))),
                         sorted([gx['id'], ac['id'], glob['id']]))
        # a tenant key creates and keeps endpoints in its own tenant only
        self.problem(self.call('POST', '/v1/endpoints', {'url': 'http://a/', 'tenant': 'globex'},
                               key=au.ACME), 403, 'forbidden')
        self.problem(self.call('POST', '/v1/endpoints', {'url': 'http://a/', 'tenant': None},
                               key=au.ACME), 403, 'forbidden')
        self.problem(self.call('PATCH', '/v1/endpoints/' + ac['id'], {'tenant': 'globex'},
                               key=au.ACME), 403, 'forbidden')
        self.problem(self.call('PATCH', '/v1/endpoints/' + ac['id'], {'tenant': None},
                               key=au.ACME), 403, 'forbidden')
        st, hd, b = self.call('PATCH', '/v1/endpoints/' + ac['id'], {'tenant': 'acme'},
                              key=au.ACME)
        self.assertEqual((st, b['tenant']), (200, 'acme'))
        self.assertEqual(self.call('DELETE', '/v1/endpoints/' + ac['id'], key=au.ACME)[0], 204)
        # an admin may move an endpoint between tenants
        b = self.call('PATCH', '/v1/endpoints/' + gx['id'], {'tenant': 'acme'})[2]
        self.assertEqual(b['tenant'], 'acme')
        self.assertEqual(self.get(gx['id'], key=au.ACME)['id'], gx['id'])


class Lists(Base):
    def test_pages_filters_and_errors(self):
        made = [self.create(url='http://127.0.0.1:9/%d' % i)['id'] for i in range(5)]
        for i in (1, 3):
            self.assertEqual(self.call('POST', '/v1/endpoints/%s/disable' % made[i])[0], 200)
        self.assertEqual(made, sorted(made))  # ULIDs: creation order is id order
        seen, cursor, pages = [], None, 0
        while True:
            path = '/v1/endpoints?limit=2' + ('&cursor=' + cursor if cursor else '')
            st, hd, page = self.call('GET', path)
            self.assertEqual(st, 200, page)
            conforms(self, page, 'EndpointPage')
            self.assertLessEqual(len(page['data']), 2)
            seen += [e['id'] for e in page['data']]
            pages += 1
            cursor = page['next_cursor']
            if not cursor:
                break
        self.assertEqual((seen, pages), (made, 3))
        page = self.call('GET', '/v1/endpoints?limit=5')[2]
        self.assertEqual(([e['id'] for e in page['data']], page['next_cursor']), (made, None))
        off = self.call('GET', '/v1/endpoints?enabled=false&limit=1')[2]
        self.assertEqual([e['id'] for e in off['data']], [made[1]])
        off = self.call('GET', '/v1/endpoints?enabled=false&limit=1&cursor=' +
                        off['next_cursor'])[2]
        self.assertEqual(([e['id'] for e in off['data']], off['next_cursor']), ([made[3]], None))
        on = self.call('GET', '/v1/endpoints?enabled=true')[2]
        self.assertEqual([e['id'] for e in on['data']], [made[0], made[2], made[4]])
        self.problem(self.call('GET', '/v1/endpoints?enabled=maybe'), 400, 'invalid_parameter',
                     'enabled')
        self.problem(self.call('GET', '/v1/endpoints?limit=0'), 400, 'invalid_parameter', 'limit')
        self.problem(self.call('GET', '/v1/endpoints?limit=abc'), 400, 'invalid_parameter',
                     'limit')
        self.problem(self.call('GET', '/v1/endpoints?cursor=%%%'), 400, 'invalid_cursor')
        self.problem(self.call('GET', '/v1/endpoints?cursor=Ym9ndXMgY3Vyc29y'), 400,
                     'invalid_cursor')  # base64 of "bogus cursor": not an id
        self.problem(self.call('GET', '/v1/endpoints?tenant=no%20way'), 400, 'invalid_parameter',
                     'tenant')
        self.problem(self.call('GET', '/v1/endpoints', key=None), 401, 'unauthorized')

    def test_unreadable_endpoints(self):
        good = self.create(tenant='acme')['id']
        # a hash a newer or broken writer left: listed for admins, apart, never to tenants
        bad = 'ep_00000000000000000000000000'
        self.rs.call('HSET', ep_key(bad), 'url', 'http://x/', 'secret', 'whsec_x',
                     'enabled', 'yes', 'tenant', 'acme')
        self.rs.call('SADD', P + ':endpoints', bad)
        page = self.call('GET', '/v1/endpoints')[2]
        conforms(self, page, 'EndpointPage')
        self.assertEqual([e['id'] for e in page['data']], [good])
        self.assertEqual([u['id'] for u in page['unreadable']], [bad])
        self.assertIn('enabled', page['unreadable'][0]['error'])
        self.assertEqual(self.call('GET', '/v1/endpoints?tenant=globex')[2]['unreadable'], [])
        page = self.call('GET', '/v1/endpoints', key=au.ACME)[2]
        self.assertEqual(([e['id'] for e in page['data']], 'unreadable' in page), ([good], False))
        b = self.problem(self.call('GET', '/v1/endpoints/' + bad), 500, 'endpoint_unreadable')
        self.assertIn('enabled', b['detail'])
        self.problem(self.call('GET', '/v1/endpoints/' + bad, key=au.ACME), 500,
                     'endpoint_unreadable')
        self.problem(self.call('GET', '/v1/endpoints/' + bad, key=au.GLOBEX), 404, 'not_found')
        # an id in the set whose hash is gone is not an endpoint at all
        self.rs.call('SADD', P + ':endpoints', 'ep_ZZZZZZZZZZZZZZZZZZZZZZZZZZ')
        page = self.call('GET', '/v1/endpoints')[2]
        self.assertEqual(([e['id'] for e in page['data']], len(page['unreadable'])), ([good], 1))


class Enabling(Base):
    def test_disable_enable_round_trip(self):
        ep = self.create()['id']
        path = '/v1/endpoints/' + ep
        st, hd, b = self.call('POST', path + '/disable', {'reason': 'maintenance'})
        self.assertEqual(st, 200, b)
        conforms(self, b, 'Endpoint')
        self.assertEqual((b['enabled'], b['disabled_reason']), (False, 'maintenance'))
        self.assertRegex(b['disabled_at'], ISO)
        show = self.cli_show(ep)
        self.assertEqual((show['enabled'], show['disabled_reason']), (False, 'maintenance'))
        # test and recover need an enabled endpoint
        self.problem(self.call('POST', path + '/test'), 409, 'conflict')
        self.problem(self.call('POST', path + '/recover', {'since': '2020-01-01T00:00:00Z'}),
                     409, 'conflict')
        # no body: the CLI's default reason
        b = self.call('POST', path + '/disable')[2]
        self.assertEqual(b['disabled_reason'], 'disabled by operator')
        self.rs.call('SET', ep_key(ep, 'failures'), 49)
        self.assertEqual(self.get(ep)['failures'], 49)
        st, hd, b = self.call('POST', path + '/enable')
        self.assertEqual(st, 200, b)
        conforms(self, b, 'EndpointEnabled')
        self.assertEqual((b['enabled'], b['disabled_at'], b['disabled_reason'], b['failures']),
                         (True, None, None, 0))
        self.assertNotIn('discarded', b)
        self.assertEqual(self.rs.call('EXISTS', ep_key(ep, 'failures')), 0)
        self.assertTrue(self.cli_show(ep)['enabled'])
        # and back through the CLI
        self.cli('endpoint', 'disable', ep)
        self.assertFalse(self.get(ep)['enabled'])
        self.cli('endpoint', 'enable', ep)
        self.assertTrue(self.get(ep)['enabled'])
        # bodies
        self.problem(self.call('POST', path + '/disable', {'reason': 5}), 422, 'invalid_field',
                     'reason')
        self.problem(self.call('POST', path + '/disable', {'reason': 'r' * 1025}), 422,
                     'invalid_field', 'reason')
        self.problem(self.call('POST', path + '/disable', {'why': 'x'}), 422, 'unknown_field',
                     'why')
        self.problem(self.call('POST', path + '/enable', {'discard_held': 'yes'}), 422,
                     'invalid_field', 'discard_held')
        self.problem(self.call('POST', path + '/enable', {'reason': 'x'}), 422, 'unknown_field',
                     'reason')
        self.problem(self.call('POST', path + '/enable', raw='[]'), 400, 'invalid_json')
        self.problem(self.call('POST', path + '/enable', raw='{}',
                               headers={'Content-Type': 'text/plain'}),
                     415, 'unsupported_media_type')
        self.problem(self.call('POST', '/v1/endpoints/ep_missing/enable'), 404, 'not_found')
        self.problem(self.call('POST', '/v1/endpoints/ep_missing/disable'), 404, 'not_found')

    def test_enable_discard_held(self):
        with h.Receiver() as rcv, h.Worker(self.rs, env=WORKER) as w:
            ep = self.create(url=rcv.url('/held'), on_disabled='hold')['id']
            self.assertEqual(self.call('POST', '/v1/endpoints/%s/disable' % ep)[0], 200)
            time.sleep(0.5)  # the worker's table has it disabled
            for i in range(3):
                self.cli('send', 'order.paid', '{"n":%d}' % i)
            self.assertEventually(
                lambda: self.rs.call('HGET', ep_key(ep, 'state'), 'n') == '3', 10,
                'three events held: %s' % w.log()[-2000:])
            st, hd, b = self.call('POST', '/v1/endpoints/%s/enable' % ep, {'discard_held': True})
            self.assertEqual(st, 200, b)
            conforms(self, b, 'EndpointEnabled')
            self.assertEqual((b['enabled'], b['discarded']), (True, 3))
            # Let the worker see the endpoint enabled first: an event fanned out while its
            # table still says disabled is held and also delivered (a worker race, not
            # this route's: `hookq endpoint enable --discard-held` shows it the same).
            time.sleep(0.6)
            self.cli('send', 'order.paid', '{"n":"after"}')
            self.assertTrue(rcv.wait_for(1, 10))
            time.sleep(0.5)
            self.assertEqual([json.loads(r.body)['data'] for r in rcv.requests], [{'n': 'after'}])


class Delivering(Base):
    def test_delivery_signature_and_test_event(self):
        with h.Receiver() as rcv, h.Worker(self.rs, env=WORKER) as w:
            made = self.create(url=rcv.url('/in'), events=['order.*'],
                               headers={'X-Team': 'billing'})
            time.sleep(0.4)
            self.cli('send', 'order.paid', '{"order":1}')
            self.cli('send', 'user.created', '{"user":1}')  # not subscribed
            self.assertTrue(rcv.wait_for(1, 10), w.log()[-2000:])
            req = rcv.requests[0]
            self.assertTrue(h.sw_verify(made['secret'], req.headers, req.body))
            self.assertFalse(h.sw_verify('whsec_' + 'A' * 44, req.headers, req.body))
            self.assertEqual(req.headers['x-team'], 'billing')
            self.assertEqual(json.loads(req.body)['type'], 'order.paid')
            # the test event goes to this endpoint only, whatever it subscribes to
            other = self.create(url=rcv.url('/other'))
            time.sleep(0.4)
            st, hd, b = self.call('POST', '/v1/endpoints/%s/test' % made['id'])
            self.assertEqual(st, 202, b)
            conforms(self, b, 'TestEventAccepted')
            self.assertTrue(rcv.wait_for(2, 10, path='/in'))
            body = json.loads(rcv.for_path('/in')[1].body)
            self.assertEqual((body['id'], body['type']), (b['event_id'], 'hookq.test'))
            self.assertEqual(body['data']['endpoint'], made['id'])
            st, hd, b2 = self.call('POST', '/v1/endpoints/%s/test' % made['id'],
                                   {'type': 'order.refunded', 'data': [1, 'two']})
            self.assertEqual(st, 202, b2)
            self.assertTrue(rcv.wait_for(3, 10, path='/in'))
            body = json.loads(rcv.for_path('/in')[2].body)
            self.assertEqual((body['id'], body['type'], body['data']),
                             (b2['event_id'], 'order.refunded', [1, 'two']))
            time.sleep(0.3)
            self.assertEqual(rcv.for_path('/other'), [])
            # the log, newest first, with numbers as numbers
            self.assertEventually(lambda: len(self.call(
                'GET', '/v1/endpoints/%s/deliveries' % made['id'])[2]['data']) == 3)
            page = self.call('GET', '/v1/endpoints/%s/deliveries' % made['id'])[2]
            conforms(self, page, 'DeliveryAttemptPage')
            self.assertEqual([d['event_id'] for d in page['data']][:2],
                             [b2['event_id'], b['event_id']])
            d = page['data'][0]
            self.assertEqual((d['outcome'], d['status'], d['attempt'], d['type']),
                             ('delivered', 204, 1, 'order.refunded'))
            self.assertIsInstance(d['latency_ms'], int)
            self.assertRegex(d['time'], ISO)
            self.assertTrue(d['delivery'].startswith('dlv_'))
            self.assertIsNone(d['next_try'])
            self.assertIsNone(d['error'])
            self.assertEqual(page['next_cursor'], None)
            self.assertEqual(self.call('GET', '/v1/endpoints/%s/deliveries?failed=true'
                                       % made['id'])[2]['data'], [])
            self.assertEqual(self.call('GET', '/v1/endpoints/%s/deliveries' % other['id'])[2],
                             {'data': [], 'next_cursor': None})

    def test_rotate_secret_signs_with_both(self):
        with h.Receiver() as rcv, h.Worker(self.rs, env=WORKER):
            made = self.create(url=rcv.url('/r'))
            old = made['secret']
            st, hd, b = self.call('POST', '/v1/endpoints/%s/rotate-secret' % made['id'])
            self.assertEqual(st, 200, b)
            conforms(self, b, 'EndpointWithSecret')
            new = b['secret']
            self.assertNotEqual(new, old)
            self.assertRegex(b['secret_old_until'], ISO)
            self.assertNotIn('secret', self.get(made['id']))
            grace = time.time() + 24 * 3600  # endpoints.rotation_grace's default
            until = calendar.timegm(time.strptime(b['secret_old_until'][:19],
                                                  '%Y-%m-%dT%H:%M:%S'))
            self.assertLess(abs(until - grace), 120)
            self.assertEqual(self.rs.call('HMGET', ep_key(made['id']), 'secret', 'secret_old'),
                             [new, old])
            self.assertEqual(self.cli_show(made['id'])['secret_old_until'], b['secret_old_until'])
            time.sleep(0.4)
            self.assertEqual(self.call('POST', '/v1/endpoints/%s/test' % made['id'])[0], 202)
            self.assertTrue(rcv.wait_for(1, 10))
            req = rcv.requests[0]
            self.assertEqual(len(req.headers['webhook-signature'].split()), 2)
            self.assertTrue(h.sw_verify(new, req.headers, req.body))
            self.assertTrue(h.sw_verify(old, req.headers, req.body))
        # a given secret; bad ones
        mine = 'whsec_' + 'B' * 44
        b = self.call('POST', '/v1/endpoints/%s/rotate-secret' % made['id'], {'secret': mine})[2]
        self.assertEqual(b['secret'], mine)
        self.assertEqual(self.rs.call('HGET', ep_key(made['id']), 'secret_old'), new)
        path = '/v1/endpoints/%s/rotate-secret' % made['id']
        self.problem(self.call('POST', path, {'secret': 'plain'}), 422, 'invalid_field', 'secret')
        self.problem(self.call('POST', path, {'secret': 7}), 422, 'invalid_field', 'secret')
        self.problem(self.call('POST', path, {'old': 1}), 422, 'unknown_field', 'old')
        self.problem(self.call('POST', '/v1/endpoints/ep_none/rotate-secret'), 404, 'not_found')
        self.assertNotIn(mine, self.api.log())
        self.assertNotIn(new, self.api.log())

    def test_failed_deliveries_and_recover(self):
        state = {'ok': False}

        def handler(req, nth):
            return (200, {}, b'ok') if state['ok'] else (500, {}, b'down for now')
        start = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(time.time() - 1))
        with h.Receiver(handler) as rcv, h.Worker(self.rs, env=WORKER) as w:
            ep = self.create(url=rcv.url('/flaky'))['id']
            path = '/v1/endpoints/' + ep
            time.sleep(0.4)
            ev = self.call('POST', path + '/test')[2]['event_id']
            # two attempts (retry.schedule has one wait), then a dead letter
            self.assertEventually(lambda: self.rs.call('XLEN', DEAD) == 1, 10, w.log()[-2000:])
            page = self.call('GET', path + '/deliveries?failed=true')[2]
            conforms(self, page, 'DeliveryAttemptPage')
            self.assertEqual([(d['outcome'], d['attempt'], d['status']) for d in page['data']],
                             [('dead', 2, 500), ('retry', 1, 500)])
            self.assertEqual(page['data'][0]['response'], 'down for now')
            self.assertRegex(page['data'][1]['next_try'], ISO)
            # recover: the dead letter goes back to the jobs stream and is delivered
            state['ok'] = True
            st, hd, b = self.call('POST', path + '/recover', {'since': start})
            self.assertEqual(st, 202, b)
            conforms(self, b, 'RecoverResult')
            self.assertEqual((b['queued'], b['event_ids'], b['skipped'], b['truncated']),
                             (1, [ev], [], False))
            self.assertEqual(self.rs.call('XLEN', DEAD), 0)
            self.assertTrue(rcv.wait_for(3, 10), w.log()[-2000:])
            self.assertEqual(json.loads(rcv.requests[2].body)['id'], ev)
            self.assertEventually(lambda: self.call('GET', path + '/deliveries?limit=1')[2]
                                  ['data'][0]['outcome'] == 'delivered')
            # ?failed=true leaves the delivered attempt out; pages of one go on by cursor
            page = self.call('GET', path + '/deliveries?failed=true&limit=1')[2]
            self.assertEqual(page['data'][0]['outcome'], 'dead')
            page = self.call('GET', path + '/deliveries?failed=true&limit=1&cursor=' +
                             page['next_cursor'])[2]
            self.assertEqual(([d['outcome'] for d in page['data']], page['next_cursor']),
                             (['retry'], None))
            seen, cursor = [], ''
            for _ in range(5):
                page = self.call('GET', path + '/deliveries?limit=2' + cursor)[2]
                seen += [d['outcome'] for d in page['data']]
                if not page['next_cursor']:
                    break
                cursor = '&cursor=' + page['next_cursor']
            self.assertEqual(seen, ['delivered', 'dead', 'retry'])
        # nothing left to recover; errors
        b = self.call('POST', path + '/recover', {'since': start})[2]
        self.assertEqual((b['queued'], b['event_ids']), (0, []))
        self.problem(self.call('POST', path + '/recover', {}), 422, 'invalid_field', 'since')
        self.problem(self.call('POST', path + '/recover', {'since': 'yesterday'}), 422,
                     'invalid_field', 'since')
        self.problem(self.call('POST', path + '/recover', {'since': start, 'until': start}), 422,
                     'invalid_field', 'until')
        self.problem(self.call('POST', path + '/recover', {'since': start, 'what': 1}), 422,
                     'unknown_field', 'what')
        self.problem(self.call('POST', path + '/recover'), 400, 'invalid_json')
        self.problem(self.call('POST', path + '/recover', raw='{}',
                               headers={'Content-Type': 'text/plain'}),
                     415, 'unsupported_media_type')
        self.problem(self.call('POST', '/v1/endpoints/ep_gone/recover', {'since': start}), 404,
                     'not_found')
        self.problem(self.call('GET', path + '/deliveries?failed=1'), 400, 'invalid_parameter',
                     'failed')
        self.problem(self.call('GET', path + '/deliveries?cursor=bm90LWFuLWlk'), 400,
                     'invalid_cursor')
        self.problem(self.call('GET', path + '/deliveries?limit=1001'), 400, 'invalid_parameter')
        self.problem(self.call('GET', '/v1/endpoints/ep_gone/deliveries'), 404, 'not_found')


class Recovering(Base):
    """recover on dead letters written directly (docs/keys.md's fields), no worker."""

    def dead(self, sid, ep, event, event_id='evt_x', kind='job'):
        return self.rs.call('XADD', DEAD, sid, 'kind', kind, 'event', event, 'event_id', event_id,
                            'type', 't', 'endpoint', ep, 'attempt', '6', 'error', 'HTTP 500',
                            'status', '500', 'failed_at', '2026-01-01T00:00:00.000Z')

    def test_range_skips_and_other_endpoints(self):
        ep = self.create()['id']
        other = self.create()['id']
        self.rs.call('XADD', EVENTS, '5-0', 'id', 'evt_a', 'type', 't', 'data', '{}')
        self.rs.call('XADD', EVENTS, '6-0', 'id', 'evt_b', 'type', 't', 'data', '{}')
        self.dead('1000-0', ep, '5-0', 'evt_early')       # before the range
        d_ok = self.dead('2000-0', ep, '6-0', 'evt_b')    # in it
        d_gone = self.dead('2001-0', ep, '4-0', 'evt_gone')  # its event was trimmed
        self.dead('2002-0', other, '5-0', 'evt_other')    # another endpoint's
        d_bad = self.dead('2003-0', ep, 'not-an-id', 'evt_bad')
        self.dead('3000-0', ep, '5-0', 'evt_late')        # at until: excluded
        st, hd, b = self.call('POST', '/v1/endpoints/%s/recover' % ep,
                              {'since': '1970-01-01T00:00:02.000Z',
                               'until': '1970-01-01T00:00:03.000Z'})
        self.assertEqual(st, 202, b)
        conforms(self, b, 'RecoverResult')
        self.assertEqual((b['queued'], b['event_ids'], b['truncated'], b['next_since']),
                         (1, ['evt_b'], False, None))
        self.assertEqual(sorted((s['dead_id'], s['event_id']) for s in b['skipped']),
                         [(d_gone, 'evt_gone'), (d_bad, 'evt_bad')])
        gone = [s for s in b['skipped'] if s['dead_id'] == d_gone][0]
        self.assertIn('events stream', gone['reason'])
        self.assertEqual([f for _, f in h.xrange_dicts(self.rs, JOBS)],
                         [{'event': '6-0', 'endpoint': ep, 'attempt': '1'}])
        left = [sid for sid, _ in h.xrange_dicts(self.rs, DEAD)]
        self.assertNotIn(d_ok, left)
        self.assertEqual(len(left), 5)  # the skipped ones stay, for dead list
        # the CLI's dead list agrees
        listed = json.loads(self.cli('dead', 'list', '--endpoint', ep, '--json').stdout)
        self.assertEqual(sorted(e['dead_id'] for e in listed), sorted(set(left) - {'2002-0'}))

    def test_truncated_and_resumed(self):
        ep = self.create()['id']
        other = 'ep_OTHER'
        self.rs.call('XADD', EVENTS, '5-0', 'id', 'evt_mine', 'type', 't', 'data', '{}')
        # 10,001 dead letters of another endpoint, one per millisecond, then one of ours
        cmds = [('XADD', DEAD, '%d-0' % (100000 + i), 'kind', 'job', 'event', '5-0',
                 'endpoint', other) for i in range(10001)]
        for i in range(0, len(cmds), 2000):
            self.rs.pipeline(cmds[i:i + 2000])
        mine = self.dead('200000-0', ep, '5-0', 'evt_mine')
        since = '1970-01-01T00:00:00.000Z'
        b = self.call('POST', '/v1/endpoints/%s/recover' % ep, {'since': since})[2]
        conforms(self, b, 'RecoverResult')
        self.assertEqual((b['queued'], b['truncated']), (0, True))
        self.assertEqual(b['next_since'], '1970-01-01T00:01:50.000Z')  # 110000 ms
        b = self.call('POST', '/v1/endpoints/%s/recover' % ep, {'since': b['next_since']})[2]
        self.assertEqual((b['queued'], b['event_ids'], b['truncated']), (1, ['evt_mine'], False))
        self.assertEqual(self.rs.call('XRANGE', DEAD, mine, mine), [])

    def test_concurrent_recovers_queue_once(self):
        ep = self.create()['id']
        self.rs.call('XADD', EVENTS, '5-0', 'id', 'evt_a', 'type', 't', 'data', '{}')
        for i in range(300):
            self.dead('%d-0' % (1000 + i), ep, '5-0', 'evt_%d' % i)
        out = []

        def go():
            out.append(self.call('POST', '/v1/endpoints/%s/recover' % ep,
                                 {'since': '1970-01-01T00:00:00Z'})[2])
        ts = [threading.Thread(target=go) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sum(b['queued'] for b in out), 300)
        self.assertEqual(self.rs.call('XLEN', JOBS), 300)
        self.assertEqual(self.rs.call('XLEN', DEAD), 0)


class Spec(Base):
    """docs/openapi/endpoints.yaml against the server: the route table's operationIds, and
    every operation's example getting its x-hookq-success status with a conforming body."""

    def test_operation_ids_are_the_route_table(self):
        with open(os.path.join(h.SRC, 'producer', 'api_route.c')) as f:
            table = re.findall(r'\{"(\w+)", "(/v1/endpoints[^"]*)", \w+, \w+,\s*"(\w+)"\}',
                               f.read())
        spec = sorted((m.upper(), path, o['operationId']) for path, item in SPEC['paths'].items()
                      for m, o in item.items() if m != 'parameters')
        self.assertEqual(spec, sorted(table))
        self.assertEqual(len(spec), 11)

    def test_examples_succeed(self):
        for path, item in SPEC['paths'].items():
            for method, op in item.items():
                if method == 'parameters':
                    continue
                with self.subTest(op=op['operationId']):
                    self.rs.call('FLUSHALL')
                    # the fixture: one endpoint and one published event
                    ep = self.create()['id']
                    self.cli('send', 'order.paid', '{"order":1}')
                    rb = op.get('requestBody')
                    body = rb['content']['application/json']['example'] if rb else None
                    if rb:
                        schema = rb['content']['application/json']['schema']['$ref']
                        conforms(self, body, schema.rsplit('/', 1)[1])
                    st, hd, out = self.call(method.upper(), path.replace('{id}', ep), body)
                    want = op['x-hookq-success']
                    self.assertEqual(st, want, out)
                    resp = op['responses'][str(want)]
                    if 'content' in resp:
                        ref = resp['content']['application/json']['schema']['$ref']
                        conforms(self, out, ref.rsplit('/', 1)[1])
                    else:
                        self.assertEqual(out, '')
                    # every status a route answers is documented
                    self.assertTrue(all(code in op['responses'] for code in ('401', '500', '503')))


class Limits(h.TestCase):
    """Routes against Redis and configuration at their limits (own servers)."""

    def test_test_event_limits(self):
        env = {'HOOKQ_EVENTS_MAX_PAYLOAD': '1KiB', 'HOOKQ_EVENTS_MAX_DEPTH': '3'}
        with h.RedisServer() as rs, au.ApiServer(rs, env=env) as api:
            st, hd, made = api.call('POST', '/v1/endpoints', {'url': 'http://127.0.0.1:9/x'})
            path = '/v1/endpoints/%s/test' % made['id']
            res = api.call('POST', path, {'data': 'x' * 2000})
            au.problem_ok(self, *res, 413, 'payload_too_large')
            res = api.call('POST', path, {'data': [[[[1]]]]})
            au.problem_ok(self, *res, 422, 'invalid_field')
            self.assertEqual(res[2]['field'], 'data')
            res = api.call('POST', path, {'type': 'bad type'})
            au.problem_ok(self, *res, 422, 'invalid_field')
            self.assertEqual(res[2]['field'], 'type')
            res = api.call('POST', path, {'type': 5})
            self.assertEqual((res[0], res[2]['field']), (422, 'type'))
            res = api.call('POST', path, {'extra': 5})
            au.problem_ok(self, *res, 422, 'unknown_field')
            res = api.call('POST', path, raw='{', headers={'Content-Type': 'application/json'})
            au.problem_ok(self, *res, 400, 'invalid_json')
            res = api.call('POST', path, raw='{}', headers={'Content-Type': 'text/plain'})
            au.problem_ok(self, *res, 415, 'unsupported_media_type')
            res = api.call('POST', '/v1/endpoints/ep_none/test')
            au.problem_ok(self, *res, 404, 'not_found')
            self.assertEqual(rs.call('XLEN', EVENTS), 0)
            st, hd, b = api.call('POST', path, {'data': [[1]]})
            self.assertEqual(st, 202, b)
            self.assertEqual(rs.call('XLEN', EVENTS), 1)
            # a full Redis: 507, nothing written
            rs.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
            rs.call('CONFIG', 'SET', 'maxmemory', '1')
            try:
                for method, p, body in [('POST', path, None),
                                        ('POST', '/v1/endpoints', {'url': 'http://a/'}),
                                        ('PATCH', '/v1/endpoints/' + made['id'],
                                         {'description': 'x'})]:
                    res = api.call(method, p, body)
                    au.problem_ok(self, *res, 507, 'redis_full')
                    self.assertIn('retry-after', res[1])
            finally:
                rs.call('CONFIG', 'SET', 'maxmemory', '0')
            self.assertEqual(rs.call('XLEN', EVENTS), 1)
            self.assertEqual(rs.call('SCARD', P + ':endpoints'), 1)

    def test_redis_down_is_503(self):
        with h.RedisServer() as rs, au.ApiServer(rs) as api:
            st, hd, made = api.call('POST', '/v1/endpoints', {'url': 'http://127.0.0.1:9/x'})
            self.assertEqual(st, 201)
            path = '/v1/endpoints/' + made['id']
            # warm every thread's connection, so the next calls find it broken mid-request
            for _ in range(8):
                self.assertEqual(api.call('GET', path)[0], 200)
            rs.stop()
            for method, p, body in [('GET', path, None), ('GET', '/v1/endpoints', None),
                                    ('PATCH', path, {'description': 'x'}),
                                    ('POST', path + '/enable', None),
                                    ('GET', path + '/deliveries', None)]:
                res = api.call(method, p, body)
                au.problem_ok(self, *res, 503, 'redis_unavailable')
                self.assertIn('retry-after', res[1])
            rs.start()  # empty: redis-server here keeps nothing on disk
            h.wait_until(lambda: api.call('GET', '/v1/endpoints')[0] == 200, timeout=10)
            self.assertEqual(api.call('GET', '/v1/endpoints')[2], {'data': [], 'next_cursor': None,
                                                                   'unreadable': []})
            au.problem_ok(self, *api.call('GET', path), 404, 'not_found')


if __name__ == '__main__':
    h.main()
