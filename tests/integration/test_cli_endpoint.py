"""hookq endpoint add/list/show/update/enable/disable/rotate-secret/rm against a real Redis."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def hgetall(rs, key):
    r = rs.call('HGETALL', key)
    return dict(zip(r[0::2], r[1::2]))


class EndpointTest(h.RedisTestCase):
    def cli(self, *args, ok=True, **kw):
        r = h.hookq(self.rs, *args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, 'hookq %s: %s' % (' '.join(args), r.stderr))
        return r

    def add(self, *args):
        r = self.cli('endpoint', 'add', *args)
        return json.loads(r.stdout)

    def test_add_stores_readable_hash(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/hook', '--events', 'task:*, order.paid',
                      '--description', 'billing', '--tenant', 'acme',
                      '--header', 'X-Team: core', '--header', 'Authorization: Bearer t0k',
                      '--github-signature')
        self.assertTrue(ep['id'].startswith('ep_'))
        self.assertTrue(ep['secret'].startswith('whsec_'))
        f = hgetall(self.rs, 'hookq:{%s}:endpoint' % ep['id'])
        self.assertEqual(f['url'], 'http://127.0.0.1:9000/hook')
        self.assertEqual(f['events'], 'task:*,order.paid')
        self.assertEqual(f['secret'], ep['secret'])
        self.assertEqual(f['description'], 'billing')
        self.assertEqual(f['tenant'], 'acme')
        self.assertEqual(f['enabled'], 'true')
        self.assertEqual(f['github_signature'], 'true')
        self.assertEqual(json.loads(f['headers']), ['X-Team: core', 'Authorization: Bearer t0k'])
        self.assertRegex(f['created_at'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
        self.assertEqual(self.rs.call('SMEMBERS', 'hookq:endpoints'), [ep['id']])
        self.assertGreaterEqual(int(self.rs.call('GET', 'hookq:{q}:endpoints:version')), 1)

    def test_add_defaults_and_given_secret(self):
        secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
        ep = self.add('--url', 'https://example.com/h', '--secret', secret)
        self.assertEqual(ep['secret'], secret)
        f = hgetall(self.rs, 'hookq:{%s}:endpoint' % ep['id'])
        self.assertEqual(f['events'], '*')
        self.assertEqual(f['github_signature'], 'false')
        self.assertNotIn('tenant', f)

    def test_list_show_never_print_secret(self):
        a = self.add('--url', 'http://127.0.0.1:9000/a', '--description', 'first')
        b = self.add('--url', 'http://127.0.0.1:9000/b', '--events', 'x.*')
        lst = self.cli('endpoint', 'list')
        self.assertIn(a['id'], lst.stdout)
        self.assertIn(b['id'], lst.stdout)
        self.assertIn('http://127.0.0.1:9000/b', lst.stdout)
        self.assertNotIn(a['secret'], lst.stdout)
        js = json.loads(self.cli('endpoint', 'list', '--json').stdout)
        self.assertEqual(sorted(e['id'] for e in js), sorted([a['id'], b['id']]))
        self.assertNotIn(a['secret'], json.dumps(js))
        show = self.cli('endpoint', 'show', a['id'])
        self.assertIn('first', show.stdout)
        self.assertNotIn(a['secret'], show.stdout)
        sj = json.loads(self.cli('--json', 'endpoint', 'show', a['id']).stdout)
        self.assertEqual(sj['id'], a['id'])
        self.assertNotIn(a['secret'], json.dumps(sj))

    def test_update(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/a', '--header', 'X-A: 1', '--tenant', 't1')
        key = 'hookq:{%s}:endpoint' % ep['id']
        before = hgetall(self.rs, key)
        v0 = int(self.rs.call('GET', 'hookq:{q}:endpoints:version'))
        self.cli('endpoint', 'update', ep['id'], '--url', 'https://example.com/new',
                 '--events', 'order.*', '--description', 'changed', '--github-signature')
        f = hgetall(self.rs, key)
        self.assertEqual(f['url'], 'https://example.com/new')
        self.assertEqual(f['events'], 'order.*')
        self.assertEqual(f['description'], 'changed')
        self.assertEqual(f['github_signature'], 'true')
        self.assertEqual(f['secret'], before['secret'])
        self.assertEqual(f['created_at'], before['created_at'])
        self.assertEqual(json.loads(f['headers']), ['X-A: 1'])
        self.assertEqual(f['tenant'], 't1')
        self.assertGreater(int(self.rs.call('GET', 'hookq:{q}:endpoints:version')), v0)
        # clearing: empty tenant, no headers, github signature off
        self.cli('endpoint', 'update', ep['id'], '--tenant', '', '--no-headers',
                 '--no-github-signature')
        f = hgetall(self.rs, key)
        self.assertNotIn('tenant', f)
        self.assertEqual(json.loads(f.get('headers', '[]')), [])
        self.assertEqual(f['github_signature'], 'false')
        # a bad value changes nothing
        r = self.cli('endpoint', 'update', ep['id'], '--url', 'javascript:alert(1)', ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(hgetall(self.rs, key)['url'], 'https://example.com/new')
        r = self.cli('endpoint', 'update', ep['id'], ok=False)
        self.assertEqual(r.returncode, 2)

    def test_disable_enable_resets_failures(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/a')
        key = 'hookq:{%s}:endpoint' % ep['id']
        self.cli('endpoint', 'disable', ep['id'], '--reason', 'maintenance window')
        f = hgetall(self.rs, key)
        self.assertEqual(f['enabled'], 'false')
        self.assertEqual(f['disabled_reason'], 'maintenance window')
        self.assertIn('disabled_at', f)
        self.rs.call('SET', 'hookq:{%s}:failures' % ep['id'], '37')
        self.cli('endpoint', 'enable', ep['id'])
        f = hgetall(self.rs, key)
        self.assertEqual(f['enabled'], 'true')
        self.assertNotIn('disabled_reason', f)
        self.assertEqual(self.rs.call('EXISTS', 'hookq:{%s}:failures' % ep['id']), 0)
        js = json.loads(self.cli('endpoint', 'disable', ep['id'], '--json').stdout)
        self.assertEqual(js['enabled'], False)
        self.assertEqual(hgetall(self.rs, key)['disabled_reason'], 'disabled by operator')

    def test_rotate_secret(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/a')
        r = json.loads(self.cli('endpoint', 'rotate-secret', ep['id']).stdout)
        self.assertTrue(r['secret'].startswith('whsec_'))
        self.assertNotEqual(r['secret'], ep['secret'])
        f = hgetall(self.rs, 'hookq:{%s}:endpoint' % ep['id'])
        self.assertEqual(f['secret'], r['secret'])
        self.assertEqual(f['secret_old'], ep['secret'])
        self.assertRegex(f['secret_old_until'], r'^\d{4}-')
        # endpoints.rotation_grace from the environment sets how long the old secret lives
        r2 = self.cli('endpoint', 'rotate-secret', ep['id'],
                      env={'HOOKQ_ENDPOINTS_ROTATION_GRACE': '1h'})
        f2 = hgetall(self.rs, 'hookq:{%s}:endpoint' % ep['id'])
        self.assertEqual(f2['secret_old'], r['secret'])
        self.assertEqual(f2['secret'], json.loads(r2.stdout)['secret'])
        self.assertLess(f2['secret_old_until'], f['secret_old_until'])

    def test_github_secret(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/a', '--github-signature',
                      '--github-secret', 'previous')
        key = 'hookq:{%s}:endpoint' % ep['id']
        self.assertEqual(ep['github_secret'], 'previous')
        self.assertEqual(hgetall(self.rs, key)['github_secret'], 'previous')
        show = self.cli('endpoint', 'show', ep['id']).stdout
        self.assertRegex(show, r'(?m)^github_secret\s+previous$')
        # rotate-secret keeps the setting (the worker then signs X-Hub-Signature-256 with
        # secret_old until secret_old_until)
        self.cli('endpoint', 'rotate-secret', ep['id'])
        f = hgetall(self.rs, key)
        self.assertEqual(f['github_secret'], 'previous')
        self.assertEqual(f['secret_old'], ep['secret'])
        js = json.loads(self.cli('endpoint', 'update', ep['id'], '--github-secret', 'current',
                                 '--json').stdout)
        self.assertEqual(js['github_secret'], 'current')
        self.assertEqual(hgetall(self.rs, key)['github_secret'], 'current')
        # the default is current
        other = self.add('--url', 'http://127.0.0.1:9000/b')
        self.assertEqual(other['github_secret'], 'current')
        self.assertEqual(hgetall(self.rs, 'hookq:{%s}:endpoint' % other['id'])['github_secret'],
                         'current')
        # anything else is a usage error and changes nothing
        v = self.rs.call('GET', 'hookq:{q}:endpoints:version')
        for args in (['endpoint', 'update', ep['id'], '--github-secret', 'old'],
                     ['endpoint', 'add', '--url', 'http://127.0.0.1:9000/c',
                      '--github-secret', 'both']):
            r = self.cli(*args, ok=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn('--github-secret: expected current or previous', r.stderr)
            self.assertIn('usage: hookq endpoint', r.stderr)
        self.assertEqual(self.rs.call('GET', 'hookq:{q}:endpoints:version'), v)
        self.assertEqual(self.rs.call('SCARD', 'hookq:endpoints'), 2)

    def test_rm(self):
        ep = self.add('--url', 'http://127.0.0.1:9000/a')
        other = self.add('--url', 'http://127.0.0.1:9000/b')
        i = ep['id']
        self.rs.call('SET', 'hookq:{%s}:failures' % i, '3')
        self.rs.call('XADD', 'hookq:{%s}:log' % i, '*', 'event_id', 'evt_1', 'outcome', 'retry')
        self.cli('endpoint', 'rm', i)
        for k in ('endpoint', 'failures', 'log'):
            self.assertEqual(self.rs.call('EXISTS', 'hookq:{%s}:%s' % (i, k)), 0, k)
        self.assertEqual(self.rs.call('SMEMBERS', 'hookq:endpoints'), [other['id']])
        r = self.cli('endpoint', 'rm', i, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('not found', r.stderr)
        r = self.cli('endpoint', 'show', i, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith('hookq: '))

    def test_unreadable_endpoint_is_listed_not_hidden(self):
        # A hash hookq cannot parse (a bad known field) must not make `list` fail or hide
        # it; a field from a newer hookq is no reason to call a hash unreadable.
        good = self.add('--url', 'http://127.0.0.1:9000/good')
        newer = self.add('--url', 'http://127.0.0.1:9000/newer')
        self.rs.call('HSET', 'hookq:{%s}:endpoint' % newer['id'], 'retry_policy', 'fancy-v9')
        bad = 'ep_0broken'
        self.rs.call('HSET', 'hookq:{%s}:endpoint' % bad, 'url', 'http://127.0.0.1:9000/bad',
                     'secret', good['secret'], 'enabled', 'yes')
        self.rs.call('SADD', 'hookq:endpoints', bad)
        wrong = 'ep_0wrongtype'
        self.rs.call('SET', 'hookq:{%s}:endpoint' % wrong, 'not a hash')
        self.rs.call('SADD', 'hookq:endpoints', wrong)

        r = self.cli('endpoint', 'list')
        rows = {line.split()[0]: line for line in r.stdout.strip().split('\n')[1:]}
        self.assertEqual(sorted(rows), sorted([good['id'], newer['id'], bad, wrong]))
        self.assertIn('unreadable', rows[bad])
        self.assertIn("field 'enabled'", rows[bad])
        self.assertIn('unreadable', rows[wrong])
        self.assertIn('true', rows[newer['id']])
        self.assertIn("hookq: endpoint %s: field 'enabled': expected true or false" % bad,
                      r.stderr)
        self.assertIn('WRONGTYPE', r.stderr)
        self.assertNotIn(newer['id'], r.stderr)

        js = {e['id']: e for e in json.loads(self.cli('endpoint', 'list', '--json').stdout)}
        self.assertEqual(js[bad]['unreadable'], True)
        self.assertIn("field 'enabled'", js[bad]['error'])
        self.assertEqual(js[newer['id']]['url'], 'http://127.0.0.1:9000/newer')
        self.assertNotIn('unreadable', js[good['id']])

        # show names the endpoint and field; stats counts it
        r = self.cli('endpoint', 'show', bad, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("endpoint %s: field 'enabled'" % bad, r.stderr)
        st = json.loads(self.cli('stats', '--json').stdout)
        self.assertEqual((st['endpoints_enabled'], st['endpoints_unreadable']), (2, 2))

        # retry still queues for the readable ones, and says which it could not consider
        eid = self.cli('send', 'a.b', '{}').stdout.strip()
        r = self.cli('retry', eid, '--json')
        self.assertEqual(sorted(json.loads(r.stdout)['endpoints']),
                         sorted([good['id'], newer['id']]))
        self.assertIn(bad, r.stderr)

    def test_validation_errors(self):
        cases = [
            (['--url', 'ftp://example.com/x'], '--url'),
            (['--url', 'not a url'], '--url'),
            (['--url', 'http://example.com/x', '--header', 'X-A: a\r\nX-Injected: 1'], '--header'),
            (['--url', 'http://example.com/x', '--header', 'X-A: line\nbreak'], '--header'),
            (['--url', 'http://example.com/x', '--header', 'Content-Length: 5'], '--header'),
            (['--url', 'http://example.com/x', '--header', 'webhook-signature: v1,x'], '--header'),
            (['--url', 'http://example.com/x', '--header', 'no colon'], '--header'),
            (['--url', 'http://example.com/x', '--events', 'task*'], '--events'),
            (['--url', 'http://example.com/x', '--events', 'a,,b'], '--events'),
            (['--url', 'http://example.com/x', '--secret', 'whsec_short'], '--secret'),
            (['--url', 'http://example.com/x', '--tenant', 'bad tenant'], '--tenant'),
        ]
        for args, word in cases:
            r = self.cli('endpoint', 'add', *args, ok=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(word, r.stderr, args)
            self.assertTrue(r.stderr.startswith('hookq: '), r.stderr)
            self.assertEqual(r.stdout, '')
        self.assertEqual(self.rs.call('SCARD', 'hookq:endpoints'), 0)


if __name__ == '__main__':
    h.main()
