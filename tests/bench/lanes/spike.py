#!/usr/bin/env python3
"""Spike: Redis cost of delivery for the shared jobs stream (A) and per-endpoint lanes (B).

Starts a private redis-server (127.0.0.1, free port, no persistence), and for each case
pre-loads the events, then drains them with ONE driver issuing pipelined commands as a
worker would (delivery itself is instant: only Redis's side is measured). Per case and
layout: Redis CPU (INFO CPU user+sys, after - before) and commands (INFO commandstats,
commands run inside scripts included, EVALSHA counted too) per delivery; median of the
repetitions, A and B alternated in the same run. See docs/architecture.md "Redis layout
for delivery policies" for the design of B and the results.

    python3 tests/bench/lanes/spike.py [--quick] [--n N] [--reps R] [--only CASE,...]
"""
import argparse
import os
import statistics
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
import harness as h  # noqa: E402  (RESP client and private redis-server only)

P = 'hookq'
BATCH = 64          # delivery.batch / the worker's claim size
K = 16              # most jobs one lane gives per claim call (per_endpoint window)
NPART = 16          # lane partitions {q0}..{q15}
LEASE_MS = 60000
AHEAD = 4096      # jobs the fanout may run ahead of deliveries (a backlog in the lanes)
LOG_MAXLEN = 1000
CASES = ['1ep', '1000ep', '1000ep_shallow', 'hot90', 'ordered10', 'rate', 'maxinf']
B_ONLY = {'rate', 'maxinf'}


def lua(name):
    with open(os.path.join(HERE, name)) as f:
        return f.read()


def part(ep):
    return zlib.crc32(ep.encode()) % NPART


