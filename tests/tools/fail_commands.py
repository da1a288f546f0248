#!/usr/bin/env python3
"""Redis commands per failed delivery attempt, as INFO commandstats counts them (commands
run inside scripts included, and each EVALSHA itself).

    cd build && HOOKQ_BIN=$PWD/bin HOOKQ_SRC=.. python3 ../tests/tools/fail_commands.py \
        [--events 2000] [--endpoints 1] [--attempts 10]

Starts its own redis-server and hq-receiver (--status 500) on 127.0.0.1, registers the
endpoints, publishes the events (round-robin, one endpoint each), then runs one
hookq-worker with a short retry schedule and endpoints.disable_after 0 until every job is
dead-lettered after --attempts attempts. Prints the commands Redis ran during the
worker's run (INFO excluded), the attempts the receiver counted, and the ratio, with a
per-command breakdown. Everything a failed attempt costs is in the figure: the read,
promote.lua moving the retry back, the delivery log line, the failure counter, the
settle; fanout of the first attempt too (2000 XADDs for 20,000 attempts).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def commandstats(rs):
    calls = {}
    for line in rs.call('INFO', 'commandstats').splitlines():
        m = re.match(r'cmdstat_([^:]+):calls=(\d+)', line)
        if m:
            calls[m.group(1)] = int(m.group(2))
    return calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--events', type=int, default=2000)
    ap.add_argument('--endpoints', type=int, default=1)
    ap.add_argument('--attempts', type=int, default=10)
    ap.add_argument('--timeout', type=float, default=300)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='hookq-failcmds-')
    count_file = os.path.join(tmp, 'count')
    with h.RedisServer() as rs:
        rcv = subprocess.Popen([os.path.join(h.BIN, 'hq-receiver'), '--port', '0', '--status',
                                '500', '--quiet', '--count-file', count_file],
                               stdout=subprocess.PIPE, text=True)
        try:
            port = int(rcv.stdout.readline().strip().rsplit(':', 1)[1])
            eps = [u.add_endpoint(rs, 'http://127.0.0.1:%d/e%d' % (port, i))[0]
                   for i in range(a.endpoints)]
            cmds = [('XADD', u.EVENTS, '*', 'type', 'x', 'data', '{"i":%d}' % i, 'endpoint',
                     eps[i % len(eps)]) for i in range(a.events)]
            for k in range(0, len(cmds), 1000):
                rs.pipeline(cmds[k:k + 1000])
            env = u.env(retry_schedule=' '.join(['50ms'] * (a.attempts - 1)),
                        endpoints_disable_after=0, log_level='info',
                        delivery_log_maxlen=1000000)
            rs.call('CONFIG', 'RESETSTAT')
            c0 = commandstats(rs)
            t0 = time.monotonic()
            with h.Worker(rs, env=env) as w:
                ok = h.wait_until(lambda: rs.call('XLEN', u.DEAD) >= a.events, a.timeout, 0.2)
                dt = time.monotonic() - t0
                if not ok:
                    print('timed out; worker log:\n' + w.log()[-3000:], file=sys.stderr)
                    return 1
                w.stop()
            c1 = commandstats(rs)
        finally:
            rcv.terminate()
            rcv.wait(10)
        with open(count_file) as f:
            attempts = int(f.read())
    # INFO, CONFIG RESETSTAT and the XLEN polls are this script's own
    diff = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1 if k not in ('info', 'config|resetstat', 'xlen')}
    diff = {k: v for k, v in diff.items() if v > 0}
    total = sum(diff.values())
    print('events %d, endpoints %d, attempts %d (receiver), %.1f s' % (
        a.events, a.endpoints, attempts, dt))
    print('redis commands %d, per failed attempt %.2f' % (total, total / attempts))
    for k, v in sorted(diff.items(), key=lambda kv: -kv[1]):
        print('  %-20s %8d  %6.3f' % (k, v, v / attempts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
