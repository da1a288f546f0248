"""The lane scripts (lane_push.lua, lane_claim.lua, lane_settle.lua) and watermark.lua /
pause.lua, called directly on a real redis-server with the KEYS and ARGV the worker sends
(worker/lane.c, worker/lane_claim.c), against an endpoint hash built by hand: no worker.
The contract is each script's header comment and docs/policies.md "How: lanes".

lane_push: id order whatever the push order; a replayed push adds nothing; state n; an
  ordered fanout push at or below last:<key> is ignored, an adoption push is not;
  disabled without hold (status 2, dropped_disabled), with hold and hold_max; a missing
  endpoint (status 1, no key created); attempt > 1 writes tries; a key whose head is
  leased does not go into ready.
lane_claim: unordered oldest first, leases "<lid>\\t<key>\\t<worker>" at now + lease;
  ordered one head per key, round-robin, the key out of ready; the watermark (ARGV[5],
  inclusive, "" = none) and the fanning bound (ARGV[6], exclusive) -> status 7;
  max_in_flight (status 5), rate (status 6 and its wait), disabled (2), pause (4),
  breaker open (3), the probe, expired leases and an expired probe taken back.
lane_settle: d, r, q, b; a lease that is not ours; the pause; the "more" flag.
watermark.lua, pause.lua.
An end-to-end property: claims + settles with random retries deliver every key in
  strictly increasing lane id order, never two leases of one key at once.

Five of these found bugs when they were written (a replay at hold_max counted as
dropped, a covered ordered head starved behind blocked keys, an order key holding a tab
stalling its key, an unordered job handed back ignoring its due time); their comments
say what used to happen.
"""
import os
import random
import time
import unittest

import harness as h

P = 'hookq'
EP = 'ep_T'
LUA = os.path.join(h.SRC, 'common', 'lua')
EVENTS = P + ':{q}:events'
LEASE = 30000


def k(part, ep=EP):
    return '%s:{%s}:%s' % (P, ep, part)


def lane(key, ep=EP):
    return k('lane:', ep) + key


def lid(ms, seq=0):
    return '%020d-%020d' % (ms, seq)


HIGH = lid(99999999999999)  # a watermark covering every lane id used here


def script(rs, name):
    with open(os.path.join(LUA, name + '.lua')) as f:
        return rs.call('SCRIPT', 'LOAD', f.read())


