"""Hostile receivers, through the real worker.

A receiver may drip its answer one byte per second, accept and never answer, send a
100 MB body, or send endless or enormous headers. Each attempt must end within
delivery.timeout (2 s here), be logged as a failed attempt, and the worker's resident
memory must stay bounded while dozens of such attempts run at once. The worker's HTTP
engine has its own unit test for these; this one checks the whole path: the attempt is
recorded, retried, dead-lettered, the hostile connections are closed, and a well-behaved
endpoint is still served meanwhile.
"""
import os
import re
import socket
import threading
import time

import harness as h
from test_security_ssrf import add_endpoint, dead_for, log_of, publish

TIMEOUT_MS = 2000
# Slack over delivery.timeout for the latency each attempt records: the worker's loop
# only notices the deadline on its next turn, on a busy 2-core machine.
LATENCY_SLACK_MS = 1500
RSS_LIMIT_KIB = 64 * 1024
EVENTS_PER_KIND = 5
ATTEMPTS = 2  # retry.schedule "500ms"
BIG = 100 * 1024 * 1024


def read_request(c):
    """Read one HTTP request (headers and Content-Length body); False if the peer left."""
    buf = b''
    while b'\r\n\r\n' not in buf:
        chunk = c.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, body = buf.split(b'\r\n\r\n', 1)
    m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
    need = int(m.group(1)) if m else 0
    while len(body) < need:
        chunk = c.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


class Hostile:
    """A raw TCP server on 127.0.0.1 misbehaving in one way (mode). Counts connections and
    how many are still open (a connection is over when the worker closes it)."""

    MAX_HOLD = 60.0  # never keep a thread longer than this, whatever the worker does

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepts = 0
        self.open = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def url(self):
        return 'http://127.0.0.1:%d/%s' % (self.port, self.mode)

    def _loop(self):
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepts += 1
                self.open += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        deadline = time.monotonic() + self.MAX_HOLD
        try:
            c.settimeout(5)
            if not read_request(c):
                return
            getattr(self, '_' + self.mode)(c, deadline)
        except OSError:
            pass  # the worker hung up: that is what we want
        finally:
            c.close()
            with self.lock:
                self.open -= 1

    def _alive(self, deadline):
        return not self.stopped.is_set() and time.monotonic() < deadline

    def _drip(self, c, deadline):
        # One byte per second of a valid answer that would take minutes to complete.
        for b in b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + b'x' * 1000:
            if not self._alive(deadline):
                return
            c.sendall(bytes([b]))
            time.sleep(1)

    def _silent(self, c, deadline):
        # Accept, read the request, never answer; notice when the worker closes.
        c.settimeout(0.5)
        while self._alive(deadline):
            try:
                if not c.recv(4096):
                    return
            except socket.timeout:
                continue

    def _bigbody(self, c, deadline):
        c.sendall(b'HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n' % BIG)
        block = b'z' * 65536
        sent = 0
        while sent < BIG and self._alive(deadline):
            c.sendall(block)
            sent += len(block)

    def _manyheaders(self, c, deadline):
        # Headers that never end: 1 KB lines, as fast as the worker reads them.
        c.sendall(b'HTTP/1.1 200 OK\r\n')
        line = b'X-Junk: ' + b'a' * 1000 + b'\r\n'
        block = line * 64
        sent = 0
        while sent < BIG and self._alive(deadline):
            c.sendall(block)
            sent += len(block)

    def _longheader(self, c, deadline):
        # One header line that never ends.
        c.sendall(b'HTTP/1.1 200 OK\r\nX-Long: ')
        block = b'b' * 65536
        sent = 0
        while sent < BIG and self._alive(deadline):
            c.sendall(block)
            sent += len(block)

    def counts(self):
        with self.lock:
            return self.accepts, self.open

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples a process's VmRSS every 50 ms; .peak is the largest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped.is_set():
            v = rss_kib(self.pid)
            self.peak = max(self.peak, v)
            self.samples += 1
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(2)


MODES = ('drip', 'silent', 'bigbody', 'manyheaders', 'longheader')


