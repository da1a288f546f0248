"""Ordered delivery per order key (docs/policies.md "Ordered endpoints"), with real
workers, a real Redis and a receiver that records, per key, every request's seq, when it
came in and when it was answered.

- test_long_ordered_kill9 (long: the *_long CTest entry, label slow): 3 workers, 5,000
  events over 10 keys published in order over ~15 s, 10% of requests answered 503, a
  worker killed with -9 every 2 s (and restarted): per key, no request goes below the
  highest seq already answered 2xx nor past the next one, never two seqs of a key in
  flight at once, all 5,000 delivered, repeats bounded by the heads the killed workers
  held; prints deliveries/s.
- test_failing_head_blocks_its_key_only: 1 worker, 200 events over 4 keys, no kills: in
  order per key, keys in parallel, a head answered 500 until it is dead-lettered blocks
  its key (only), the ones behind it go on after, and the dead letter says so
  (order_key, overtaken_by, waiting_behind).
"""
import collections
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import policyutil as pu  # noqa: E402
import wkutil as u  # noqa: E402


def fail_all(test, problems, workers=()):
    if problems:
        logs = ''.join('\n--- worker log tail:\n' + w.log()[-1500:] for w in workers[:1])
        test.fail('\n'.join(problems) + logs)


class PolicyOrdered(h.TestCase):

    @pu.long_test
    def test_long_ordered_kill9(self):
        keys = ['k%d' % i for i in range(10)]
        per_key, n = 500, 5000
        publish_s, kill_every = 15.0, 2.0
        rec = pu.SeqRecorder(pu.random_503(0.10, seed=11))
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/o'), ordered='true', order_key='data.key')
            # leases back in 3 s; 16 attempts so a 10% failure rate kills nothing
            # (p = 1e-16 per event); claims bounded high so kills alone kill nothing
            e = u.env(delivery_timeout='2s', delivery_visibility_timeout='3s',
                      retry_schedule='100ms 200ms' + ' 500ms' * 14, retry_jitter='0.2',
                      delivery_max_claims=100, endpoints_disable_after=0, log_level='info',
                      delivery_concurrency=32)
            ws = [pu.worker(self, rs, e, 'ord%d' % i) for i in range(3)]
            kills = 0
            rnd = random.Random(7)
            try:
                pu.wait_loaded(self, ws, 1)
                # the events in publish order, paced so the kills fall during delivery
                order = [(k, s) for s in range(per_key) for k in keys]
                chunks = [order[i:i + 50] for i in range(0, n, 50)]
                t0 = time.monotonic()
                next_kill = t0 + kill_every
                done_at = None
                sent = 0
                limit = t0 + publish_s + 240
                while time.monotonic() < limit:
                    now = time.monotonic()
                    due = min(len(chunks), int((now - t0) / publish_s * len(chunks)) + 1)
                    while sent < due:
                        rs.pipeline([['XADD', u.EVENTS, '*', 'type', 'x', 'data',
                                      '{"key":"%s","seq":%d}' % (k, s)] for k, s in chunks[sent]])
                        sent += 1
                    if now >= next_kill:
                        i = rnd.randrange(3)
                        ws[i].kill()
                        kills += 1
                        ws[i] = pu.worker(self, rs, e, 'ord%d' % i)
                        next_kill = now + kill_every
                    if sent == len(chunks) and rec.ok_count() >= n:
                        done_at = time.monotonic()
                        break
                    time.sleep(0.05)
                t_pub_end = t0 + publish_s
                self.assertEventually(lambda: pu.state(rs, ep).get('n', '0') == '0', 30,
                                      'jobs left in the lanes: %r' % pu.state(rs, ep))
            finally:
                pu.stop_all(ws)
            recs = rec.records()
            problems = []
            okd = {(r.key, r.seq) for r in recs if 200 <= r.status < 300}
            missing = [(k, s) for k in keys for s in range(per_key) if (k, s) not in okd]
            if missing:
                problems.append('%d of %d events never got a 2xx (first: %r); %d requests'
                                % (len(missing), n, missing[:10], len(recs)))
            v = pu.order_violations(recs)
            if v:
                problems.append(pu.shown('order violations', v))
            o = pu.overlaps(recs)
            if o:
                problems.append(pu.shown('two seqs of a key in flight at once', o))
            peak = max(rec.peak_key.values()) if rec.peak_key else 0
            if peak > 1:
                problems.append('a key had %d requests in flight at once' % peak)
            dead = rs.call('XLEN', u.DEAD)
            if dead:
                problems.append('%d dead letters: %r' % (dead, u.entries(rs, u.DEAD, 3)))
            # a kill repeats at most the heads that worker held: one per key
            ok_repeats = sum(1 for r in recs if 200 <= r.status < 300) - len(okd)
            if ok_repeats > kills * len(keys):
                problems.append('%d events got a 2xx twice; %d kills x %d keys allow %d'
                                % (ok_repeats, kills, len(keys), kills * len(keys)))
            if kills < 6:
                problems.append('only %d kills: the test proves less' % kills)
            if recs and done_at:
                first = min(r.start for r in recs)
                sys.stderr.write(
                    '\nordered, 3 workers, 10 keys, 10%% 503, %d kills: %d events in %.1f s '
                    '= %.0f deliveries/s (published over %.0f s; all in %.1f s after the '
                    'last publish); %d requests, %d answered 503, %d 2xx repeats\n'
                    % (kills, n, done_at - first, n / (done_at - first), publish_s,
                       done_at - t_pub_end, len(recs),
                       sum(1 for r in recs if r.status == 503), ok_repeats))
            fail_all(self, problems, ws)

    @pu.fast_test
    def test_failing_head_blocks_its_key_only(self):
        keys = ['k0', 'k1', 'k2', 'k3']
        per_key, attempts = 50, 3

        def decide(key, seq, req):
            return 500 if (key, seq) == ('k1', 5) else 200
        rec = pu.SeqRecorder(decide, hold=0.01)
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/o'), ordered='true', order_key='data.key')
            e = u.env(retry_schedule='300ms 300ms', retry_jitter=0, endpoints_disable_after=0)
            with h.Worker(rs, env=e, name='ord') as w:
                pu.wait_loaded(self, [w], 1)
                pub = pu.publish_keyed(rs, keys, per_key)
                t_pub = time.monotonic()
                # the first failure stalls on its retries but the others go on: wait for all
                # of them, and the failing one's dead letter (bounded: the current worker
                # takes ~1 s)
                ok = h.wait_until(lambda: rec.ok_count() >= len(pub) - 1 and
                                  rs.call('XLEN', u.DEAD) >= 1, 30)
                time.sleep(0.5)  # anything that would still come
                log = w.log()
                st = pu.state(rs, ep)
                leases = rs.call('ZCARD', pu.ep_key(ep, 'leases'))
                self.assertEqual(0, w.stop())
            recs = rec.records()
            problems = []
            if not ok:
                problems.append('after %.0f s: %d of %d events got a 2xx, %d dead letters'
                                % (time.monotonic() - t_pub, rec.ok_count(), len(pub) - 1,
                                   rs.call('XLEN', u.DEAD)))
            want = {k: [s for s in range(per_key) if (k, s) != ('k1', 5)] for k in keys}
            got = pu.first_ok_order(recs)
            for k in keys:
                if got.get(k) != want[k]:
                    problems.append('key %s delivered in the order %r' % (k, got.get(k)))
            v = pu.order_violations(recs, skip={'k1': {5}})
            if v:
                problems.append(pu.shown('order violations', v))
            o = pu.overlaps(recs)
            if o:
                problems.append(pu.shown('two seqs of a key in flight at once', o))
            dup = [ks for ks, c in collections.Counter(
                (r.key, r.seq) for r in recs if r.status == 200).items() if c > 1]
            if dup:
                problems.append('delivered twice without any kill: %r' % dup[:10])
            head = [r for r in recs if (r.key, r.seq) == ('k1', 5)]
            if [r.status for r in head] != [500] * attempts:
                problems.append('k1 seq 5: answers %r, want %d x 500 (retry.schedule + 1)'
                                % ([r.status for r in head], attempts))
            behind = [r for r in recs if r.key == 'k1' and r.seq > 5]
            if head and behind:
                first_behind = min(r.start for r in behind)
                if first_behind < max(r.end for r in head):
                    problems.append('k1 seq %d came in %.0f ms before k1 seq 5 had its last '
                                    'attempt: a failing head must block its key'
                                    % (min(behind, key=lambda r: r.start).seq,
                                       (max(r.end for r in head) - first_behind) * 1000))
                # while k1 waited on its head, the other keys went on
                others = [r for r in recs if r.key != 'k1' and 200 <= r.status < 300 and
                          head[0].start < r.start < first_behind]
                if not others:
                    problems.append('no other key was delivered while k1 waited on its head')
            par = pu.distinct_keys_in_flight(recs)
            if par < 3:
                problems.append('at most %d keys had a request in flight at once: keys must '
                                'go in parallel' % par)
            dead = u.entries(rs, u.DEAD)
            sid = {(k, s): i for i, k, s in pub}
            if len(dead) != 1:
                problems.append('%d dead letters, want 1: %r' % (len(dead), dead[:3]))
            else:
                d = dead[0][1]
                want_d = {'endpoint': ep, 'event': sid[('k1', 5)], 'attempt': str(attempts),
                          'order_key': 'k1', 'overtaken_by': sid[('k1', 6)],
                          'waiting_behind': str(per_key - 6)}
                have_d = {k: d.get(k) for k in want_d}
                if have_d != want_d:
                    problems.append('dead letter %r\n  want %r' % (d, want_d))
            if st.get('n', '0') != '0' or leases:
                problems.append('left in the lanes: state %r, %d leases' % (st, leases))
            if problems:
                self.fail('\n'.join(problems) + '\n--- worker log tail:\n' + log[-1500:])


if __name__ == '__main__':
    h.main()
