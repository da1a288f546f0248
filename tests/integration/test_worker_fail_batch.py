"""Failed attempts are written in batches (one fail.lua per endpoint and one
settle_batch.lua per results round), with the semantics of one write per attempt:

- the failure counter follows the completion order inside a round: after each round of
  mixed answers it holds the failures since the last success, as the delivery log
  (written in completion order) shows them;
- failures that cross endpoints.disable_after in one round disable once, at exactly the
  threshold, with one endpoint.disabled event and one log line;
- the writes of failed attempts are batched: the commands that used to run once per
  failed attempt (HGET + INCR in fail.lua, EXISTS + ZADD in settle.lua) run once per
  endpoint or once per results round.
"""
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def disabled_events(rs):
    return [json.loads(f['data']) for _, f in u.entries(rs, u.EVENTS)
            if f.get('type') == 'endpoint.disabled']


def commandstats(rs):
    calls = {}
    for line in rs.call('INFO', 'commandstats').splitlines():
        m = re.match(r'cmdstat_([^:]+):calls=(\d+)', line)
        if m:
            calls[m.group(1)] = int(m.group(2))
    return calls


def expected_count(outcomes, start):
    """The counter after outcomes ('delivered' / 'retry' / 'dead') applied in order."""
    n = start
    for o in outcomes:
        n = 0 if o == 'delivered' else n + 1
    return n


