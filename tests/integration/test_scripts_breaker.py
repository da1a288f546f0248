"""fail.lua's circuit breaker, called directly on a real redis-server with the arguments
the worker sends (worker/results.c put_counter), with crafted outcomes and times.

- closed: opens at exactly the threshold (n >= min_attempts and f/n >= ratio), not before
  min_attempts, not below the ratio; a window older than breaker.window starts again.
- opening writes breaker=open, breaker_until, breaker_opened_at, lanes=true, one
  endpoint.failing event and one version bump; the reply says 1 with the window counts.
- open: outcomes of attempts that were in flight change nothing.
- half_open: a success closes (fields removed, endpoint.recovered, reply 2, a new
  window); a failure re-opens with cooldown * 2^opens, capped at max_cooldown (reply 3).
- a disabled endpoint is not touched; a call that disables wins over opening and clears
  the breaker.
- breaker.enabled false (window 0) writes no health key, and closes a breaker left open.
- health expires (2 * window) while closed, not while open.
"""
import json
import os

import harness as h

P = 'hookq'
EVENTS = P + ':{q}:events'
VERSION = P + ':{q}:endpoints:version'
LUA = os.path.join(h.SRC, 'common', 'lua')
T0 = 1767225600000  # 2026-01-01T00:00:00Z
ISO0 = '2026-01-01T00:00:00.000Z'
WINDOW, MIN_N, RATIO, COOL, MAX_COOL = 10000, 10, 0.7, 2000, 10000


def key(ep, part):
    return '%s:{%s}:%s' % (P, ep, part)


def events(rs, kind):
    return [json.loads(f['data']) for _, f in h.xrange_dicts(rs, EVENTS) if f.get('type') == kind]


