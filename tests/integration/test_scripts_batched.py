"""The batched result scripts, called directly on a real redis-server with the arguments
the worker sends (worker/results.c): fail.lua with one endpoint's outcomes of a round in
completion order, settle_batch.lua with every job of a round that goes back or out.

fail.lua
- "fail, success, fail" in one call ends at 1, not 2 or 0; a run ending in a success
  deletes the counter.
- n failures crossing endpoints.disable_after in one call disable once, at exactly the
  threshold, with one endpoint.disabled event, one version bump, the reason quoting the
  failure that crossed it, and the count left at the threshold; a second call (another
  worker, or the next chunk) counts nothing; the same split over two calls gives the same.
- ">=": a count already above the threshold disables at the next failure.
- 410 ("g") disables at once, even with disable_after 0.
- a success after the disable in the same call still resets the counter (as DEL did).
- a removed endpoint: nothing written; a disabled one: nothing counted.
- malformed arguments are refused before anything is written.
settle_batch.lua
- a batch mixing jobs owned and not owned: only the owned ones are rescheduled /
  dead-lettered and acknowledged; the others stay pending for their new owner.
- jobs of a removed endpoint are only acknowledged; the others of the batch settled.
- a consumer holding more pending entries in the batch's range than one XPENDING page
  still gets an exact ownership answer.
- a job whose write fails is not acknowledged; the rest of the batch is.
- both run while Redis is at maxmemory (allow-oom).
"""
import json
import os

import harness as h

P = 'hookq'
EVENTS, JOBS, DEAD, DELAY = P + ':{q}:events', P + ':{q}:jobs', P + ':{q}:dead', P + ':{q}:delay'
VERSION = P + ':{q}:endpoints:version'
LUA = os.path.join(h.SRC, 'common', 'lua')
NOW_ISO = '2026-01-01T00:00:00.000Z'


def script(rs, name):
    with open(os.path.join(LUA, name + '.lua')) as f:
        return rs.call('SCRIPT', 'LOAD', f.read())


def ep_key(ep):
    return '%s:{%s}:endpoint' % (P, ep)


def fail_key(ep):
    return '%s:{%s}:failures' % (P, ep)


def health_key(ep):
    return '%s:{%s}:health' % (P, ep)


def disabled_events(rs):
    return [json.loads(f['data']) for _, f in h.xrange_dicts(rs, EVENTS)
            if f.get('type') == 'endpoint.disabled']