class WorkerFailBatch(h.TestCase):

    def test_counter_follows_completion_order_within_a_round(self):
        # each round: 4 events sent at once (the endpoint's first window is 4, so they
        # are in flight together and mostly finish in the same results round), answered
        # 500 or 204 by the plan; the counter must match the log's order every time
        plans = ['fsff', 'sfsf', 'fffs', 'fssf', 'ssff', 'ffff', 'sfff', 'fsfs', 'ffsf']
        plan = ''.join(plans)

        def handler(req, nth):
            i = json.loads(req.body)['data']['i']
            time.sleep(0.02)  # the round's answers arrive together
            return (500, {}, b'no') if plan[i] == 'f' else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            fkey = 'hookq:{%s}:failures' % ep
            e = u.env(retry_schedule='1h', retry_max_retry_after='1h',
                      endpoints_disable_after=1000, delivery_per_endpoint=4)
            with h.Worker(rs, env=e) as w:
                i = 0
                for rnd in plans:
                    rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data',
                                  json.dumps({'i': i + k})) for k in range(len(rnd))])
                    i += len(rnd)
                    self.assertEventually(lambda: len(u.log_entries(rs, ep)) == i, 10, w.log())
                    outcomes = [f['outcome'] for _, f in u.log_entries(rs, ep)]
                    want = expected_count(outcomes, 0)
                    got = int(rs.call('GET', fkey) or 0)
                    self.assertEqual(want, got, 'after %s: log order %s' % (rnd, outcomes))
                self.assertEqual(0, w.stop())
            self.assertEqual(len(plan), len(rcv.requests))
            self.assertEqual('true', rs.call('HGET', 'hookq:{%s}:endpoint' % ep, 'enabled'))

    def test_threshold_crossed_in_one_round_disables_once(self):
        def handler(req, nth):
            time.sleep(0.05)
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            key = 'hookq:{%s}:endpoint' % ep
            e = u.env(endpoints_disable_after=3, retry_schedule='1h', retry_max_retry_after='1h',
                      delivery_per_endpoint=4, log_level='info')
            w = h.Worker(rs, env=e).start()
            try:
                self.assertEventually(lambda: 'endpoints: loaded 1' in w.log(), 10, w.log())
                rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data', str(i))
                             for i in range(8)])
                self.assertEventually(lambda: rs.call('HGET', key, 'enabled') == 'false', 10)
                self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 8
                                      and rs.call('XPENDING', u.JOBS, 'deliver')[0] == 0)
            finally:
                self.assertEqual(0, w.stop())
            self.assertEqual(disabled_events(rs),
                             [{'endpoint_id': ep, 'reason': 'consecutive failures',
                               'failures': 3}])
            self.assertEqual('3', rs.call('GET', 'hookq:{%s}:failures' % ep),
                             'failures after the disable are not counted')
            self.assertIn('3 consecutive failed attempts', rs.call('HGET', key, 'disabled_reason'))
            self.assertEqual(1, w.log().count('disabled after 3 consecutive failures'), w.log())
            # one attempt each (the retry is an hour away), the rest dropped as disabled
            n = len(rcv.requests)
            self.assertGreaterEqual(n, 3)
            self.assertEqual(n, rs.call('ZCARD', u.DELAY))
            outcomes = [f['outcome'] for _, f in u.log_entries(rs, ep)]
            self.assertEqual((n, 8 - n), (outcomes.count('retry'), outcomes.count('disabled')))

    def test_writes_of_failed_attempts_are_batched(self):
        n_eps, n_events, attempts = 4, 200, 3
        # answers go out in clumps, every 100 ms, as from a receiver that is slow at
        # times: what a results round holds then depends less on this machine's speed
        gate = {'ev': threading.Event(), 'stop': False}

        def ticker():
            while not gate['stop']:
                time.sleep(0.1)
                ev, gate['ev'] = gate['ev'], threading.Event()
                ev.set()
        threading.Thread(target=ticker, daemon=True).start()
        self.addCleanup(lambda: gate.update(stop=True))

        def handler(req, nth):
            gate['ev'].wait(5)
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            eps = [u.add_endpoint(rs, rcv.url('/e%d' % i))[0] for i in range(n_eps)]
            sids = rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data', str(i), 'endpoint',
                                 eps[i % n_eps]) for i in range(n_events)])
            e = u.env(retry_schedule='50ms 50ms', endpoints_disable_after=0, log_level='info')
            c0 = commandstats(rs)
            with h.Worker(rs, env=e) as w:
                self.assertEventually(lambda: rs.call('XLEN', u.DEAD) == n_events, 60, w.log())
                time.sleep(0.3)
                self.assertEqual(0, w.stop())
            c1 = commandstats(rs)
            # every job went through exactly its 3 attempts and out, none left behind
            dead = [f for _, f in u.entries(rs, u.DEAD)]
            self.assertEqual(sorted(sids), sorted(f['event'] for f in dead))
            self.assertEqual({('3', '500')}, {(f['attempt'], f['status']) for f in dead})
            self.assertEqual(0, rs.call('XPENDING', u.JOBS, 'deliver')[0])
            self.assertEqual((0, 0), (rs.call('ZCARD', u.DELAY), rs.call('XLEN', u.JOBS)))
            for ep in eps:
                self.assertEqual(str(n_events // n_eps * attempts),
                                 rs.call('GET', 'hookq:{%s}:failures' % ep))
        n = len(rcv.requests)
        self.assertEqual(n_events * attempts, n)
        d = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1}
        per = {k: d.get(k, 0) / n for k in ('hget', 'incr', 'incrby', 'exists', 'zadd')}
        # one write per failed attempt would be ~3.7 (hget 1, incr 1, exists 1, zadd 2/3)
        self.assertLess(sum(per.values()), 2.0, per)
        total = sum(v for k, v in d.items() if k not in ('info', 'xlen', 'hgetall', 'smembers'))
        sys.stderr.write('\n%d failed attempts, %.2f Redis commands each; %r\n'
                         % (n, total / n, {k: round(v, 3) for k, v in per.items()}))

    def test_a_round_larger_than_one_script_call(self):
        # 160 failed attempts to 40 endpoints finish while Redis is stopped, so the next
        # results round holds them all: more than one settle_batch.lua call takes (100)
        n_eps, per_ep = 40, 4
        n_events = n_eps * per_ep
        gate = threading.Event()

        def handler(req, nth):
            gate.wait(30)
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            eps = [u.add_endpoint(rs, rcv.url('/e%d' % i))[0] for i in range(n_eps)]
            e = u.env(retry_schedule='1h', retry_max_retry_after='1h', endpoints_disable_after=0,
                      delivery_concurrency=200, delivery_timeout='20s',
                      delivery_visibility_timeout='30s', log_level='info')
            with h.Worker(rs, env=e) as w:
                self.assertEventually(lambda: 'endpoints: loaded %d' % n_eps in w.log(), 10,
                                      w.log())
                rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data', str(i), 'endpoint',
                              eps[i % n_eps]) for i in range(n_events)])
                self.assertEventually(lambda: len(rcv.requests) == n_events, 20, w.log())
                c0 = commandstats(rs)
                rs.proc.send_signal(signal.SIGSTOP)
                try:
                    gate.set()
                    time.sleep(1.0)  # every answer reaches the worker, Redis is stopped
                finally:
                    rs.proc.send_signal(signal.SIGCONT)
                self.assertEventually(lambda: rs.call('ZCARD', u.DELAY) == n_events, 20, w.log())
                c1 = commandstats(rs)
                self.assertEqual(0, w.stop())
            self.assertEqual(0, rs.call('XPENDING', u.JOBS, 'deliver')[0])
            self.assertEqual(0, rs.call('XLEN', u.JOBS))
            members = rs.call('ZRANGE', u.DELAY, 0, -1)
            self.assertEqual(n_events, len({m.split()[0] for m in members}), 'one per event')
            self.assertEqual({'2'}, {m.split()[2] for m in members})
            for ep in eps:
                self.assertEqual(str(per_ep), rs.call('GET', 'hookq:{%s}:failures' % ep))
                self.assertEqual(['retry'] * per_ep,
                                 [f['outcome'] for _, f in u.log_entries(rs, ep)])
            self.assertEqual(n_events, len(rcv.requests))
        # the failures came back in few rounds: far fewer counter writes than attempts
        self.assertLess(c1.get('incrby', 0) - c0.get('incrby', 0), n_events / 2)


if __name__ == '__main__':
    h.main()
