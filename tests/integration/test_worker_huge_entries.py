"""Stream entries with thousands of fields.

An events-stream entry with 5,000 fields, and one with 50,000, published among 1,000 good
events, must not disturb the good ones: every good event is delivered exactly once, and
each huge entry is dead-lettered exactly once (kind event, source = its stream id) as a
bounded copy (at most 64 f.* fields, under 1 MiB in all, marked `truncated 1`); at the end
neither consumer group has anything pending. The same for jobs-stream entries with 5,000
and 50,000 fields among good jobs: one bounded dead letter each (kind job), acknowledged,
and the good jobs delivered once each.

A short visibility timeout (2 s) makes a batch that is fanned out and then reclaimed
again show up as duplicate deliveries within the test.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402
import wkmore as m  # noqa: E402

N_GOOD = 1000
HUGE = {300: 5000, 700: 50000}  # position among the good events -> number of fields
MAX_COPIED_FIELDS = 64
MAX_DEAD_BYTES = 1 << 20
FIELD_CAP = 64 * 1024  # docs/keys.md: copied values are cut at 64 KiB
VALUE = b'v' * 100
TIMEOUT = 30  # seconds for everything to settle; a fixed worker needs a few


def huge_fields(n, with_envelope):
    """n field/value pairs; with_envelope, the first two are a valid type and data, so
    the entry is wrong only in how many fields it has."""
    pairs = []
    if with_envelope:
        pairs += [(b'type', b'huge.good'), (b'data', b'{"huge":true}')]
    pairs += [(b'k%d' % i, VALUE) for i in range(n - len(pairs))]
    return pairs


def xadd_pairs(rs, key, pairs):
    return m.call_big(rs, 'XADD', key, '*', *[x for kv in pairs for x in kv])


class HugeEntries(h.TestCase):

    def check_dead_copy(self, src, fields, original, kind):
        """One dead letter for the huge entry src: its kind and source, a reason, a
        bounded and faithful copy of some of its fields and the truncated marker."""
        d = dict(fields)
        msg = 'dead letter of %s: %s' % (src, m.brief(fields))
        self.assertEqual(d.get(b'kind'), kind.encode(), msg)
        self.assertEqual(d.get(b'source'), src.encode(), msg)
        self.assertTrue(d.get(b'reason'), msg)
        self.assertRegex(d[b'reason'].decode('utf-8', 'replace'), re.compile(r'field', re.I),
                         msg)
        copied = [(k, v) for k, v in fields if k.startswith(b'f.')]
        self.assertLessEqual(len(copied), MAX_COPIED_FIELDS,
                             '%s: %d fields copied (%d in the entry)'
                             % (src, len(copied), len(original)))
        self.assertLess(m.entry_size(fields), MAX_DEAD_BYTES,
                        '%s: dead letter is %d bytes' % (src, m.entry_size(fields)))
        self.assertEqual(d.get(b'truncated'), b'1',
                         '%s: a cut copy must say so (truncated 1): %s' % (src, m.brief(fields)))
        orig = dict(original)
        for k, v in copied:
            name = k[2:]
            self.assertIn(name, orig, '%s: copied a field the entry does not have: %r'
                          % (src, name[:80]))
            self.assertEqual(v, orig[name][:FIELD_CAP], '%s: %r copied wrongly' % (src, name))

    def test_events_with_thousands_of_fields_beside_good_events(self):
        """1,000 good events around two events entries with 5,000 and 50,000 fields."""
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/good'), '--events', 'huge.good')
            huge = {}  # stream id -> its fields
            batch = []

            def flush():
                for sid in rs.pipeline(batch):
                    self.assertIsInstance(sid, str, sid)
                batch.clear()
            for n in range(N_GOOD):
                if n in HUGE:
                    flush()
                    pairs = huge_fields(HUGE[n], with_envelope=True)
                    huge[xadd_pairs(rs, u.EVENTS, pairs)] = pairs
                batch.append(['XADD', u.EVENTS, '*', 'id', 'good_%d' % n, 'type', 'huge.good',
                              'data', '{"n":%d}' % n])
                if len(batch) == 500:
                    flush()
            flush()
            want = {'good_%d' % n for n in range(N_GOOD)}

            with h.Worker(rs, env=u.env(log_level='info')) as w:
                def settled():
                    by = m.dead_by_source(rs)
                    return (set(m.webhook_ids(rcv)) >= want and all(s in by for s in huge)
                            and m.pending(rs) == (0, 0))
                h.wait_until(settled, TIMEOUT, interval=0.2)
                time.sleep(1.5)  # a late duplicate would come by now
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                got = m.webhook_ids(rcv)
                dups = {k: c for k, c in got.items() if c > 1}
                self.assertEqual(set(got), want, 'delivered: %d of %d good events, plus %r'
                                 % (len(set(got) & want), N_GOOD, sorted(set(got) - want)[:5]))
                self.assertEqual(len(dups), 0, '%d good events delivered more than once (%d '
                                 'requests for %d events), e.g. %r; worker log tail:\n%s'
                                 % (len(dups), sum(got.values()), len(got),
                                    sorted(dups.items())[:4], w.log()[-1200:]))
                by = m.dead_by_source(rs)
                for src, pairs in huge.items():
                    self.assertEqual(len(by.get(src, [])), 1,
                                     '%s (%d fields) dead-lettered %d times'
                                     % (src, len(pairs), len(by.get(src, []))))
                    self.check_dead_copy(src, by[src][0], pairs, 'event')
                self.assertEqual(set(by), set(huge), 'unexpected dead letters: %r'
                                 % sorted(set(by) - set(huge)))
                self.assertEqual(m.pending(rs), (0, 0), '(events, jobs) still pending')
                self.assertEqual(rs.call('XLEN', u.JOBS), 0, 'jobs left in the jobs stream')
                self.assertEqual(len(u.log_entries(rs, ep)), N_GOOD)

    def test_jobs_with_thousands_of_fields_beside_good_jobs(self):
        """Jobs-stream entries with 5,000 and 50,000 fields among 20 good jobs."""
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/good'))
            # The events are there for the jobs to name, but nothing fans them out: the
            # group already stands past them, so the jobs below are the only ones.
            sids = m.events_not_fanned_out(rs, ['job_%d' % n for n in range(20)], 'huge.job')
            huge = {}
            for n, sid in enumerate(sids):
                if n in (7, 14):
                    pairs = huge_fields(5000 if n == 7 else 50000, with_envelope=False)
                    huge[xadd_pairs(rs, u.JOBS, pairs)] = pairs
                rs.call('XADD', u.JOBS, '*', 'event', sid, 'endpoint', ep, 'attempt', '1')
            want = {'job_%d' % n for n in range(20)}

            with h.Worker(rs, env=u.env(log_level='info')) as w:
                def settled():
                    by = m.dead_by_source(rs)
                    return (set(m.webhook_ids(rcv)) >= want and all(s in by for s in huge)
                            and m.pending(rs) == (0, 0))
                h.wait_until(settled, TIMEOUT, interval=0.2)
                time.sleep(1.5)
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                got = m.webhook_ids(rcv)
                self.assertEqual(set(got), want)
                self.assertEqual({k: c for k, c in got.items() if c > 1}, {},
                                 'good jobs delivered more than once')
                by = m.dead_by_source(rs)
                for src, pairs in huge.items():
                    self.assertEqual(len(by.get(src, [])), 1,
                                     '%s (%d fields) dead-lettered %d times'
                                     % (src, len(pairs), len(by.get(src, []))))
                    self.check_dead_copy(src, by[src][0], pairs, 'job')
                self.assertEqual(set(by), set(huge))
                self.assertEqual(m.pending(rs), (0, 0), '(events, jobs) still pending')
                left = [sid for sid, _ in m.xrange_raw(rs, u.JOBS)]
                self.assertFalse(set(left) & set(huge), 'huge jobs entries not deleted')


if __name__ == '__main__':
    h.main()