class HostileReceiversTest(h.TestCase):

    def test_hostile_receivers_end_in_time_and_memory_stays_bounded(self):
        env = {'HOOKQ_DELIVERY_TIMEOUT': '2s', 'HOOKQ_DELIVERY_CONNECT_TIMEOUT': '1s',
               'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT': '20s', 'HOOKQ_RETRY_SCHEDULE': '500ms',
               'HOOKQ_RETRY_JITTER': '0', 'HOOKQ_ENDPOINTS_DISABLE_AFTER': '0',
               'HOOKQ_BREAKER_ENABLED': 'false'}  # counts every attempt
        servers = [Hostile(m) for m in MODES]
        with h.RedisServer() as rs, h.Receiver() as good:
            for s in servers:
                s.__enter__()
            try:
                eps = {s.mode: add_endpoint(rs, s.url())[0] for s in servers}
                good_ep, good_secret = add_endpoint(rs, good.url('/good'))
                with h.Worker(rs, env=env) as w:
                    # Let it start, then watch its memory for the whole storm.
                    self.assertEventually(lambda: rss_kib(w.proc.pid) > 0 or not w.alive(), 5)
                    with RssSampler(w.proc.pid) as rss:
                        baseline = rss_kib(w.proc.pid)
                        for eid in eps.values():
                            publish(rs, eid, n=EVENTS_PER_KIND, etype='hostile.probe')
                        good_ids = publish(rs, good_ep, n=EVENTS_PER_KIND, etype='hostile.probe')
                        self.assertEventually(
                            lambda: all(len(dead_for(rs, e)) >= EVENTS_PER_KIND
                                        for e in eps.values()) or not w.alive(),
                            90, 'hostile deliveries did not all end in the dead-letter stream')
                    self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])

                    # Every attempt failed, within its timeout.
                    for mode, eid in eps.items():
                        with self.subTest(mode=mode):
                            log = log_of(rs, eid)
                            self.assertEqual(len(log), EVENTS_PER_KIND * ATTEMPTS, log)
                            for f in log:
                                self.assertIn(f.get('outcome'), ('retry', 'dead'), f)
                                self.assertNotEqual(f.get('error', ''), '', f)
                                self.assertLessEqual(int(f.get('latency_ms', '0')),
                                                     TIMEOUT_MS + LATENCY_SLACK_MS, f)
                            self.assertEqual(len(dead_for(rs, eid)), EVENTS_PER_KIND)
                            if mode == 'bigbody':
                                # The status line arrived; only the body was too much.
                                self.assertTrue(all(f.get('status') == '500' for f in log), log)
                                self.assertTrue(all(len(f.get('response', '')) <= 1024
                                                    for f in log), log)

                    # Attempts made: at least one connection per attempt, and the worker
                    # hung up on every one of them.
                    total = 0
                    for s in servers:
                        self.assertGreaterEqual(s.counts()[0], EVENTS_PER_KIND * ATTEMPTS, s.mode)
                        total += s.counts()[0]
                    self.assertGreaterEqual(total, 20)
                    self.assertEventually(lambda: all(s.counts()[1] == 0 for s in servers), 10,
                                          'connections left open: %r' % [
                                              (s.mode, s.counts()) for s in servers])

                    # The well-behaved endpoint was served meanwhile, correctly signed.
                    self.assertTrue(good.wait_for(EVENTS_PER_KIND, 10, path='/good'))
                    got = sorted(r.headers.get('webhook-id') for r in good.for_path('/good'))
                    self.assertEqual(got, sorted(good_ids))
                    self.assertTrue(all(h.sw_verify(good_secret, r.headers, r.body)
                                        for r in good.for_path('/good')))

                    self.assertGreater(rss.samples, 10)
                    self.assertLess(rss.peak, RSS_LIMIT_KIB,
                                    'worker RSS peaked at %d KiB (baseline %d KiB)'
                                    % (rss.peak, baseline))
            finally:
                for s in servers:
                    s.__exit__(None, None, None)


if __name__ == '__main__':
    h.main()