def targets(case, n):
    """(endpoint, order key or None) per event, deterministic."""
    out = []
    for i in range(n):
        if case.startswith('1000ep'):
            out.append(('ep_%04d' % (i % 1000), None))
        elif case == 'hot90':
            out.append(('ep_hot', None) if i % 10 else ('ep_c%03d' % ((i // 10) % 100), None))
        elif case == 'ordered10':
            out.append(('ep_ord', 'k%d' % (i % 10)))
        else:
            out.append(('ep_0000', None))
    return out


class Run:
    def __init__(self, rs):
        self.r = rs.client
        self.sha = {}
        for name, path in [('fanout', os.path.join(ROOT, 'common', 'lua', 'fanout.lua')),
                           ('lfan', os.path.join(HERE, 'lane_fanout.lua')),
                           ('lclaim', os.path.join(HERE, 'lane_claim.lua')),
                           ('lack', os.path.join(HERE, 'lane_ack.lua')),
                           ('atake', os.path.join(HERE, 'a_ordered_take.lua')),
                           ('adone', os.path.join(HERE, 'a_ordered_done.lua'))]:
            with open(path) as f:
                self.sha[name] = self.r.call('SCRIPT', 'LOAD', f.read())

    def setup(self, case, layout, n):
        r = self.r
        r.call('FLUSHALL')
        tg = targets(case, n)
        eps = sorted({e for e, _ in tg})
        r.call('XGROUP', 'CREATE', P + ':{q}:events', 'fanout', '0', 'MKSTREAM')
        r.call('SET', P + ':{q}:endpoints:version', '1')
        if layout == 'A':
            r.call('XGROUP', 'CREATE', P + ':{q}:jobs', 'deliver', '0', 'MKSTREAM')
        cmds = []
        for e in eps:  # the endpoint's delivery log exists (NOMKSTREAM writes to it)
            cmds.append(['XADD', P + ':{%s}:log' % e, '*', 'init', '1'])
            if layout == 'B' and case in ('rate', 'maxinf'):
                pol = 'r=10000000 b=64' if case == 'rate' else 'm=%d' % BATCH
                cmds.append(['HSET', P + ':{q%d}:policy' % part(e), e, pol])
        if layout == 'B' and case == 'ordered10':
            for k in range(10):
                m = 'ep_ord|k%d' % k
                cmds.append(['HSET', P + ':{q%d}:policy' % part('ep_ord'), m, 'o=1 e=ep_ord'])
        for i, (e, key) in enumerate(tg):
            c = ['XADD', P + ':{q}:events', '*', 'type', 'svc.created', 'data',
                 '{"n":%d,"pad":"%s"}' % (i, 'x' * 64), 'endpoint', e]
            if key:
                c += ['key', key]
            cmds.append(c)
            if len(cmds) >= 1000:
                r.pipeline(cmds)
                cmds = []
        if cmds:
            r.pipeline(cmds)

    # ------------------------------------------------------------------ shared pieces
    def read_events(self):
        rep = self.r.call('XREADGROUP', 'GROUP', 'fanout', 'w1', 'COUNT', BATCH,
                          'STREAMS', P + ':{q}:events', '>')
        if not rep:
            return []
        out = []
        for sid, fields in rep[0][1]:
            d = dict(zip(fields[::2], fields[1::2]))
            out.append((sid, d['endpoint'], d.get('key')))
        return out

    @staticmethod
    def log_cmd(ep, sid):
        return ['XADD', P + ':{%s}:log' % ep, 'NOMKSTREAM', 'MAXLEN', '~', LOG_MAXLEN, '*',
                'event_id', 'evt_' + sid.replace('-', ''), 'event', sid, 'type', 'svc.created',
                'attempt', '1', 'outcome', 'delivered', 'status', '200', 'latency_ms', '1',
                'error', '', 'response', 'ok', 'delivery', 'dlv_' + sid, 'worker', 'w1',
                'next_try', '']

    # ------------------------------------------------------------------ layout A
    def drain_a(self, n, ordered=False):
        r, done = self.r, 0
        jobs_key = P + ':{q}:jobs'
        granted = []  # ordered: (sid, ep, key) allowed to go now
        keyof = {}
        while done < n:
            if not ordered or len(granted) < 10:
                evs = self.read_events()
                if evs:
                    args = ['w1', BATCH, '1', '0', evs[0][0], evs[-1][0], len(evs)]
                    for sid, ep, key in evs:
                        args += [sid, 1, ep]
                        keyof[sid] = key
                    args.append(0)
                    rep = r.call('EVALSHA', self.sha['fanout'], 4, P + ':{q}:events', jobs_key,
                                 P + ':{q}:dead', P + ':{q}:endpoints:version', *args)
                    claimed = []
                    if rep[1]:
                        for jid, f in rep[1][0][1]:
                            d = dict(zip(f[::2], f[1::2]))
                            claimed.append((jid, d['endpoint'], d['event']))
                    if ordered:
                        cmds = [['EVALSHA', self.sha['atake'], 2,
                                 P + ':{%s}:ord:%s' % (ep, keyof[ev]),
                                 P + ':{%s}:park:%s' % (ep, keyof[ev]), jid + ' ' + ev, LEASE_MS]
                                for jid, ep, ev in claimed]
                        for c, ok in zip(claimed, r.pipeline(cmds)):
                            if ok == 1:
                                granted.append(c)
                    else:
                        granted = claimed
            if not granted:
                continue
            cmds = [self.log_cmd(ep, ev) for _, ep, ev in granted]
            for ep in sorted({ep for _, ep, _ in granted}):
                cmds.append(['DEL', P + ':{%s}:failures' % ep])
            if ordered:
                cmds += [['EVALSHA', self.sha['adone'], 2, P + ':{%s}:ord:%s' % (ep, keyof[ev]),
                          P + ':{%s}:park:%s' % (ep, keyof[ev]), LEASE_MS]
                         for _, ep, ev in granted]
            ids = [j for j, _, _ in granted]
            cmds.append(['XACK', jobs_key, 'deliver'] + ids)
            cmds.append(['XDEL', jobs_key] + ids)
            rep = r.pipeline(cmds)
            done += len(granted)
            if ordered:
                nxt = rep[len(granted) + len({ep for _, ep, _ in granted}):][:len(granted)]
                granted = [tuple([x.split(' ')[0], 'ep_ord', x.split(' ')[1]]) for x in nxt if x]
            else:
                granted = []
        return done

    # ------------------------------------------------------------------ layout B
    def fanout_b(self, evs):
        byp = {}
        for sid, ep, key in evs:
            m = ep + '|' + key if key else ep
            byp.setdefault(part(ep), {}).setdefault(m, []).append(sid)
        cmds = []
        for p, lanes in sorted(byp.items()):
            args = [P + ':{q%d}:lane:' % p, len(lanes)]
            for m, ids in lanes.items():
                args += [m, 1 if '|' in m else 0, len(ids)] + ids
            cmds.append(['EVALSHA', self.sha['lfan'], 3, P + ':{q%d}:ready' % p,
                         P + ':{q%d}:fanned' % p, P + ':{q%d}:state' % p] + args)
        cmds.append(['XACK', P + ':{q}:events', 'fanout'] + [e[0] for e in evs])
        # hint for the other workers: these partitions have work (one command a batch)
        cmds.append(['SADD', P + ':{q}:active'] + [str(p) for p in byp])
        for x in self.r.pipeline(cmds):
            if isinstance(x, h.RedisError):
                raise x
        return set(byp)

    def claim_b(self, p, quota):
        return self.r.call('EVALSHA', self.sha['lclaim'], 4, P + ':{q%d}:ready' % p,
                           P + ':{q%d}:leases' % p, P + ':{q%d}:policy' % p,
                           P + ':{q%d}:state' % p, P + ':{q%d}:lane:' % p, quota, K, LEASE_MS)

    def drain_b(self, n, case):
        r, done = self.r, 0
        active = []       # partitions this worker knows to have work, round-robin
        events_left = True
        fanned = 0
        ahead = 64 if case.endswith('_shallow') else AHEAD
        flags = {'maxinf': 'm', 'ordered10': 'o'}.get(case, '-')
        while done < n:
            while events_left and fanned - done < ahead:
                evs = self.read_events()
                if evs:
                    fanned += len(evs)
                    for p in sorted(self.fanout_b(evs)):
                        if p not in active:
                            active.append(p)
                else:
                    events_left = False
            got = []  # (p, member, job)
            tried = 0
            while len(got) < BATCH and active and tried < len(active):
                p = active[0]
                rep = self.claim_b(p, BATCH - len(got))
                i = 0
                while i < len(rep) - 1:
                    m, c = rep[i], int(rep[i + 1])
                    got += [(p, m, j) for j in rep[i + 2:i + 2 + c]]
                    i += 2 + c
                nxt = float(rep[-1])
                active.pop(0)
                if nxt >= 0:
                    active.append(p)  # more there (now or later): back of the round
                tried += 1
            if not got:
                if not events_left and not active:
                    raise RuntimeError('lanes drained early: %d of %d' % (done, n))
                continue
            cmds = []
            eps = set()
            groups = {}
            for p, m, j in got:
                ep = m.split('|')[0]
                eps.add(ep)
                cmds.append(self.log_cmd(ep, j))
                groups.setdefault(p, {}).setdefault(m, []).append(m + ' ' + j)
            for ep in sorted(eps):
                cmds.append(['DEL', P + ':{%s}:failures' % ep])
            for p, ms in sorted(groups.items()):
                args = [P + ':{q%d}:lane:' % p, len(ms)]
                for m, ls in ms.items():
                    args += [m, flags, m.split('|')[0], len(ls)] + ls
                cmds.append(['EVALSHA', self.sha['lack'], 4, P + ':{q%d}:ready' % p,
                             P + ':{q%d}:leases' % p, P + ':{q%d}:state' % p,
                             P + ':{q%d}:policy' % p] + args)
            for x in r.pipeline(cmds):
                if isinstance(x, h.RedisError):
                    raise x
            done += len(got)
            if case == 'ordered10':  # an ack makes an ordered lane ready again
                for p in groups:
                    if p not in active:
                        active.append(p)
        return done

    # ------------------------------------------------------------------ measuring
    def cpu(self):
        info = self.r.call('INFO', 'cpu')
        d = dict(l.split(':', 1) for l in info.split('\r\n') if ':' in l)
        return float(d['used_cpu_sys']) + float(d['used_cpu_user'])

    def cmdstats(self):
        info = self.r.call('INFO', 'commandstats')
        out = {}
        for l in info.split('\r\n'):
            if l.startswith('cmdstat_'):
                name, rest = l[8:].split(':', 1)
                calls = int(rest.split(',')[0].split('=')[1])
                if name not in ('info', 'config'):
                    out[name] = calls
        return out

    def measure(self, case, layout, n):
        self.setup(case, layout, n)
        self.r.call('CONFIG', 'RESETSTAT')
        c0, t0 = self.cpu(), time.monotonic()
        if layout == 'A':
            done = self.drain_a(n, ordered=(case == 'ordered10'))
        else:
            done = self.drain_b(n, case)
        wall = time.monotonic() - t0
        c1 = self.cpu()
        st = self.cmdstats()
        if done != n:
            raise RuntimeError('%s %s: %d deliveries, expected %d' % (case, layout, done, n))
        self.check(layout)
        return {'cpu_us': (c1 - c0) * 1e6 / n, 'cmds': sum(st.values()) / n,
                'per_cmd': {k: v / n for k, v in st.items()}, 'rate': n / wall}

    def check(self, layout):
        """Nothing left behind: every job delivered once, every lease released."""
        r = self.r
        if layout == 'A':
            assert r.call('XLEN', P + ':{q}:jobs') == 0, 'jobs left in the stream'
        else:
            for p in range(NPART):
                assert r.call('ZCARD', P + ':{q%d}:leases' % p) == 0, 'leases left'
                # a lane emptied by its last claim stays ready until the next claim finds
                # it empty (lazy: saves an LLEN per lane per claim); no job may be left
                for m in r.call('ZRANGE', P + ':{q%d}:ready' % p, 0, -1):
                    assert r.call('LLEN', P + ':{q%d}:lane:%s' % (p, m)) == 0, 'jobs left'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='4,000 deliveries a case (default 30,000)')
    ap.add_argument('--n', type=int, help='deliveries per case')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--only', help='comma-separated cases: ' + ','.join(CASES))
    a = ap.parse_args()
    n = a.n or (4000 if a.quick else 30000)
    cases = a.only.split(',') if a.only else CASES
    deadline = time.monotonic() + (120 if a.quick else 600)
    res = {}
    with h.RedisServer(args=['--maxmemory', '2gb']) as rs:
        run = Run(rs)
        ver = rs.call('INFO', 'server').split('redis_version:')[1].split('\r\n')[0]
        print('lanes spike: redis %s, %d deliveries a case, %d reps, batch %d, k %d, %d '
              'partitions; load avg %s' % (ver, n, a.reps, BATCH, K, NPART,
                                           ' '.join(open('/proc/loadavg').read().split()[:3])))
        for rep in range(a.reps):
            for case in cases:
                order = ['A', 'B'] if rep % 2 == 0 else ['B', 'A']
                for layout in order:
                    if layout == 'A' and case in B_ONLY:
                        continue
                    if time.monotonic() > deadline:
                        sys.exit('spike: over its time bound, stopped')
                    m = run.measure(case, layout, n)
                    res.setdefault((case, layout), []).append(m)
                    sys.stderr.write('  rep %d %-9s %s  %.2f cmds  %.2f us  %.0f/s\n' % (
                        rep + 1, case, layout, m['cmds'], m['cpu_us'], m['rate']))
    med = {k: {'cmds': statistics.median(x['cmds'] for x in v),
               'cpu_us': statistics.median(x['cpu_us'] for x in v), 'last': v[-1]}
           for k, v in res.items()}
    print()
    print('| case | A cmds/delivery | A Redis CPU us/delivery | B cmds/delivery | '
          'B Redis CPU us/delivery | B/A CPU |')
    print('|---|---|---|---|---|---|')
    base = med.get(('1ep', 'B'))  # B-only cases: the policy's cost over plain lanes
    for case in cases:
        a_, b_ = med.get((case, 'A')), med.get((case, 'B'))
        ref = a_ or base
        print('| %s | %s | %s | %.2f | %.2f | %s |' % (
            case, '%.2f' % a_['cmds'] if a_ else '-', '%.2f' % a_['cpu_us'] if a_ else '-',
            b_['cmds'], b_['cpu_us'],
            ('%.2f' % (b_['cpu_us'] / ref['cpu_us'])) + ('' if a_ else ' (vs B 1ep)')
            if ref else '-'))
    print('\ncommands per delivery by name (last repetition):')
    for (case, layout), v in sorted(med.items()):
        top = sorted(v['last']['per_cmd'].items(), key=lambda kv: -kv[1])
        print('  %-9s %s  %s' % (case, layout, ', '.join('%s %.3f' % kv for kv in top
                                                          if kv[1] >= 0.005)))


if __name__ == '__main__':
    main()
