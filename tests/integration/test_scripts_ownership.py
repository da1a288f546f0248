"""The Lua scripts act only for the consumer that owns the entry, and cap the dead-letter
stream: called directly on a real redis-server, with the exact arguments the worker
sends (worker/fanout.c, worker/results.c).

- fanout.lua skips an event that is pending for another consumer (a worker whose read
  went stale while another reclaimed and fanned out the event must not add its jobs
  again) and fans out one pending for the caller.
- settle.lua does nothing for a job pending for another consumer, and only acknowledges
  a job whose endpoint was removed.
- dead letters written by the scripts are trimmed to about dead.maxlen.
"""
import os

import harness as h

P = 'hookq'
EVENTS, JOBS, DEAD, DELAY = P + ':{q}:events', P + ':{q}:jobs', P + ':{q}:dead', P + ':{q}:delay'
VERSION = P + ':{q}:endpoints:version'
LUA = os.path.join(h.SRC, 'common', 'lua')


def script(rs, name):
    with open(os.path.join(LUA, name + '.lua')) as f:
        return rs.call('SCRIPT', 'LOAD', f.read())


def fanout_args(me, sids, endpoints, dead_maxlen=0, bad=()):
    """KEYS + ARGV of fanout.lua for good events sids (each to endpoints) and bad events
    [(sid, reason, [(name, value)...])]."""
    args = [4, EVENTS, JOBS, DEAD, VERSION, me, 0, 0, dead_maxlen]
    every = sorted(list(sids) + [b[0] for b in bad], key=lambda s: tuple(map(int, s.split('-'))))
    args += [every[0], every[-1], len(sids)]
    for sid in sids:
        args += [sid, len(endpoints)] + list(endpoints)
    args.append(len(bad))
    for sid, reason, fields in bad:
        args += [sid, reason, len(fields)]
        for k, v in fields:
            args += [k, v]
    return args


