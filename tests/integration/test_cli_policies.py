"""hookq endpoint add/update policy flags, show's lane view, enable --discard-held and rm's
lane cleanup, against a real Redis (docs/policies.md, docs/cli.md)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

HEAD = '00000001764600000000-00000000000000000005'
NEXT = '00000001764600000001-00000000000000000000'
LAST = '00000001764599999999-00000000000000000001'
OTHER = '00000001764600000002-00000000000000000003'
LEASED = '00000001764600000009-00000000000000000000'


def hgetall(rs, key):
    r = rs.call('HGETALL', key)
    return dict(zip(r[0::2], r[1::2]))


class PoliciesTest(h.RedisTestCase):
    def cli(self, *args, ok=True, **kw):
        r = h.hookq(self.rs, *args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, 'hookq %s: %s' % (' '.join(args), r.stderr))
        return r

    def add(self, *args):
        return json.loads(self.cli('endpoint', 'add', '--url', 'http://127.0.0.1:9/h',
                                   *args).stdout)['id']

    def fields(self, ep):
        return hgetall(self.rs, 'hookq:{%s}:endpoint' % ep)

    def k(self, ep, part):
        return 'hookq:{%s}:%s' % (ep, part)

    def test_add_sets_every_policy_field(self):
        ep = self.add('--ordered', '--order-key', 'task_id', '--rate', '50/s',
                      '--max-in-flight', '8', '--on-disabled', 'hold', '--hold-max', '500')
        f = self.fields(ep)
        self.assertEqual(f['ordered'], 'true')
        self.assertEqual(f['order_key'], 'data.task_id')
        self.assertEqual(f['rate'], '50/s')
        self.assertEqual(f['max_in_flight'], '8')
        self.assertEqual(f['on_disabled'], 'hold')
        self.assertEqual(f['hold_max'], '500')
        self.assertEqual(f['lanes'], 'true')

    def test_add_without_policy_has_no_policy_fields(self):
        f = self.fields(self.add())
        for k in ('ordered', 'order_key', 'rate', 'max_in_flight', 'on_disabled', 'hold_max',
                  'lanes', 'breaker'):
            self.assertNotIn(k, f)

    def test_update_each_flag_and_remove(self):
        ep = self.add()
        self.cli('endpoint', 'update', ep, '--ordered')
        self.assertEqual(self.fields(ep)['ordered'], 'true')
        self.assertEqual(self.fields(ep)['lanes'], 'true')
        # the endpoint is ordered already: --order-key alone is fine
        self.cli('endpoint', 'update', ep, '--order-key', 'tenant')
        self.assertEqual(self.fields(ep)['order_key'], 'tenant')
        self.cli('endpoint', 'update', ep, '--order-key', 'data.x')
        self.assertEqual(self.fields(ep)['order_key'], 'data.x')
        self.cli('endpoint', 'update', ep, '--order-key', 'none')
        self.assertNotIn('order_key', self.fields(ep))
        self.cli('endpoint', 'update', ep, '--rate', '3000/m', '--max-in-flight', '4')
        f = self.fields(ep)
        self.assertEqual((f['rate'], f['max_in_flight']), ('3000/m', '4'))
        self.cli('endpoint', 'update', ep, '--rate', '10/h')
        self.assertEqual(self.fields(ep)['rate'], '10/h')
        self.cli('endpoint', 'update', ep, '--rate', 'none', '--max-in-flight', 'none')
        f = self.fields(ep)
        self.assertNotIn('rate', f)
        self.assertNotIn('max_in_flight', f)
        self.cli('endpoint', 'update', ep, '--on-disabled', 'hold', '--hold-max', '7')
        f = self.fields(ep)
        self.assertEqual((f['on_disabled'], f['hold_max']), ('hold', '7'))
        self.cli('endpoint', 'update', ep, '--on-disabled', 'drop')
        self.assertNotIn('on_disabled', self.fields(ep))
        self.cli('endpoint', 'update', ep, '--order-key', 'k', '--ordered')
        self.cli('endpoint', 'update', ep, '--unordered')
        f = self.fields(ep)
        self.assertNotIn('ordered', f)
        self.assertNotIn('order_key', f)  # meaningless without order: cleared with it
        self.assertEqual(f['lanes'], 'true')  # kept once set: jobs may still wait there
        js = json.loads(self.cli('--json', 'endpoint', 'show', ep).stdout)
        self.assertEqual(js['policy'], {'ordered': False, 'order_key': None, 'rate': None,
                                        'max_in_flight': None, 'on_disabled': 'drop',
                                        'hold_max': 7})

    def test_order_key_needs_ordered(self):
        r = self.cli('endpoint', 'add', '--url', 'http://127.0.0.1:9/h', '--order-key', 'tenant',
                     ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('--order-key needs --ordered', r.stderr)
        self.assertEqual(self.rs.call('SCARD', 'hookq:endpoints'), 0)
        ep = self.add()
        r = self.cli('endpoint', 'update', ep, '--order-key', 'tenant', ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('--order-key needs --ordered', r.stderr)
        self.assertNotIn('order_key', self.fields(ep))
        ep2 = self.add('--ordered')
        r = self.cli('endpoint', 'update', ep2, '--unordered', '--order-key', 'tenant', ok=False)
        self.assertIn('--order-key needs --ordered', r.stderr)
        self.assertEqual(self.fields(ep2)['ordered'], 'true')

    def test_bad_values_name_the_option(self):
        ep = self.add()
        before = self.fields(ep)
        cases = [('--rate', '0/s'), ('--rate', '5/x'), ('--rate', '5'), ('--rate', '-1/s'),
                 ('--rate', '1000001/s'), ('--max-in-flight', '0'),
                 ('--max-in-flight', '1000001'), ('--max-in-flight', 'lots'),
                 ('--on-disabled', 'keep'), ('--hold-max', '0'), ('--hold-max', '100000001'),
                 ('--hold-max', 'none'), ('--order-key', 'a.b'), ('--order-key', 'data.')]
        for opt, val in cases:
            for cmd in (['endpoint', 'add', '--url', 'http://127.0.0.1:9/h', '--ordered'],
                        ['endpoint', 'update', ep, '--ordered']):
                r = self.cli(*(cmd + [opt, val]), ok=False)
                self.assertEqual(r.returncode, 1, (cmd, opt, val, r.stderr))
                self.assertTrue(r.stderr.startswith('hookq: ' + opt + ': '), (opt, val, r.stderr))
                self.assertIn(val, r.stderr)
        self.assertEqual(self.fields(ep), before)
        self.assertEqual(self.rs.call('SCARD', 'hookq:endpoints'), 1)
        # command-line mistakes stay usage errors
        for args in (['--rate'], ['--ordered', '--unordered'], ['--ordered=yes'], ['--rates', '1/s']):
            r = self.cli('endpoint', 'update', ep, *args, ok=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn('usage:', r.stderr)

    def write_lanes(self, ep):
        self.rs.call('ZADD', self.k(ep, 'lane:42'), 0, HEAD, 0, NEXT)
        self.rs.call('ZADD', self.k(ep, 'lane:7'), 0, OTHER)
        self.rs.call('SADD', self.k(ep, 'lanekeys'), '42', '7')
        self.rs.call('HSET', self.k(ep, 'state'), 'n', 3, 'last:42', LAST, 'h:7', 1, 'h:9', 1,
                     'dropped', 4, 'pause', 1764600005000)
        self.rs.call('ZADD', self.k(ep, 'ready'), 1764600000000, '42')
        self.rs.call('HSET', self.k(ep, 'tries'), HEAD, 2, LEASED, 1)
        self.rs.call('ZADD', self.k(ep, 'leases'), 1764600009000, LEASED + '\t9\tw1')

    def test_show_ordered_lanes(self):
        ep = self.add('--ordered', '--order-key', 'task_id', '--rate', '50/s',
                      '--max-in-flight', '8')
        self.write_lanes(ep)
        self.rs.call('HSET', self.k(ep, 'health'), 'since', 1764600000000, 'n', 12, 'f', 10,
                     'opens', 1)
        self.rs.call('HSET', self.k(ep, 'endpoint'), 'breaker', 'open',
                     'breaker_until', 1764600030000, 'breaker_opened_at', '2025-12-01T14:40:00Z')
        js = json.loads(self.cli('--json', 'endpoint', 'show', ep).stdout)
        self.assertEqual(js['breaker'], 'open')
        self.assertEqual(js['breaker_until'], '2025-12-01T14:40:30.000Z')
        self.assertEqual(js['breaker_opened_at'], '2025-12-01T14:40:00.000Z')
        self.assertEqual(js['health'], {'since': '2025-12-01T14:40:00.000Z', 'attempts': 12,
                                        'failures': 10, 'opens': 1})
        ln = js['lanes']
        self.assertEqual((ln['in_flight'], ln['backlog'], ln['dropped'], ln['pause_until']),
                         (1, 3, 4, '2025-12-01T14:40:05.000Z'))
        keys = {k['key']: k for k in ln['keys']}
        self.assertEqual(sorted(keys), ['42', '7', '9'])  # lanekeys plus the leases' keys
        self.assertEqual(keys['42'], {'key': '42', 'backlog': 2, 'head': '1764600000000-5',
                                      'attempts': 2, 'next_attempt': '2025-12-01T14:40:00.000Z',
                                      'in_flight': False, 'position': '1764599999999-1'})
        self.assertEqual((keys['7']['head'], keys['7']['next_attempt'], keys['7']['attempts']),
                         ('1764600000002-3', 'in flight', 0))
        self.assertEqual((keys['9']['backlog'], keys['9']['head'], keys['9']['in_flight']),
                         (0, None, True))
        out = self.cli('endpoint', 'show', ep).stdout
        self.assertIn('policy\n', out)
        self.assertRegex(out, r'\n  order_key +data\.task_id\n')
        self.assertRegex(out, r'\n  rate +50/s\n')
        self.assertRegex(out, r'\nbreaker +open\n')
        row = [line.split() for line in out.splitlines() if line.split()[:1] == ['42']][0]
        self.assertEqual(row, ['42', '2', '1764600000000-5', '2', '2025-12-01T14:40:00.000Z',
                               '1764599999999-1'])
        self.assertRegex(out, r'\n  7 +1 +1764600000002-3 +0 +in flight +-\n')

    def test_show_without_lanes_and_unordered(self):
        ep = self.add()
        js = json.loads(self.cli('--json', 'endpoint', 'show', ep).stdout)
        self.assertNotIn('lanes', js)
        self.assertIsNone(js['health'])
        self.assertEqual(js['breaker'], 'closed')
        ep2 = self.add('--rate', '5/s')
        self.rs.call('ZADD', self.k(ep2, 'lane:'), 0, HEAD)
        self.rs.call('SADD', self.k(ep2, 'lanekeys'), '')
        self.rs.call('HSET', self.k(ep2, 'state'), 'n', 1)
        ln = json.loads(self.cli('--json', 'endpoint', 'show', ep2).stdout)['lanes']
        self.assertEqual((ln['backlog'], ln['in_flight'], ln['keys_total']), (1, 0, 1))
        self.assertNotIn('keys', ln)  # one unordered lane: no per-key rows

    def test_show_caps_keys(self):
        ep = self.add('--ordered', '--order-key', 'tenant')
        for i in range(60):
            self.rs.call('ZADD', self.k(ep, 'lane:t%02d' % i), 0, HEAD)
            self.rs.call('SADD', self.k(ep, 'lanekeys'), 't%02d' % i)
        ln = json.loads(self.cli('--json', 'endpoint', 'show', ep).stdout)['lanes']
        self.assertEqual(ln['keys_total'], 60)
        self.assertEqual(len(ln['keys']), 50)
        self.assertIn('(50 of 60 keys shown)', self.cli('endpoint', 'show', ep).stdout)

    def test_enable_discard_held(self):
        ep = self.add('--ordered', '--order-key', 'task_id', '--on-disabled', 'hold')
        self.cli('endpoint', 'disable', ep)
        self.write_lanes(ep)
        r = self.cli('endpoint', 'enable', ep, '--discard-held')
        self.assertIn('3 held jobs discarded', r.stdout)
        self.assertEqual(self.fields(ep)['enabled'], 'true')
        for part in ('lane:42', 'lane:7', 'lanekeys', 'ready'):
            self.assertEqual(self.rs.call('EXISTS', self.k(ep, part)), 0, part)
        st = hgetall(self.rs, self.k(ep, 'state'))
        self.assertNotIn('n', st)
        self.assertNotIn('h:7', st)
        # in flight: the lease, its attempt count and its key's mark stay; so does history
        self.assertEqual(st['h:9'], '1')
        self.assertEqual(st['last:42'], LAST)
        self.assertEqual(st['dropped'], '4')
        self.assertEqual(self.rs.call('ZCARD', self.k(ep, 'leases')), 1)
        self.assertEqual(hgetall(self.rs, self.k(ep, 'tries')), {LEASED: '1'})
        js = json.loads(self.cli('--json', 'endpoint', 'enable', ep, '--discard-held').stdout)
        self.assertEqual((js['discarded'], js['enabled']), (0, True))
        # without the flag, enable leaves held jobs to be delivered
        self.cli('endpoint', 'disable', ep)
        self.rs.call('ZADD', self.k(ep, 'lane:42'), 0, HEAD)
        self.rs.call('SADD', self.k(ep, 'lanekeys'), '42')
        r = self.cli('endpoint', 'enable', ep)
        self.assertNotIn('discarded', r.stdout)
        self.assertEqual(self.rs.call('ZCARD', self.k(ep, 'lane:42')), 1)

    def test_rm_deletes_lane_keys(self):
        ep = self.add('--ordered', '--order-key', 'task_id')
        keep = self.add()
        self.write_lanes(ep)
        self.rs.call('HSET', self.k(ep, 'health'), 'n', 1)
        self.rs.call('ZADD', self.k(keep, 'lane:1'), 0, HEAD)
        self.cli('endpoint', 'rm', ep)
        self.assertEqual(self.rs.call('KEYS', 'hookq:{%s}:*' % ep), [])
        self.assertEqual(self.rs.call('ZCARD', self.k(keep, 'lane:1')), 1)

    def test_list_breaker_and_policy_columns(self):
        a = self.add('--ordered', '--rate', '50/s', '--max-in-flight', '8', '--on-disabled',
                     'hold')
        b = self.add()
        self.rs.call('HSET', self.k(b, 'endpoint'), 'breaker', 'half_open',
                     'breaker_until', 1)
        out = self.cli('endpoint', 'list').stdout.splitlines()
        self.assertEqual(out[0].split()[:4], ['ID', 'ENABLED', 'BREAKER', 'POLICY'])
        rows = {line.split()[0]: line.split() for line in out[1:]}
        self.assertEqual(rows[a][1:4], ['true', 'closed', 'ordered,50/s,mif=8,hold'])
        self.assertEqual(rows[b][1:4], ['true', 'half_open', '-'])
        js = {e['id']: e for e in json.loads(self.cli('--json', 'endpoint', 'list').stdout)}
        self.assertEqual(js[a]['policy']['rate'], '50/s')
        self.assertEqual(js[b]['breaker'], 'half_open')


if __name__ == '__main__':
    h.main()