class Breaker(h.RedisTestCase):
    def setUp(self):
        super().setUp()
        with open(os.path.join(LUA, 'fail.lua')) as f:
            self.sha = self.rs.call('SCRIPT', 'LOAD', f.read())
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'url', 'http://127.0.0.1:9/',
                     'enabled', 'true')

    def call(self, outcomes, now=T0, window=WINDOW, limit=50, ep='ep_1', iso=ISO0):
        return self.rs.call('EVALSHA', self.sha, 5, key(ep, 'failures'), key(ep, 'endpoint'),
                            VERSION, EVENTS, key(ep, 'health'), limit, iso, ep, now,
                            window, MIN_N, RATIO, COOL, MAX_COOL, *outcomes)

    def ep(self, *fields):
        return self.rs.call('HMGET', key('ep_1', 'endpoint'), *fields)

    def health(self):
        v = self.rs.call('HGETALL', key('ep_1', 'health'))
        return {v[i]: int(v[i + 1]) for i in range(0, len(v), 2)}

    def version(self):
        return int(self.rs.call('GET', VERSION) or 0)

    def test_opens_at_exactly_the_threshold(self):
        # 3 successes, then failures: 7 of 10 is the first point at >= 0.7 with n >= 10
        r = self.call(['s', 's', 's'] + ['fHTTP 500'] * 6)
        self.assertEqual(r[3], 0, '6 of 9: below min_attempts')
        self.assertEqual(self.ep('breaker'), [None])
        self.assertEqual(self.health(), {'since': T0, 'n': 9, 'f': 6, 'opens': 0})
        ttl = self.rs.call('PTTL', key('ep_1', 'health'))
        self.assertTrue(0 < ttl <= 2 * WINDOW, ttl)
        r = self.call(['fHTTP 500', 'fHTTP 500'], now=T0 + 100)
        self.assertEqual(r, [8, 0, 0, 1, T0 + 100 + COOL, 7, 10],
                         'opened at the 10th attempt (7 failed), not at the 11th')
        self.assertEqual(self.ep('breaker', 'breaker_until', 'breaker_opened_at', 'lanes',
                                 'enabled'),
                         ['open', str(T0 + 100 + COOL), ISO0, 'true', 'true'])
        self.assertEqual(events(self.rs, 'endpoint.failing'), [
            {'endpoint_id': 'ep_1', 'failures': 7, 'attempts': 10, 'until': T0 + 100 + COOL}])
        self.assertEqual(self.version(), 1)
        self.assertEqual(self.rs.call('PTTL', key('ep_1', 'health')), -1,
                         'open: the window (and opens) must outlast the cooldown')
        # the 11th outcome (in flight when it opened) changes nothing
        self.assertEqual(self.call(['fHTTP 500', 's'], now=T0 + 200)[3:], [0, 0, 0, 0])
        self.assertEqual(self.health()['n'], 10)
        self.assertEqual(self.version(), 1)
        self.assertEqual(len(events(self.rs, 'endpoint.failing')), 1)

    def test_not_before_min_attempts_nor_below_the_ratio(self):
        self.assertEqual(self.call(['fx'] * 9)[3], 0, '9 of 9 failed: fewer than 10 attempts')
        self.assertEqual(self.ep('breaker'), [None])
        self.rs.call('DEL', key('ep_1', 'health'), key('ep_1', 'failures'))
        # 6 of 10, 6 of 11, ... 20 attempts at 60%: never
        self.assertEqual(self.call(['s', 's', 'fx', 'fx', 'fx', 's', 'fx', 'fx', 'fx', 's'] * 2)[3],
                         0)
        self.assertEqual(self.health()['n'], 20)
        self.assertEqual(self.ep('breaker'), [None])
        self.assertEqual(events(self.rs, 'endpoint.failing'), [])
        self.assertEqual(self.version(), 0)

    def test_window_reset(self):
        self.call(['fx'] * 9)
        # past the window: a new one starts with this outcome, the old failures are gone
        self.assertEqual(self.call(['fx'], now=T0 + WINDOW + 1)[3], 0)
        self.assertEqual(self.health(), {'since': T0 + WINDOW + 1, 'n': 1, 'f': 1, 'opens': 0})
        self.assertEqual(self.ep('breaker'), [None])
        # exactly one window after its start: still the same window
        self.rs.call('DEL', key('ep_1', 'health'), key('ep_1', 'failures'))
        self.call(['fx'] * 9)
        self.assertEqual(self.call(['fx'], now=T0 + WINDOW)[3], 1)

    def open_it(self, now=T0):
        r = self.call(['fx'] * 10, now=now)
        self.assertEqual(r[3], 1)
        return r

    def test_half_open_success_closes(self):
        self.open_it()
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'breaker', 'half_open')  # lane_claim.lua
        now = T0 + COOL + 5
        r = self.call(['s', 'fx'], now=now)
        self.assertEqual(r, [1, 0, 0, 2, 0, 0, 0])
        self.assertEqual(self.ep('breaker', 'breaker_until', 'breaker_opened_at', 'lanes'),
                         [None, None, None, 'true'])
        self.assertEqual(events(self.rs, 'endpoint.recovered'), [
            {'endpoint_id': 'ep_1', 'opened_at': ISO0, 'opens': 1}])
        self.assertEqual(self.version(), 2)
        self.assertEqual(self.health(), {'since': now, 'n': 2, 'f': 1, 'opens': 0},
                         'a new window, starting with the probe')
        self.assertTrue(self.rs.call('PTTL', key('ep_1', 'health')) > 0)

    def test_half_open_failure_reopens_doubling_capped(self):
        self.open_it()
        now, waits = T0, []
        for _ in range(4):
            self.rs.call('HSET', key('ep_1', 'endpoint'), 'breaker', 'half_open')
            now += 3000
            r = self.call(['fHTTP 503'], now=now)
            self.assertEqual(r[3], 3)
            self.assertEqual(self.ep('breaker', 'breaker_until'), ['open', str(r[4])])
            waits.append(r[4] - now)
        self.assertEqual(waits, [2 * COOL, 4 * COOL, MAX_COOL, MAX_COOL])
        self.assertEqual(self.health()['opens'], 5)
        self.assertEqual(self.version(), 5, 'one bump per open and per re-open')
        self.assertEqual(len(events(self.rs, 'endpoint.failing')), 1, 'no event per re-open')
        self.assertEqual(self.ep('breaker_opened_at'), [ISO0], 'when it first opened')
        # then a probe succeeds: opens starts again
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'breaker', 'half_open')
        self.assertEqual(self.call(['s'], now=now + MAX_COOL)[3], 2)
        self.assertEqual(events(self.rs, 'endpoint.recovered')[0]['opens'], 5)
        self.assertEqual(self.health()['opens'], 0)

    def test_disabled_endpoint_not_touched(self):
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'enabled', 'false')
        before = self.rs.call('DBSIZE')
        self.assertEqual(self.call(['fx'] * 20), [0, 2, 0, 0, 0, 0, 0])
        self.assertEqual(self.rs.call('EXISTS', key('ep_1', 'health')), 0)
        self.assertEqual(self.ep('breaker'), [None])
        self.assertEqual(self.rs.call('DBSIZE'), before)
        self.assertEqual(self.version(), 0)

    def test_disable_wins_and_clears_the_breaker(self):
        # disable_after 10 and the breaker's threshold reached by the same outcome
        r = self.call(['fx'] * 12, limit=10)
        self.assertEqual(r, [10, 1, 10, 0, 0, 0, 0])
        self.assertEqual(self.ep('enabled', 'breaker'), ['false', None])
        self.assertEqual(events(self.rs, 'endpoint.failing'), [])
        self.assertEqual(len(events(self.rs, 'endpoint.disabled')), 1)
        self.assertEqual(self.version(), 1)
        # an open breaker whose probes keep failing reaches disable_after: closed by it
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'enabled', 'true')
        self.rs.call('DEL', key('ep_1', 'failures'))
        self.open_it()
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'breaker', 'half_open')
        self.rs.call('SET', key('ep_1', 'failures'), 49)
        self.assertEqual(self.call(['fx'], now=T0 + COOL)[1:4], [1, 1, 0])
        self.assertEqual(self.ep('enabled', 'breaker', 'breaker_until'), ['false', None, None])
        self.assertEqual(self.rs.call('EXISTS', key('ep_1', 'health')), 0,
                         '`endpoint enable` starts closed with a new window')

    def test_breaker_disabled_writes_no_health(self):
        self.assertEqual(self.call(['fx'] * 30 + ['s'], window=0), [0, 0, 0, 0, 0, 0, 0])
        self.assertEqual(self.rs.call('EXISTS', key('ep_1', 'health')), 0)
        self.assertEqual(self.ep('breaker'), [None])
        self.assertEqual(self.version(), 0)
        self.assertEqual(events(self.rs, 'endpoint.failing'), [])
        # one left open under earlier settings closes at the next outcome, whatever it is
        self.open_it()
        self.rs.call('HSET', key('ep_1', 'endpoint'), 'breaker', 'half_open')
        self.assertEqual(self.call(['fx'], now=T0 + COOL, window=0)[3], 2)
        self.assertEqual(self.ep('breaker', 'breaker_until'), [None, None])
        self.assertEqual(self.rs.call('EXISTS', key('ep_1', 'health')), 0)
        self.assertEqual(len(events(self.rs, 'endpoint.recovered')), 1)

    def test_removed_endpoint_writes_no_health(self):
        self.assertEqual(self.call(['fx'] * 12, ep='ep_gone')[1], 3)
        self.assertEqual(self.rs.call('EXISTS', key('ep_gone', 'health')), 0)

    def test_bad_breaker_arguments_are_refused(self):
        with self.assertRaises(h.RedisError):
            self.rs.call('EVALSHA', self.sha, 5, key('ep_1', 'failures'), key('ep_1', 'endpoint'),
                         VERSION, EVENTS, key('ep_1', 'health'), 50, ISO0, 'ep_1', T0,
                         'soon', MIN_N, RATIO, COOL, MAX_COOL, 'fx')
        self.assertEqual(self.rs.call('EXISTS', key('ep_1', 'health'), key('ep_1', 'failures')),
                         0)


if __name__ == '__main__':
    h.main()