class Lanes(h.RedisTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sha = {n: script(cls.rs, n) for n in
                   ('lane_push', 'lane_claim', 'lane_settle', 'watermark', 'pause')}

    def setUp(self):
        super().setUp()
        # FLUSHALL keeps the script cache, but be safe against a restart
        for n, s in self.sha.items():
            self.assertEqual(self.rs.call('SCRIPT', 'EXISTS', s), [1], n)

    # ------------------------------------------------------------ helpers

    def endpoint(self, ep=EP, **fields):
        f = {'url': 'http://127.0.0.1:9/', 'secret': 'y', 'enabled': 'true'}
        f.update(fields)
        args = []
        for a, b in f.items():
            args += [a, b]
        self.rs.call('HSET', k('endpoint', ep), *args)

    def now(self):
        s, us = self.rs.call('TIME')
        return int(s) * 1000 + int(us) // 1000

    def push(self, mode, jobs, ep=EP):
        """jobs: [(lane id, key, attempt)]"""
        args = []
        for j in jobs:
            args += list(j)
        return self.rs.call('EVALSHA', self.sha['lane_push'], 5, k('endpoint', ep),
                            k('lanekeys', ep), k('ready', ep), k('state', ep), k('tries', ep),
                            k('lane:', ep), mode, *args)

    def claim(self, want=10, me='w1', lease=LEASE, wm=HIGH, fanning='', reap=1000, ep=EP):
        """-> (status, wait, reaped, [(lid, key, attempt, behind, next)])"""
        r = self.rs.call('EVALSHA', self.sha['lane_claim'], 6, k('endpoint', ep),
                         k('lanekeys', ep), k('ready', ep), k('leases', ep), k('state', ep),
                         k('tries', ep), k('lane:', ep), me, want, lease, wm, fanning, reap)
        self.assertEqual((len(r) - 3) % 5, 0, r)
        return r[0], r[1], r[2], [tuple(r[i:i + 5]) for i in range(3, len(r), 5)]

    def settle(self, jobs, pause=0, ep=EP):
        """jobs: [(member, action, due, attempts)] -> [more, r1, r2, ...]"""
        args = []
        for j in jobs:
            args += list(j)
        return self.rs.call('EVALSHA', self.sha['lane_settle'], 6, k('endpoint', ep),
                            k('lanekeys', ep), k('ready', ep), k('leases', ep), k('state', ep),
                            k('tries', ep), k('lane:', ep), pause, *args)

    def state(self, field):
        return self.rs.call('HGET', k('state'), field)

    def n(self):
        return int(self.state('n') or 0)

    def lane(self, key):
        return self.rs.call('ZRANGE', lane(key), 0, -1)

    def ready(self):
        r = self.rs.call('ZRANGE', k('ready'), 0, -1, 'WITHSCORES')
        return {r[i]: int(float(r[i + 1])) for i in range(0, len(r), 2)}

    def leases(self):
        r = self.rs.call('ZRANGE', k('leases'), 0, -1, 'WITHSCORES')
        return {r[i]: int(float(r[i + 1])) for i in range(0, len(r), 2)}

    def lanekeys(self):
        return set(self.rs.call('SMEMBERS', k('lanekeys')))

    def expire(self, member):
        """Make a lease expire now (its worker died)."""
        self.assertEqual(self.rs.call('ZADD', k('leases'), 'XX', 'CH', self.now() - 1, member), 1)

    @staticmethod
    def member(job, me='w1'):
        return '%s\t%s\t%s' % (job[0], job[1], me)

    # ------------------------------------------------------------ lane_push

    def test_push_id_order_replay_and_n(self):
        self.endpoint()
        ids = [lid(1000 + i, s) for i in range(5) for s in (0, 7)]
        shuffled = ids[:]
        random.Random(1).shuffle(shuffled)
        self.assertNotEqual(shuffled, ids)
        self.assertEqual(self.push('f', [(i, '', 1) for i in shuffled[:6]]), [6, 0, 0])
        self.assertEqual(self.push('f', [(i, '', 1) for i in shuffled[6:]]), [4, 0, 0])
        self.assertEqual(self.lane(''), ids, 'sorted by lane id, not push order')
        self.assertEqual(self.n(), 10)
        self.assertEqual(self.lanekeys(), {''})
        self.assertEqual(list(self.ready()), [''])
        # a replayed fanout adds nothing
        self.assertEqual(self.push('f', [(i, '', 1) for i in ids]), [0, 0, 0])
        self.assertEqual(self.push('a', [(ids[3], '', 2)]), [0, 0, 0])
        self.assertEqual(self.n(), 10)
        self.assertEqual(self.rs.call('EXISTS', k('tries')), 0,
                         'a push that added nothing writes no tries')

    def test_push_ordered_replay_below_last_ignored_adoption_added(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.rs.call('HSET', k('state'), 'last:a', lid(500))
        r = self.push('f', [(lid(400), 'a', 1), (lid(500), 'a', 1), (lid(501), 'a', 1),
                            (lid(100), 'b', 1)])
        self.assertEqual(r, [2, 0, 0], 'at or below last:a is ignored, other keys are not')
        self.assertEqual(self.lane('a'), [lid(501)])
        self.assertEqual(self.lane('b'), [lid(100)])
        self.assertEqual(self.n(), 2)
        # adoption of the same job: always added
        self.assertEqual(self.push('a', [(lid(400), 'a', 1)]), [1, 0, 0])
        self.assertEqual(self.lane('a'), [lid(400), lid(501)])
        self.assertEqual(self.n(), 3)
        # delivered below last:a, it does not move last:a down
        g = [j for j in self.claim()[3] if j[1] == 'a']
        self.assertEqual([j[0] for j in g], [lid(400)])
        self.assertEqual(self.settle([(self.member(g[0]), 'd', 0, 1)]), [1, 1])
        self.assertEqual(self.state('last:a'), lid(500))
        self.assertEqual(list(self.ready()), ['a'])

    def test_push_disabled_without_hold(self):
        self.endpoint(enabled='false')
        r = self.push('f', [(lid(1), '', 1), (lid(2), '', 1)])
        self.assertEqual(r[0], 0)
        self.assertEqual(r[2], 2)
        self.assertEqual(self.state('dropped_disabled'), '2')
        self.assertEqual(self.rs.call('EXISTS', lane(''), k('ready'), k('lanekeys'),
                                      k('tries')), 0)
        self.assertIsNone(self.state('n'))
        self.push('f', [(lid(3), '', 1)])
        self.assertEqual(self.state('dropped_disabled'), '3')

    def test_push_disabled_with_hold_keeps_hold_max(self):
        self.endpoint(enabled='false', on_disabled='hold', hold_max='3')
        r = self.push('f', [(lid(i), '', 1) for i in range(1, 6)])
        self.assertEqual(r, [3, 2, 0])
        self.assertEqual(self.lane(''), [lid(1), lid(2), lid(3)])
        self.assertEqual(self.n(), 3)
        self.assertEqual(self.state('dropped'), '2')
        self.assertIsNone(self.state('dropped_disabled'))
        self.push('f', [(lid(9), '', 1)])
        self.assertEqual(self.state('dropped'), '3')
        self.assertEqual(self.n(), 3)

    def test_push_replay_at_hold_max_is_a_noop(self):
        # header: "jobs already in their lane are not added twice: a replayed fanout is
        # a no-op". At hold_max a replay of a job that IS held used to count in dropped.
        self.endpoint(enabled='false', on_disabled='hold', hold_max='3')
        self.assertEqual(self.push('f', [(lid(i), '', 1) for i in range(1, 4)]), [3, 0, 0])
        self.assertEqual(self.push('f', [(lid(i), '', 1) for i in range(1, 4)]), [0, 0, 0])
        self.assertIsNone(self.state('dropped'))

    def test_push_missing_endpoint_writes_nothing(self):
        self.assertEqual(self.push('f', [(lid(1), '', 1), (lid(2), 'x', 3)]), [0, 0, 1])
        self.assertEqual(self.rs.call('KEYS', '*'), [])

    def test_push_attempt_writes_tries(self):
        self.endpoint()
        self.push('a', [(lid(1), '', 3), (lid(2), '', 1)])
        self.assertEqual(self.rs.call('HGETALL', k('tries')), [lid(1), '2'])
        st, _, _, jobs = self.claim()
        self.assertEqual(st, 0)
        self.assertEqual([(j[0], j[2]) for j in jobs], [(lid(1), 3), (lid(2), 1)],
                         'the claim gives the attempt to make now')

    def test_push_to_a_leased_key_stays_out_of_ready(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1)])
        st, _, _, jobs = self.claim()
        self.assertEqual([j[0] for j in jobs], [lid(1)])
        self.assertEqual(self.state('h:a'), '1')
        self.assertEqual(self.ready(), {})
        self.assertEqual(self.push('f', [(lid(2), 'a', 1), (lid(1), 'b', 1)]), [2, 0, 0])
        self.assertEqual(list(self.ready()), ['b'], 'a: its head is leased')
        self.assertEqual(self.lanekeys(), {'a', 'b'})
        st, _, _, jobs = self.claim()
        self.assertEqual([(j[0], j[1]) for j in jobs], [(lid(1), 'b')])

    # ------------------------------------------------------------ lane_claim

    def test_claim_unordered_oldest_first_with_leases(self):
        self.endpoint()
        ids = [lid(100 + i) for i in range(5)]
        self.push('f', [(i, '', 1) for i in reversed(ids)])
        t0 = self.now()
        st, wait, reaped, jobs = self.claim(want=3, me='wk-A', lease=5000)
        t1 = self.now()
        self.assertEqual((st, reaped), (0, 0))
        self.assertEqual([j[0] for j in jobs], ids[:3])
        self.assertEqual([(j[1], j[2], j[3], j[4]) for j in jobs], [('', 1, 0, '')] * 3)
        ls = self.leases()
        self.assertEqual(sorted(ls), ['%s\t\twk-A' % i for i in ids[:3]])
        for s in ls.values():
            self.assertTrue(t0 + 5000 <= s <= t1 + 5000, (t0, s, t1))
        self.assertEqual(self.n(), 2)
        self.assertEqual(self.lane(''), ids[3:])
        self.assertGreaterEqual(wait, 0, 'more is ready')
        st, _, _, jobs = self.claim(want=10, me='wk-B')
        self.assertEqual([j[0] for j in jobs], ids[3:])
        self.assertEqual(self.n(), 0)
        self.assertEqual(self.rs.call('EXISTS', lane('')), 0)
        self.assertEqual(self.ready(), {})
        self.assertEqual(self.lanekeys(), set())
        st, wait, _, jobs = self.claim()
        self.assertEqual((st, jobs), (0, []))
        self.assertTrue(0 < wait <= LEASE, 'nothing ready: back when the first lease ends')

    def test_claim_unordered_ignores_the_watermark(self):
        self.endpoint()
        self.push('f', [(lid(5), '', 1)])
        st, _, _, jobs = self.claim(wm='', fanning=lid(1))
        self.assertEqual((st, [j[0] for j in jobs]), (0, [lid(5)]))

    def test_claim_ordered_one_head_per_key_round_robin(self):
        self.endpoint(ordered='true', order_key='data.task')
        jobs = [(lid(100 * i + s), key, 1) for i, key in enumerate('abc') for s in range(3)]
        random.Random(2).shuffle(jobs)
        self.push('f', jobs)
        time.sleep(0.003)  # settles below are at a later ms than the pushes
        st, _, _, got = self.claim(want=10)
        self.assertEqual(st, 0)
        self.assertEqual(sorted(got), [(lid(0), 'a', 1, 2, lid(1)), (lid(100), 'b', 1, 2, lid(101)),
                                       (lid(200), 'c', 1, 2, lid(201))])
        self.assertEqual(self.ready(), {}, 'each key left ready')
        self.assertEqual([self.state('h:' + x) for x in 'abc'], ['1'] * 3)
        self.assertEqual(self.claim(want=10)[3], [], 'one head per key')
        # round-robin with want 1: a settled key goes behind the others
        self.settle([(self.member(j), 'b', 0, 0) for j in got])  # back, all due at once
        order = []
        for _ in range(6):
            st, _, _, g = self.claim(want=1)
            self.assertEqual(len(g), 1, (st, g))
            order.append(g[0][1])
            time.sleep(0.002)
            self.settle([(self.member(g[0]), 'd', 0, 1)])
            time.sleep(0.002)
        self.assertEqual(order[:3], sorted(order[:3]), 'ties in ready: by key')
        self.assertEqual(order[3:], order[:3], 'round-robin: %r' % order)

    def test_claim_ordered_watermark_inclusive(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(100), 'a', 1), (lid(200), 'b', 1), (lid(300), 'c', 1)])
        st, wait, _, got = self.claim(wm=lid(200))
        self.assertEqual(st, 7)
        self.assertEqual(wait, 0)
        self.assertEqual(sorted(j[0] for j in got), [lid(100), lid(200)])
        self.assertEqual(list(self.ready()), ['c'], 'c waits in ready')
        self.assertEqual(self.lane('c'), [lid(300)])
        self.assertIsNone(self.state('h:c'))
        self.assertEqual(self.n(), 1)

    def test_claim_ordered_fanning_exclusive(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(100), 'a', 1), (lid(200), 'b', 1), (lid(300), 'c', 1)])
        st, _, _, got = self.claim(wm=HIGH, fanning=lid(200))
        self.assertEqual(st, 7)
        self.assertEqual([j[0] for j in got], [lid(100)], 'at the fanning bound: not given')
        self.assertEqual(sorted(self.ready()), ['b', 'c'])
        self.assertEqual(self.n(), 2)

    def test_claim_ordered_empty_watermark_gives_nothing(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(100), 'a', 1), (lid(200), 'b', 1)])
        st, wait, _, got = self.claim(wm='')
        self.assertEqual((st, wait, got), (7, 0, []))
        self.assertEqual(self.n(), 2)
        self.assertEqual(self.leases(), {})
        self.assertEqual(sorted(self.ready()), ['a', 'b'])

    def test_claim_ordered_covered_head_not_starved_by_blocked_keys(self):
        # lane_claim.lua looks at the oldest ready keys only; blocked keys (heads above the
        # watermark) used to stay at the front of ready, so a key whose head IS covered
        # was not given until the watermark moved: with a crashed fanout (fanning stuck
        # low), the visibility timeout. Now a blocked key goes to the back of ready.
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1000 + i), 'k%d' % i, 1) for i in range(4)])
        time.sleep(0.002)
        self.push('f', [(lid(10), 'old', 1)])
        st, _, _, got = self.claim(want=1, wm=HIGH, fanning=lid(500))
        self.assertEqual([j[0] for j in got], [lid(10)], (st, got))

    def test_claim_max_in_flight_counts_existing_leases(self):
        self.endpoint(max_in_flight='3')
        t = self.now()
        self.rs.call('ZADD', k('leases'), t + 700, '%s\t\tw9' % lid(1))
        self.push('f', [(lid(10 + i), '', 1) for i in range(5)])
        st, _, _, got = self.claim(want=5)
        self.assertEqual((st, [j[0] for j in got]), (0, [lid(10), lid(11)]))
        self.assertEqual(len(self.leases()), 3)
        st, wait, _, got = self.claim(want=5)
        self.assertEqual((st, got), (5, []))
        self.assertTrue(0 < wait <= 700, wait)
        self.assertEqual(self.n(), 3)

    def test_claim_rate(self):
        self.endpoint(rate='10/s')  # T = 100 ms, burst 1
        self.push('f', [(lid(10 + i), '', 1) for i in range(5)])
        st, _, _, got = self.claim(want=5)
        self.assertEqual((st, len(got)), (0, 1))
        st, wait, _, got = self.claim(want=5)
        self.assertEqual((st, got), (6, []))
        self.assertTrue(50 <= wait <= 100, wait)
        time.sleep(wait / 1000.0 + 0.002)
        st, _, _, got = self.claim(want=5)
        self.assertEqual((st, [j[0] for j in got]), (0, [lid(11)]))
        self.assertEqual(self.claim(want=5)[0], 6)
        self.assertEqual(self.n(), 3)

    def test_claim_rate_burst_is_100ms_of_attempts(self):
        self.endpoint(rate='50/s')  # T = 20 ms, burst 5
        self.push('f', [(lid(10 + i), '', 1) for i in range(20)])
        st, _, _, got = self.claim(want=20)
        self.assertEqual((st, len(got)), (0, 5))
        self.assertEqual(self.claim(want=20)[0], 6)

    def test_claim_disabled_paused_missing(self):
        self.endpoint(enabled='false', on_disabled='hold')
        self.push('f', [(lid(1), '', 1)])
        self.assertEqual(self.claim()[0:2], (2, -1))
        self.assertEqual(self.n(), 1)
        self.endpoint(enabled='true')
        self.rs.call('HSET', k('state'), 'pause', self.now() + 2000)
        st, wait, _, got = self.claim()
        self.assertEqual((st, got), (4, []))
        self.assertTrue(1900 <= wait <= 2000, wait)
        self.rs.call('HSET', k('state'), 'pause', self.now() - 1)
        self.assertEqual(len(self.claim()[3]), 1, 'a pause that has passed holds nothing')
        self.assertEqual(self.claim(ep='ep_gone')[0], 1)

    def test_claim_breaker_open_cooling_down(self):
        self.endpoint(breaker='open', breaker_until=str(self.now() + 3000))
        self.push('f', [(lid(1), '', 1)])
        st, wait, _, got = self.claim()
        self.assertEqual((st, got), (3, []))
        self.assertTrue(2900 <= wait <= 3000, wait)
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'breaker'), 'open')

    def test_claim_breaker_probe(self):
        self.endpoint(breaker='open', breaker_until=str(self.now() - 1))
        self.push('f', [(lid(i), '', 1) for i in range(1, 5)])
        st, _, _, got = self.claim(want=4)
        self.assertEqual((st, [j[0] for j in got]), (0, [lid(1)]), 'exactly one probe')
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'breaker'), 'half_open')
        self.assertEqual(self.state('probe'), self.member(got[0]))
        st, wait, _, got2 = self.claim(want=4, me='w2')
        self.assertEqual((st, got2), (3, []), 'the probe is out')
        self.assertTrue(0 < wait <= LEASE)
        self.assertEqual(self.n(), 3)
        # its worker dies: the probe's lease expires, the breaker is open again, due now
        self.expire(self.member(got[0]))
        self.rs.call('HSET', k('state'), 'pause', self.now() + 5000)  # so no new probe goes
        t0 = self.now()
        st, _, reaped, got3 = self.claim(want=4, me='w2')
        t1 = self.now()
        self.assertEqual((st, reaped, got3), (4, 1, []))
        b, until = self.rs.call('HMGET', k('endpoint'), 'breaker', 'breaker_until')
        self.assertEqual(b, 'open')
        self.assertTrue(t0 <= int(until) <= t1, (t0, until, t1))
        self.assertIsNone(self.state('probe'))
        self.assertEqual(self.lane('')[0], lid(1))
        # pause over: the next claim sends a new probe (one)
        self.rs.call('HDEL', k('state'), 'pause')
        st, _, _, got4 = self.claim(want=4, me='w2')
        self.assertEqual([j[0] for j in got4], [lid(1)])
        self.assertEqual(self.state('probe'), self.member(got4[0], 'w2'))
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'breaker'), 'half_open')

    def test_claim_expired_probe_sends_another_in_the_same_call(self):
        self.endpoint(breaker='open', breaker_until=str(self.now() - 1))
        self.push('f', [(lid(i), '', 1) for i in range(1, 3)])
        got = self.claim(want=2)[3]
        self.expire(self.member(got[0]))
        st, _, reaped, got2 = self.claim(want=2, me='w2')
        self.assertEqual((st, reaped, [j[0] for j in got2]), (0, 1, [lid(1)]))
        self.assertEqual(self.state('probe'), self.member(got2[0], 'w2'))
        self.assertEqual(list(self.leases()), [self.member(got2[0], 'w2')])

    def test_claim_reaps_expired_leases_ordered(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1), (lid(3), 'b', 1)])
        got = self.claim()[3]
        self.assertEqual(sorted(j[0] for j in got), [lid(1), lid(3)])
        self.assertEqual(self.n(), 1)
        ma = self.member([j for j in got if j[1] == 'a'][0])
        self.expire(ma)
        st, _, reaped, got2 = self.claim(wm='')  # only the reaping: no head may go
        self.assertEqual((st, reaped, got2), (7, 1, []))
        self.assertEqual(self.lane('a'), [lid(1), lid(2)], 'back as the head')
        self.assertIsNone(self.state('h:a'))
        self.assertEqual(self.state('h:b'), '1')
        self.assertEqual(list(self.ready()), ['a'])
        self.assertEqual(list(self.leases()), [self.member([j for j in got if j[1] == 'b'][0])])
        self.assertEqual(self.n(), 2)
        st, _, reaped, got3 = self.claim(me='w2')
        self.assertEqual((st, reaped), (0, 0))
        self.assertEqual([(j[0], j[2]) for j in got3], [(lid(1), 1)], 'same head, same attempt')
        # the dead worker's settle comes late: not its lease any more
        self.assertEqual(self.settle([(ma, 'd', 0, 1)]), [1, 0])
        self.assertIsNone(self.state('last:a'))
        self.assertEqual(self.state('h:a'), '1')

    def test_claim_reaps_expired_leases_unordered_with_limit(self):
        self.endpoint()
        self.push('f', [(lid(i), '', 1) for i in range(1, 6)])
        got = self.claim(want=5)[3]
        for j in got[:3]:
            self.expire(self.member(j))
        self.assertEqual(self.n(), 0)
        st, _, reaped, got2 = self.claim(want=1, reap=2, me='w2')
        self.assertEqual(reaped, 2, 'ARGV[7] caps the reaping')
        self.assertEqual([j[0] for j in got2], [lid(1)])
        st, _, reaped, got3 = self.claim(want=5, me='w2')
        self.assertEqual(reaped, 1)
        self.assertEqual(sorted(j[0] for j in got3), [lid(2), lid(3)])
        self.assertEqual(len(self.leases()), 5)

    def test_order_key_with_a_tab(self):
        # An order key is the event's field "as is" (docs/policies.md), so it may hold a
        # tab; the scripts used to split the lease member at the first two tabs: a reaped
        # head of key "a\tb" went into lane "a" and h:a\tb stayed set. Now: first and last.
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a\tb', 1), (lid(2), 'a\tb', 1)])
        got = self.claim()[3]
        self.assertEqual([j[0] for j in got], [lid(1)])
        self.expire(self.member(got[0]))
        self.claim(wm='')
        self.assertEqual(self.lane('a\tb'), [lid(1), lid(2)])
        self.assertEqual(self.rs.call('EXISTS', lane('a')), 0)
        self.assertIsNone(self.state('h:a\tb'))

    def test_order_key_with_a_tab_settled(self):
        # the same split in lane_settle.lua: 'd' clears h:a, not h:a\tb, so last:a\tb is
        # not written and the key never became ready again: it stalled after one delivery
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a\tb', 1), (lid(2), 'a\tb', 1)])
        got = self.claim()[3]
        self.assertEqual(self.settle([(self.member(got[0]), 'd', 0, 1)]), [1, 1])
        self.assertEqual(self.state('last:a\tb'), lid(1))
        self.assertEqual([j[0] for j in self.claim()[3]], [lid(2)])

    # ------------------------------------------------------------ lane_settle

    def test_settle_done_ordered(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1), (lid(3), 'b', 1)])
        got = {j[1]: j for j in self.claim()[3]}
        self.rs.call('HSET', k('tries'), lid(1), 4)
        self.assertEqual(self.settle([(self.member(got['a']), 'd', 0, 1)]), [1, 1])
        self.assertEqual(self.state('last:a'), lid(1))
        self.assertIsNone(self.state('h:a'))
        self.assertEqual(list(self.ready()), ['a'])
        self.assertEqual(self.rs.call('HEXISTS', k('tries'), lid(1)), 0)
        # b's lane is empty: b leaves lanekeys, not ready; more = 1 (a still has a job)
        self.assertEqual(self.settle([(self.member(got['b']), 'd', 0, 1)]), [1, 1])
        self.assertEqual(self.lanekeys(), {'a'})
        self.assertEqual(list(self.ready()), ['a'])
        self.assertEqual(self.state('last:b'), lid(3))
        g = self.claim()[3]
        self.assertEqual([j[0] for j in g], [lid(2)])
        self.assertEqual(self.settle([(self.member(g[0]), 'd', 0, 1)]), [0, 1],
                         'more = 0: the lanes are empty')
        self.assertEqual(self.lanekeys(), set())
        self.assertEqual(self.ready(), {})
        self.assertEqual(self.n(), 0)
        # a replayed fanout of a delivered job is ignored now
        self.assertEqual(self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1)]), [0, 0, 0])

    def test_settle_retry_ordered_head(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1), (lid(3), 'b', 1), (lid(4), 'b', 1)])
        got = {j[1]: j for j in self.claim()[3]}
        due = self.now() + 400
        self.assertEqual(self.settle([(self.member(got['a']), 'r', due, 1)]), [1, 1])
        self.assertEqual(self.lane('a'), [lid(1), lid(2)], 'back at the head')
        self.assertEqual(self.rs.call('HGET', k('tries'), lid(1)), '1')
        self.assertEqual(self.ready(), {'a': due})
        self.assertIsNone(self.state('h:a'))
        self.assertIsNone(self.state('last:a'))
        self.assertEqual(self.n(), 3)
        # b goes on; a waits for its due
        self.settle([(self.member(got['b']), 'd', 0, 1)])
        g = self.claim()[3]
        self.assertEqual([j[0] for j in g], [lid(4)])
        st, wait, _, g2 = self.claim()
        self.assertEqual((st, g2), (0, []))
        self.assertTrue(0 < wait <= 400, wait)
        # a push to a while it waits keeps the due time
        self.push('f', [(lid(5), 'a', 1)])
        self.assertEqual(self.ready()['a'], due)
        time.sleep(wait / 1000.0 + 0.005)
        g3 = self.claim()[3]
        self.assertEqual([(j[0], j[2], j[3], j[4]) for j in g3], [(lid(1), 2, 2, lid(2))],
                         'the head again, its second attempt')

    def test_settle_q_drops_only_the_lease(self):
        self.endpoint()
        self.push('f', [(lid(1), '', 1), (lid(2), '', 1), (lid(3), '', 1)])
        got = self.claim(want=1)[3]
        before = (self.lane(''), self.ready(), self.lanekeys(), self.n())
        self.assertEqual(self.settle([(self.member(got[0]), 'q', self.now() + 5000, 1)]), [1, 1])
        self.assertEqual(self.leases(), {})
        self.assertEqual((self.lane(''), self.ready(), self.lanekeys(), self.n()), before)
        self.assertNotIn(lid(1), self.lane(''))

    def test_settle_back_ordered_and_unordered(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1)])
        g = self.claim()[3]
        due = self.now() + 300
        self.assertEqual(self.settle([(self.member(g[0]), 'b', due, 0)]), [1, 1])
        self.assertEqual(self.lane('a'), [lid(1), lid(2)])
        self.assertEqual(self.rs.call('HEXISTS', k('tries'), lid(1)), 0, 'not attempted')
        self.assertEqual(self.ready(), {'a': due})
        self.assertEqual(self.n(), 2)
        self.assertEqual(self.claim()[3], [])
        # unordered
        self.endpoint(ep='ep_U')
        self.rs.call('EVALSHA', self.sha['lane_push'], 5, k('endpoint', 'ep_U'),
                     k('lanekeys', 'ep_U'), k('ready', 'ep_U'), k('state', 'ep_U'),
                     k('tries', 'ep_U'), k('lane:', 'ep_U'), 'f', lid(7), '', 3)
        g = self.claim(ep='ep_U')[3]
        self.assertEqual([(j[0], j[2]) for j in g], [(lid(7), 3)])
        self.assertEqual(self.settle([(self.member(g[0]), 'b', 0, 2)], ep='ep_U'), [1, 1])
        g = self.claim(ep='ep_U')[3]
        self.assertEqual([(j[0], j[2]) for j in g], [(lid(7), 3)], 'same attempt')

    def test_settle_back_unordered_alone_waits_for_due(self):
        self.endpoint()
        self.push('f', [(lid(1), '', 1)])
        g = self.claim()[3]
        due = self.now() + 5000
        self.settle([(self.member(g[0]), 'b', due, 0)])
        self.assertEqual(self.ready(), {'': due})
        self.assertEqual(self.claim()[3], [])

    def test_settle_back_unordered_waits_for_due_behind_others(self):
        # header: "b back, not attempted: in its lane again, ready at due". The worker
        # sends a due in the future (worker/dispatch.c: endpoint hash that does not parse,
        # BROKEN_DEFER_MS; local queue full, DEFER_MS). An unordered lane is one key, "";
        # it used to be claimable at once while other jobs waited. Now its lane score is
        # its due time.
        self.endpoint()
        self.push('f', [(lid(1), '', 1), (lid(2), '', 1)])
        g = self.claim(want=1)[3]
        self.settle([(self.member(g[0]), 'b', self.now() + 5000, 0)])
        got = self.claim(want=10)[3]
        self.assertNotIn(lid(1), [j[0] for j in got])

    def test_settle_not_our_lease_writes_nothing(self):
        self.endpoint(ordered='true', order_key='data.task')
        self.push('f', [(lid(1), 'a', 1), (lid(2), 'a', 1)])
        g = self.claim(me='w1')[3]
        snap = lambda: [self.rs.call('DUMP', x) for x in sorted(self.rs.call('KEYS', '*'))]
        before = snap()
        for act in 'drqb':
            self.assertEqual(self.settle([(self.member(g[0], 'w2'), act, 0, 3)]), [1, 0], act)
        self.assertEqual(self.settle([('%s\ta\tw1' % lid(2), 'd', 0, 1)]), [1, 0])
        self.assertEqual(snap(), before, 'nothing written')

    def test_settle_pause_is_the_max(self):
        self.endpoint()
        self.push('f', [(lid(1), '', 1), (lid(2), '', 1)])
        g = self.claim()[3]
        t = self.now()
        self.settle([(self.member(g[0]), 'd', 0, 1)], pause=t + 5000)
        self.assertEqual(self.state('pause'), str(t + 5000))
        self.settle([(self.member(g[1]), 'd', 0, 1)], pause=t + 3000)
        self.assertEqual(self.state('pause'), str(t + 5000), 'not lowered')
        self.settle([], pause=t + 7000)
        self.assertEqual(self.state('pause'), str(t + 7000))
        self.settle([], pause=t - 10)
        self.assertEqual(self.state('pause'), str(t + 7000))
        self.assertEqual(self.claim()[0], 4)

    def test_settle_refuses_bad_arguments(self):
        self.endpoint()
        with self.assertRaises(h.RedisError):
            self.settle([('m', 'd', 0)])
        with self.assertRaises(h.RedisError):
            self.claim(want=0)
        with self.assertRaises(h.RedisError):
            self.push('x', [(lid(1), '', 1)])
        self.assertEqual(self.rs.call('KEYS', '*'), [k('endpoint')])

    # ------------------------------------------------------------ watermark.lua

    def wm(self):
        return self.rs.call('EVALSHA', self.sha['watermark'], 1, EVENTS, 'fanout')

    def test_watermark(self):
        self.assertEqual(self.wm(), ['', ''], 'no stream')
        ids = [self.rs.call('XADD', EVENTS, '*', 'type', 't') for _ in range(4)]
        self.assertEqual(self.wm(), ['', ''], 'no group')
        self.rs.call('XGROUP', 'CREATE', EVENTS, 'other', '$')
        self.assertEqual(self.wm(), ['', ''], 'another group only')
        self.rs.call('XGROUP', 'CREATE', EVENTS, 'fanout', '0')
        self.assertEqual(self.wm(), ['0-0', ''])
        self.rs.call('XREADGROUP', 'GROUP', 'fanout', 'w1', 'COUNT', 3, 'STREAMS', EVENTS, '>')
        self.assertEqual(self.wm(), [ids[2], ids[0]])
        self.rs.call('XACK', EVENTS, 'fanout', ids[0])
        self.assertEqual(self.wm(), [ids[2], ids[1]])
        self.rs.call('XACK', EVENTS, 'fanout', ids[1], ids[2])
        self.assertEqual(self.wm(), [ids[2], ''])
        self.rs.call('XREADGROUP', 'GROUP', 'fanout', 'w2', 'COUNT', 3, 'STREAMS', EVENTS, '>')
        self.rs.call('XACK', EVENTS, 'fanout', ids[3])
        self.assertEqual(self.wm(), [ids[3], ''])

    # ------------------------------------------------------------ pause.lua

    def pause(self, till, ep=EP):
        return self.rs.call('EVALSHA', self.sha['pause'], 2, k('endpoint', ep), k('state', ep),
                            till)

    def test_pause(self):
        self.endpoint()
        t = self.now() + 10000
        self.assertEqual(self.pause(t), 1)
        self.assertEqual(self.rs.call('HMGET', k('endpoint'), 'paused_until', 'lanes'),
                         [str(t), 'true'])
        self.assertEqual(self.state('pause'), str(t))
        self.assertEqual(self.pause(t + 999), 0, 'less than a second later')
        self.assertEqual(self.state('pause'), str(t + 999))
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'paused_until'), str(t))
        self.assertEqual(self.pause(t + 1000), 1)
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'paused_until'), str(t + 1000))
        self.assertEqual(self.pause(t), 0)
        self.assertEqual(self.state('pause'), str(t + 1000), 'not lowered')
        self.assertEqual(self.rs.call('HGET', k('endpoint'), 'paused_until'), str(t + 1000))
        with self.assertRaises(h.RedisError):
            self.pause('soon')

    def test_pause_missing_endpoint(self):
        self.assertEqual(self.pause(self.now() + 10000, ep='ep_gone'), 0)
        self.assertEqual(self.rs.call('KEYS', '*'), [])

    # ------------------------------------------------------------ end to end

    def test_ordering_property(self):
        for seed in (7, 8, 9):
            with self.subTest(seed=seed):
                self.rs.call('FLUSHALL')
                self.ordering_run(random.Random(seed))

    def ordering_run(self, rnd):
        self.endpoint(ordered='true', order_key='data.task')
        jobs = [(lid(1000 + 100 * i + j), key, 1) for i, key in enumerate('xyz')
                for j in range(20)]
        rnd.shuffle(jobs)
        for i in range(0, len(jobs), 7):  # several fanout calls
            self.push('f', jobs[i:i + 7])
        self.assertEqual(self.n(), 60)
        done = {key: [] for key in 'xyz'}
        attempts = {}
        retries = 0
        for rounds in range(2000):
            if sum(map(len, done.values())) == 60:
                break
            st, _, _, got = self.claim(want=rnd.randint(1, 4), me='w%d' % rnd.randint(1, 3))
            self.assertIn(st, (0,), st)
            held = [m.split('\t')[1] for m in self.leases()]
            self.assertEqual(len(held), len(set(held)), 'two leases of one key: %r' % held)
            lanes = sum(self.rs.call('ZCARD', lane(x)) for x in 'xyz')
            self.assertEqual(self.n(), lanes, 'n counts the jobs in the lanes')
            acts = []
            for j in got:
                self.assertEqual(j[2], attempts.get(j[0], 0) + 1, 'attempt of %s' % j[0])
                attempts[j[0]] = j[2]
                m = [x for x in self.leases() if x.startswith(j[0] + '\t')][0]
                if rnd.random() < 0.3:
                    acts.append((m, 'r', self.now(), j[2]))
                    retries += 1
                else:
                    acts.append((m, 'd', 0, j[2]))
                    done[j[1]].append(j[0])
            if acts:
                r = self.settle(acts)
                self.assertEqual(r[1:], [1] * len(acts))
            else:
                time.sleep(0.001)
        for key, seq in done.items():
            self.assertEqual(len(seq), 20, key)
            self.assertTrue(all(a < b for a, b in zip(seq, seq[1:])),
                            'key %s delivered out of order: %r' % (key, seq))
            self.assertEqual(self.state('last:' + key), seq[-1])
        self.assertGreater(retries, 5)
        self.assertEqual((self.n(), self.leases(), self.ready(), self.lanekeys()),
                         (0, {}, {}, set()))


if __name__ == '__main__':
    h.main()