class ScriptOwnership(h.RedisTestCase):
    def setUp(self):
        super().setUp()
        rs = self.rs
        rs.call('XGROUP', 'CREATE', EVENTS, 'fanout', '0', 'MKSTREAM')
        rs.call('XGROUP', 'CREATE', JOBS, 'deliver', '0', 'MKSTREAM')
        self.fanout = script(rs, 'fanout')
        self.settle = script(rs, 'settle')

    def test_fanout_only_for_the_consumer_holding_the_event(self):
        rs = self.rs
        a = rs.call('XADD', EVENTS, '*', 'type', 't.x', 'data', '{}')
        b = rs.call('XADD', EVENTS, '*', 'type', 't.x', 'data', '{}')
        rs.call('XREADGROUP', 'GROUP', 'fanout', 'stale', 'COUNT', 2, 'STREAMS', EVENTS, '>')
        # another worker reclaims event a (its idle time does not matter here)
        rs.call('XCLAIM', EVENTS, 'fanout', 'fresh', 0, a)
        rep = rs.call('EVALSHA', self.fanout, *fanout_args('stale', [a, b], ['ep_1']))
        self.assertEqual(rep[0], 1, 'only event b is still the stale worker\'s: %r' % (rep,))
        self.assertEqual(rep[3], 1, 'event a is skipped')
        jobs = h.xrange_dicts(rs, JOBS)
        self.assertEqual([f['event'] for _, f in jobs], [b])
        # a is still pending for its new owner, who fans it out once
        rep = rs.call('EVALSHA', self.fanout, *fanout_args('fresh', [a], ['ep_1']))
        self.assertEqual(rep[0], 1)
        self.assertEqual(sorted(f['event'] for _, f in h.xrange_dicts(rs, JOBS)), sorted([a, b]))
        self.assertEqual(rs.call('XPENDING', EVENTS, 'fanout')[0], 0)

    def test_fanout_refuses_a_malformed_argument_list_before_writing(self):
        rs = self.rs
        a = rs.call('XADD', EVENTS, '*', 'type', 't.x', 'data', '{}')
        rs.call('XREADGROUP', 'GROUP', 'fanout', 'w', 'COUNT', 1, 'STREAMS', EVENTS, '>')
        args = fanout_args('w', [a], ['ep_1', 'ep_2'])
        args[-4] = 3  # claims three endpoints, lists two
        with self.assertRaises(Exception) as cm:
            rs.call('EVALSHA', self.fanout, *args)
        self.assertIn('bad argument list', str(cm.exception))
        self.assertEqual(rs.call('XLEN', JOBS), 0, 'nothing written')
        self.assertEqual(rs.call('XPENDING', EVENTS, 'fanout')[0], 1, 'event still pending')

    def settle_args(self, me, sid, mode, *rest, endpoint_key=P + ':{ep_1}:endpoint', maxlen=0):
        return [4, JOBS, DELAY, DEAD, endpoint_key, 'deliver', me, sid, maxlen, mode] + list(rest)

    def test_settle_only_for_the_owner(self):
        rs = self.rs
        rs.call('HSET', P + ':{ep_1}:endpoint', 'url', 'http://127.0.0.1:9/', 'enabled', 'true')
        j = rs.call('XADD', JOBS, '*', 'event', '1-0', 'endpoint', 'ep_1', 'attempt', '1')
        rs.call('XREADGROUP', 'GROUP', 'deliver', 'stale', 'COUNT', 1, 'STREAMS', JOBS, '>')
        rs.call('XCLAIM', JOBS, 'deliver', 'fresh', 0, j)
        got = rs.call('EVALSHA', self.settle,
                      *self.settle_args('stale', j, 'retry', 123, '1-0 ep_1 2 dlv_1'))
        self.assertEqual(got, 0)
        self.assertEqual(rs.call('ZCARD', DELAY), 0, 'the stale worker rescheduled nothing')
        got = rs.call('EVALSHA', self.settle,
                      *self.settle_args('stale', j, 'dead', 'kind', 'job', 'error', 'x'))
        self.assertEqual(got, 0)
        self.assertEqual(rs.call('XLEN', DEAD), 0)
        got = rs.call('EVALSHA', self.settle,
                      *self.settle_args('fresh', j, 'retry', 123, '1-0 ep_1 2 dlv_1'))
        self.assertEqual(got, 1)
        self.assertEqual(rs.call('ZCARD', DELAY), 1)
        self.assertEqual(rs.call('XLEN', JOBS), 0)

    def test_settle_for_a_removed_endpoint_only_acknowledges(self):
        rs = self.rs
        j = rs.call('XADD', JOBS, '*', 'event', '1-0', 'endpoint', 'ep_gone', 'attempt', '1')
        rs.call('XREADGROUP', 'GROUP', 'deliver', 'w', 'COUNT', 1, 'STREAMS', JOBS, '>')
        got = rs.call('EVALSHA', self.settle,
                      *self.settle_args('w', j, 'dead', 'kind', 'job',
                                        endpoint_key=P + ':{ep_gone}:endpoint'))
        self.assertEqual(got, 2)
        self.assertEqual(rs.call('XLEN', DEAD), 0)
        self.assertEqual(rs.call('XPENDING', JOBS, 'deliver')[0], 0)
        self.assertEqual(rs.call('EXISTS', P + ':{ep_gone}:endpoint'), 0)

    def test_dead_letters_are_capped_at_dead_maxlen(self):
        rs = self.rs
        rs.call('CONFIG', 'SET', 'stream-node-max-entries', '10')  # so MAXLEN ~ trims finely
        for _ in range(30):
            sids = [rs.call('XADD', EVENTS, '*', 'junk', 'x') for _ in range(10)]
            rs.call('XREADGROUP', 'GROUP', 'fanout', 'w', 'COUNT', 10, 'STREAMS', EVENTS, '>')
            bad = [(s, "missing field 'type'", [('f.junk', 'x')]) for s in sids]
            rs.call('EVALSHA', self.fanout, *fanout_args('w', [], [], dead_maxlen=50, bad=bad))
        n = rs.call('XLEN', DEAD)
        self.assertGreaterEqual(n, 50)
        self.assertLessEqual(n, 60, 'dead stream trimmed to about dead.maxlen=50, got %d' % n)
        self.assertEqual(rs.call('XPENDING', EVENTS, 'fanout')[0], 0)


if __name__ == '__main__':
    h.main()
