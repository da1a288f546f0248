"""A TCP proxy between a worker and redis-server that freezes Redis at a chosen command.

SIGSTOP on redis-server at a random moment rarely catches the worker with a read in
flight (its first command to time out is usually a results write or a promote), so a
test of "what happens to jobs Redis handed out in a reply the worker never got" would
pass or fail by luck. The proxy watches the worker's command bytes; once armed, the first
chunk that contains the trigger (e.g. an XREADGROUP on the deliver group) is held back,
redis-server is SIGSTOPped, and only then is the chunk passed on: it waits in Redis's
socket buffer, and Redis runs it when it is continued, exactly as after a real freeze.
The reply to that chunk is never passed back (the worker has timed out by then).

Listens on 127.0.0.1 only. Not a test file: helpers for test_worker_lease.py.
"""
import signal
import socket
import threading
import time

# RESP for "XREADGROUP GROUP deliver": a jobs read (the read pipeline's, not fanout.lua's)
XREADGROUP_DELIVER = b'$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$7\r\ndeliver\r\n'


class FreezeProxy:
    def __init__(self, rs, trigger=XREADGROUP_DELIVER):
        self.rs = rs
        self.trigger = trigger
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(('127.0.0.1', 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.armed = False
        self.frozen_at = None       # time.monotonic() of the SIGSTOP
        self.fired = threading.Event()
        self.closing = False
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self):
        return 'redis://127.0.0.1:%d/0' % self.port

    def arm(self):
        with self.lock:
            self.armed = True

    def cont(self):
        """SIGCONT redis-server (idempotent); returns the time it was continued."""
        self.rs.proc.send_signal(signal.SIGCONT)
        return time.monotonic()

    def _accept(self):
        while not self.closing:
            try:
                down, _ = self.lsock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(('127.0.0.1', self.rs.port), timeout=30)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            conn = {'mute': False}
            with self.lock:
                self.socks += [down, up]
            threading.Thread(target=self._pump_up, args=(down, up, conn), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(up, down, conn), daemon=True).start()

    def _pump_up(self, src, dst, conn):
        tail = b''
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b''
            if not data:
                break
            window = tail + data
            tail = window[-len(self.trigger):]
            fire = False
            with self.lock:
                if self.armed and self.trigger in window:
                    self.armed = False
                    fire = True
            if fire:
                # freeze first, then pass the command on: Redis runs it when continued
                self.rs.proc.send_signal(signal.SIGSTOP)
                self.frozen_at = time.monotonic()
                conn['mute'] = True
                self.fired.set()
            try:
                dst.sendall(data)
            except OSError:
                break
        # the worker gave up on this connection; let Redis read what it was sent, then EOF
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _pump_down(self, src, dst, conn):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b''
            if not data:
                break
            if conn['mute']:
                continue  # replies to the frozen chunk never reach the worker
            try:
                dst.sendall(data)
            except OSError:
                pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.closing = True
        try:
            self.cont()
        except (OSError, AttributeError):
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def worker_env_url(env, proxy):
    """env for h.Worker with the Redis URL pointed at the proxy (h.Worker sets rs.url)."""
    e = dict(env)
    e['HOOKQ_REDIS_URL'] = proxy.url
    return e
