"""Holding events while an endpoint is disabled (docs/policies.md "Holding events while
disabled"), with real workers:

- on_disabled hold, disabled: 100 events published, none delivered (they are counted in
  the lanes: state n); after `endpoint enable` all 100 delivered: an unordered endpoint
  gets them all once, an ordered one in publish order, one at a time;
- hold_max 10: 10 kept (the first 10), state dropped 90, only those 10 after enable;
- the default (drop): events published while disabled are never delivered, only the ones
  after enable, for an endpoint without a policy and for an ordered one without hold;
- `endpoint enable --discard-held` drops what was held (skipped while the CLI lacks it).
"""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import policyutil as pu  # noqa: E402
import wkutil as u  # noqa: E402

QUIET = 2.0  # how long "none delivered" is watched


def workers(test, rs, n):
    e = u.env(log_level='info')
    return [pu.worker(test, rs, e, 'hold%d' % i) for i in range(n)]


class PolicyHold(h.TestCase):

    def _held(self, rs, rec, ep, n_workers, n=100, **policy):
        """Endpoint ep (already made) gets the policy, is disabled, n events published
        while it is; returns (workers, publish list) once QUIET has passed."""
        ws = workers(self, rs, n_workers)
        pu.wait_loaded(self, ws, 1)
        pu.set_policy(rs, ep, on_disabled='hold', **policy)
        pu.disable(rs, ep)
        time.sleep(0.5)  # past endpoints.reload_interval (200 ms): every worker knows
        pub = pu.publish_keyed(rs, ['a'], n)
        time.sleep(QUIET)
        return ws, pub

    @pu.fast_test
    def test_hold_unordered_all_delivered_after_enable(self):
        rec = pu.SeqRecorder()
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/h'))
            ws, pub = self._held(rs, rec, ep, 2)
            try:
                problems = []
                before = rec.n()
                st = pu.state(rs, ep)
                if before:
                    problems.append('%d requests while disabled' % before)
                if st.get('n') != '100':
                    problems.append('while disabled: state %r, want n 100 (held)' % st)
                r = pu.enable(rs, ep)
                self.assertEqual(0, r.returncode, r.stderr)
                h.wait_until(lambda: rec.ok_count() >= 100, 15)
                time.sleep(0.3)
                recs = rec.records()
                seqs = collections.Counter(x.seq for x in recs if x.status == 200)
                if set(seqs) != set(range(100)):
                    problems.append('after enable: %d of 100 held events delivered (missing '
                                    '%r)' % (len(set(seqs) & set(range(100))),
                                             sorted(set(range(100)) - set(seqs))[:10]))
                twice = {s: c for s, c in seqs.items() if c > 1}
                if twice:
                    problems.append('delivered more than once: %r' % twice)
                if problems:
                    self.fail('\n'.join(problems) + '\n--- worker log tail:\n' +
                              ws[0].log()[-1500:])
                self.assertEventually(lambda: pu.state(rs, ep).get('n', '0') == '0', 5)
            finally:
                pu.stop_all(ws)

    @pu.fast_test
    def test_hold_ordered_delivered_in_publish_order(self):
        rec = pu.SeqRecorder()
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/h'))
            ws, pub = self._held(rs, rec, ep, 2, ordered='true')
            try:
                self.assertEqual(0, rec.n(), 'requests while disabled')
                r = pu.enable(rs, ep)
                self.assertEqual(0, r.returncode, r.stderr)
                h.wait_until(lambda: rec.ok_count() >= 100, 20)
                time.sleep(0.3)
                recs = sorted(rec.records(), key=lambda x: x.start)
                seqs = [x.seq for x in recs]
                if seqs != list(range(100)):
                    bad = next((i for i, (a, b) in enumerate(zip(seqs, range(100))) if a != b),
                               min(len(seqs), 100))
                    self.fail('held events of an ordered endpoint after enable: %d requests, '
                              'want seqs 0..99 in order; first difference at #%d: %r\n'
                              '--- worker log tail:\n%s'
                              % (len(seqs), bad, seqs[max(0, bad - 3):bad + 5],
                                 ws[0].log()[-1500:]))
                self.assertEqual(rec.peak, 1, 'ordered, one order: one request at a time')
                o = pu.overlaps(recs)
                self.assertFalse(o, pu.shown('two requests in flight at once', o) if o else '')
            finally:
                pu.stop_all(ws)

    @pu.fast_test
    def test_hold_max_keeps_10_drops_90(self):
        rec = pu.SeqRecorder()
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/h'))
            ws, pub = self._held(rs, rec, ep, 1, hold_max=10)
            try:
                problems = []
                st = pu.state(rs, ep)
                if rec.n():
                    problems.append('%d requests while disabled' % rec.n())
                if st.get('n') != '10' or st.get('dropped') != '90':
                    problems.append('while disabled: state %r, want n 10, dropped 90' % st)
                r = pu.enable(rs, ep)
                self.assertEqual(0, r.returncode, r.stderr)
                h.wait_until(lambda: rec.ok_count('/plain') >= 5 and rec.ok_count('/ordered') >= 5, 10)
                time.sleep(1.0)  # nothing more may come
                seqs = sorted(x.seq for x in rec.records() if x.status == 200)
                if seqs != list(range(10)):
                    problems.append('after enable, hold_max 10: delivered seqs %r, want the '
                                    'first 10 once each' % seqs[:30])
                if pu.state(rs, ep).get('dropped') != '90':
                    problems.append('after enable: state %r, want dropped 90'
                                    % pu.state(rs, ep))
                if problems:
                    self.fail('\n'.join(problems) + '\n--- worker log tail:\n' +
                              ws[0].log()[-1500:])
            finally:
                pu.stop_all(ws)

    @pu.fast_test
    def test_default_drop_never_delivers_what_came_while_disabled(self):
        rec = pu.SeqRecorder()
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            # one endpoint without any policy (the shared stream), one ordered without
            # hold (lanes, dropped_disabled)
            plain = pu.endpoint(rs, rcv.url('/plain'))
            ordered = pu.endpoint(rs, rcv.url('/ordered'), ordered='true')
            ws = workers(self, rs, 2)
            try:
                pu.wait_loaded(self, ws, 2)
                pu.disable(rs, plain)
                pu.disable(rs, ordered)
                time.sleep(0.5)
                pu.publish_keyed(rs, ['a'], 100)
                time.sleep(QUIET)
                problems = []
                if rec.n():
                    problems.append('%d requests while disabled' % rec.n())
                # nothing held (dropped_disabled counts only the pushes that met the
                # disable in lane_push.lua: a worker that already knows of it fans out
                # nothing, so no count is asserted)
                st = pu.state(rs, ordered)
                if st.get('n', '0') != '0':
                    problems.append('ordered endpoint without hold, while disabled: state %r, '
                                    'want n 0 (nothing held)' % st)
                sys.stderr.write('\nordered endpoint without hold, disabled: state %r\n' % st)
                for ep in (plain, ordered):
                    r = pu.enable(rs, ep)
                    self.assertEqual(0, r.returncode, r.stderr)
                time.sleep(0.5)
                pu.publish_keyed(rs, ['b'], 5)
                h.wait_until(lambda: rec.ok_count('/plain') >= 5 and rec.ok_count('/ordered') >= 5, 10)
                time.sleep(1.0)
                for path in ('/plain', '/ordered'):
                    got = sorted((x.key, x.seq) for x in rec.records(path) if x.status == 200)
                    if got != [('b', i) for i in range(5)]:
                        problems.append('%s after enable got %r, want only the 5 published '
                                        'after it' % (path, got[:20]))
                if problems:
                    self.fail('\n'.join(problems) + '\n--- worker log tail:\n' +
                              ws[0].log()[-1500:])
            finally:
                pu.stop_all(ws)

    @pu.fast_test
    def test_enable_discard_held_drops_them(self):
        usage = h.hookq(None, 'endpoint', 'enable')
        if '--discard-held' not in usage.stdout + usage.stderr:
            self.skipTest('this hookq has no `endpoint enable --discard-held` yet (usage: %s)'
                          % (usage.stdout + usage.stderr).strip().splitlines()[-1])
        rec = pu.SeqRecorder()
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/h'))
            ws, pub = self._held(rs, rec, ep, 1)
            try:
                self.assertEqual(0, rec.n(), 'requests while disabled')
                r = pu.enable(rs, ep, '--discard-held')
                self.assertEqual(0, r.returncode, r.stdout + r.stderr)
                self.assertIn('100', r.stdout + r.stderr, 'the count dropped is printed')
                time.sleep(QUIET)
                self.assertEqual(0, rec.n(), 'held events delivered after --discard-held')
                self.assertEqual('0', pu.state(rs, ep).get('n', '0'))
                pu.publish_keyed(rs, ['b'], 5)
                self.assertTrue(h.wait_until(lambda: rec.ok_count() >= 5, 10),
                                'the endpoint is not enabled after --discard-held')
                time.sleep(0.3)
                self.assertEqual(sorted((x.key, x.seq) for x in rec.records()),
                                 [('b', i) for i in range(5)])
            finally:
                pu.stop_all(ws)


if __name__ == '__main__':
    h.main()