class FailBatch(h.RedisTestCase):
    def setUp(self):
        super().setUp()
        self.sha = script(self.rs, 'fail')
        self.rs.call('HSET', ep_key('ep_1'), 'url', 'http://127.0.0.1:9/', 'enabled', 'true')

    def fail(self, outcomes, limit=5, ep='ep_1'):
        # breaker.enabled false (window 0): the counter alone, as before the breaker
        # (tests/integration/test_scripts_breaker.py covers both together)
        return self.rs.call('EVALSHA', self.sha, 5, fail_key(ep), ep_key(ep), VERSION, EVENTS,
                            health_key(ep), limit, NOW_ISO, ep, 1767225600000,
                            0, 10, 0.7, 30000, 600000, *outcomes)[:3]

    def count(self, ep='ep_1'):
        v = self.rs.call('GET', fail_key(ep))
        return None if v is None else int(v)

    def test_fail_success_fail_ends_at_one(self):
        self.rs.call('SET', fail_key('ep_1'), 3)
        self.assertEqual(self.fail(['fHTTP 500', 's', 'fHTTP 500']), [1, 0, 0])
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.fail(['s', 'fHTTP 500', 'fHTTP 500']), [2, 0, 0])
        self.assertEqual(self.count(), 2)
        self.assertEqual(self.fail(['fHTTP 500', 's']), [0, 0, 0])
        self.assertIsNone(self.count(), 'a batch ending in a success deletes the counter')
        self.assertEqual(self.fail(['fx', 'fx', 'fx']), [3, 0, 0])
        self.assertEqual(self.count(), 3, 'no success: counted on top of nothing')
        self.assertEqual(disabled_events(self.rs), [])
        self.assertEqual(self.rs.call('HGET', ep_key('ep_1'), 'enabled'), 'true')

    def test_crossing_the_threshold_in_one_batch_disables_once(self):
        rs = self.rs
        self.assertEqual(self.fail(['fe%d' % i for i in range(1, 9)]), [5, 1, 5])
        self.assertEqual(self.count(), 5, 'the failures after the disable are not counted')
        self.assertEqual(rs.call('HGET', ep_key('ep_1'), 'enabled'), 'false')
        self.assertEqual(rs.call('HGET', ep_key('ep_1'), 'disabled_reason'),
                         '5 consecutive failed attempts (last: e5)')
        self.assertEqual(rs.call('HGET', ep_key('ep_1'), 'disabled_at'), NOW_ISO)
        self.assertEqual(rs.call('GET', VERSION), '1')
        self.assertEqual(disabled_events(rs), [
            {'endpoint_id': 'ep_1', 'reason': 'consecutive failures', 'failures': 5}])
        # another worker's batch (or the next chunk of this one) finds it disabled
        self.assertEqual(self.fail(['fe9', 'fe10']), [5, 2, 0])
        self.assertEqual(self.count(), 5)
        self.assertEqual(len(disabled_events(rs)), 1)
        self.assertEqual(rs.call('GET', VERSION), '1')

    def test_crossing_split_over_two_calls_is_the_same(self):
        self.assertEqual(self.fail(['fa', 'fb', 'fc']), [3, 0, 0])
        self.assertEqual(self.fail(['s', 'fd', 'fe', 'ff', 'fg', 'fh', 'fi']), [5, 1, 6])
        self.assertEqual(self.count(), 5)
        self.assertEqual(self.rs.call('HGET', ep_key('ep_1'), 'disabled_reason'),
                         '5 consecutive failed attempts (last: h)')
        self.assertEqual(len(disabled_events(self.rs)), 1)

    def test_at_or_above_the_threshold_disables_at_the_next_failure(self):
        self.rs.call('SET', fail_key('ep_1'), 60)
        self.assertEqual(self.fail(['fx', 'fy'], limit=50), [61, 1, 1])
        self.assertEqual(self.count(), 61)
        self.assertEqual(disabled_events(self.rs)[0]['failures'], 61)

    def test_410_disables_at_once(self):
        self.assertEqual(self.fail(['fx', 'g', 'fz'], limit=0), [2, 1, 2])
        self.assertEqual(self.rs.call('HGET', ep_key('ep_1'), 'disabled_reason'), '410 Gone')
        self.assertEqual(disabled_events(self.rs), [
            {'endpoint_id': 'ep_1', 'reason': '410 Gone', 'failures': 2}])
        self.assertEqual(self.count(), 2)

    def test_success_after_the_disable_still_resets(self):
        self.assertEqual(self.fail(['fx', 'fx', 's', 'fx'], limit=2), [2, 1, 2])
        self.assertIsNone(self.count(), 'the success deletes the counter, the failure after it '
                          'is not counted (disabled)')
        self.assertEqual(self.rs.call('HGET', ep_key('ep_1'), 'enabled'), 'false')
        self.rs.call('SET', fail_key('ep_1'), 7)
        self.assertEqual(self.fail(['fx', 's', 'fx']), [0, 2, 0])
        self.assertIsNone(self.count(), 'disabled already: a success still resets')
        self.rs.call('SET', fail_key('ep_1'), 7)
        self.assertEqual(self.fail(['fx', 'fx']), [7, 2, 0])
        self.assertEqual(self.count(), 7, 'disabled already: nothing counted')
        self.assertEqual(len(disabled_events(self.rs)), 1)

    def test_removed_endpoint_writes_nothing(self):
        rs = self.rs
        before = rs.call('DBSIZE')
        self.assertEqual(self.fail(['fx', 's', 'g', 'fx'], ep='ep_gone'), [0, 3, 0])
        self.assertEqual(rs.call('EXISTS', fail_key('ep_gone'), ep_key('ep_gone')), 0)
        self.assertEqual(rs.call('DBSIZE'), before)
        self.assertIsNone(rs.call('GET', VERSION))

    def test_malformed_arguments_are_refused_before_writing(self):
        for bad in (['fx', 'x'], []):
            with self.assertRaises(h.RedisError):
                self.fail(bad)
        self.assertIsNone(self.count())
        with self.assertRaises(h.RedisError):
            self.fail(['fx'], limit='many')
        self.assertIsNone(self.count())

    def test_runs_while_redis_is_full(self):
        rs = self.rs
        rs.call('CONFIG', 'SET', 'maxmemory', 1)
        try:
            with self.assertRaises(h.RedisError):
                rs.call('SET', 'probe', 'x')  # writes outside the script are refused
            self.assertEqual(self.fail(['s', 'fx', 'fx', 'fx', 'fx', 'fx']), [5, 1, 6])
        finally:
            rs.call('CONFIG', 'SET', 'maxmemory', 0)
        self.assertEqual(self.count(), 5)
        self.assertEqual(len(disabled_events(rs)), 1)
        self.assertEqual(rs.call('GET', VERSION), '1')


class SettleBatch(h.RedisTestCase):
    def setUp(self):
        super().setUp()
        rs = self.rs
        rs.call('XGROUP', 'CREATE', JOBS, 'deliver', '0', 'MKSTREAM')
        self.sha = script(rs, 'settle_batch')
        for ep in ('ep_1', 'ep_2'):
            rs.call('HSET', ep_key(ep), 'url', 'http://127.0.0.1:9/', 'enabled', 'true')

    def jobs(self, n, ep='ep_1', reader='w'):
        sids = [self.rs.call('XADD', JOBS, '*', 'event', '1-%d' % i, 'endpoint', ep, 'attempt',
                             '1') for i in range(n)]
        self.rs.call('XREADGROUP', 'GROUP', 'deliver', reader, 'COUNT', n, 'STREAMS', JOBS, '>')
        return sids

    @staticmethod
    def retry(sid, ep, due=1000):
        return (sid, ep, ['retry', due, '1-0 %s 2 dlv_%s' % (ep, sid)])

    @staticmethod
    def dead(sid, ep):
        pairs = ['kind', 'job', 'event', '1-0', 'event_id', 'evt_1', 'type', 'x', 'endpoint', ep,
                 'attempt', '3', 'error', 'HTTP 500', 'status', '500', 'failed_at', NOW_ISO]
        return (sid, ep, ['dead', len(pairs) // 2] + pairs)

    def settle(self, me, items, maxlen=0):
        """items: [(sid, endpoint id, per-job tail)], as worker/results.c builds them."""
        eps = []
        for _, ep, _ in items:
            if ep not in eps:
                eps.append(ep)
        args = [3 + len(eps), JOBS, DELAY, DEAD] + [ep_key(e) for e in eps]
        args += ['deliver', me, maxlen, len(items)]
        for sid, ep, tail in items:
            args += [sid, 4 + eps.index(ep)] + tail
        return self.rs.call('EVALSHA', self.sha, *args)

    def pending(self, consumer):
        return [p[0] for p in self.rs.call('XPENDING', JOBS, 'deliver', '-', '+', 1000, consumer)]

    def test_only_owned_jobs_are_rescheduled(self):
        rs = self.rs
        a, b, c, d = self.jobs(4, reader='stale')
        rs.call('XCLAIM', JOBS, 'deliver', 'fresh', 0, b, d)  # another worker reclaimed b, d
        got = self.settle('stale', [self.retry(a, 'ep_1'), self.retry(b, 'ep_1'),
                                    self.dead(c, 'ep_1'), self.dead(d, 'ep_1')])
        self.assertEqual(got, [1, 0, 1, 0])
        self.assertEqual(rs.call('ZRANGE', DELAY, 0, -1), ['1-0 ep_1 2 dlv_' + a])
        dead = h.xrange_dicts(rs, DEAD)
        self.assertEqual(len(dead), 1)
        self.assertEqual(dead[0][1]['error'], 'HTTP 500')
        self.assertEqual(sorted(self.pending('fresh')), sorted([b, d]), 'still theirs')
        self.assertEqual(self.pending('stale'), [])
        self.assertEqual(sorted(s for s, _ in h.xrange_dicts(rs, JOBS)), sorted([b, d]),
                         'only the settled jobs are deleted')

    def test_a_removed_endpoint_is_only_acknowledged(self):
        rs = self.rs
        a, b = self.jobs(2, 'ep_1')
        g1, g2 = self.jobs(2, 'ep_gone')
        c, = self.jobs(1, 'ep_2')
        got = self.settle('w', [self.retry(a, 'ep_1'), self.retry(g1, 'ep_gone'),
                                self.dead(g2, 'ep_gone'), self.dead(b, 'ep_1'),
                                self.retry(c, 'ep_2')])
        self.assertEqual(got, [1, 2, 2, 1, 1])
        self.assertEqual(sorted(rs.call('ZRANGE', DELAY, 0, -1)),
                         sorted(['1-0 ep_1 2 dlv_' + a, '1-0 ep_2 2 dlv_' + c]))
        self.assertEqual([f['endpoint'] for _, f in h.xrange_dicts(rs, DEAD)], ['ep_1'])
        self.assertEqual(self.pending('w'), [])
        self.assertEqual(rs.call('XLEN', JOBS), 0)
        self.assertEqual(rs.call('EXISTS', ep_key('ep_gone')), 0)

    def test_ownership_is_exact_beyond_one_xpending_page(self):
        rs = self.rs
        sids = self.jobs(300)  # all pending for w; a page is 2 * 3 jobs + 100 = 106
        other = sids[150]
        rs.call('XCLAIM', JOBS, 'deliver', 'other', 0, other)
        items = [self.retry(sids[0], 'ep_1'), self.retry(other, 'ep_1'),
                 self.retry(sids[299], 'ep_1')]
        self.assertEqual(self.settle('w', items), [1, 0, 1])
        self.assertEqual(rs.call('ZCARD', DELAY), 2)
        self.assertEqual(len(self.pending('w')), 297)

    def test_a_failed_write_leaves_only_that_job_pending(self):
        rs = self.rs
        a, b, c = self.jobs(3)
        rs.call('SET', DEAD, 'not a stream')
        got = self.settle('w', [self.retry(a, 'ep_1'), self.dead(b, 'ep_1'),
                                self.retry(c, 'ep_1')])
        self.assertEqual(got[0], 1)
        self.assertIsInstance(got[1], h.RedisError)
        self.assertIn('WRONGTYPE', str(got[1]))
        self.assertEqual(got[2], 1)
        self.assertEqual(self.pending('w'), [b], 'not acknowledged: reclaim hands it out again')
        self.assertEqual(rs.call('ZCARD', DELAY), 2)

    def test_dead_letters_are_capped_at_dead_maxlen(self):
        rs = self.rs
        rs.call('CONFIG', 'SET', 'stream-node-max-entries', '10')
        for _ in range(30):
            sids = self.jobs(10)
            self.assertEqual(self.settle('w', [self.dead(s, 'ep_1') for s in sids], maxlen=50),
                             [1] * 10)
        n = rs.call('XLEN', DEAD)
        self.assertGreaterEqual(n, 50)
        self.assertLessEqual(n, 60)

    def test_malformed_arguments_are_refused_before_writing(self):
        rs = self.rs
        a, b = self.jobs(2)
        args = [4, JOBS, DELAY, DEAD, ep_key('ep_1'), 'deliver', 'w', 0, 2,
                a, 4, 'retry', 1000, 'm1', b, 5, 'retry', 1000, 'm2']  # KEYS[5] missing
        with self.assertRaises(h.RedisError) as cm:
            rs.call('EVALSHA', self.sha, *args)
        self.assertIn('bad argument list', str(cm.exception))
        args = [4, JOBS, DELAY, DEAD, ep_key('ep_1'), 'deliver', 'w', 0, 2,
                a, 4, 'retry', 1000, 'm1', b, 4, 'later', 1000, 'm2']
        with self.assertRaises(h.RedisError):
            rs.call('EVALSHA', self.sha, *args)
        self.assertEqual(rs.call('ZCARD', DELAY), 0, 'nothing written')
        self.assertEqual(len(self.pending('w')), 2)

    def test_runs_while_redis_is_full(self):
        rs = self.rs
        a, b = self.jobs(2)
        rs.call('CONFIG', 'SET', 'maxmemory', 1)
        try:
            with self.assertRaises(h.RedisError):
                rs.call('SET', 'probe', 'x')
            self.assertEqual(self.settle('w', [self.retry(a, 'ep_1'), self.dead(b, 'ep_1')]),
                             [1, 1])
        finally:
            rs.call('CONFIG', 'SET', 'maxmemory', 0)
        self.assertEqual(rs.call('ZCARD', DELAY), 1)
        self.assertEqual(rs.call('XLEN', DEAD), 1)
        self.assertEqual(self.pending('w'), [])


if __name__ == '__main__':
    h.main()
