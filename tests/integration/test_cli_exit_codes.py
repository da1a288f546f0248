"""Exit codes agree between hookq and hookq-worker: a bad configuration is a usage error.

README and docs/worker.md: 0 ok, 1 runtime error, 2 usage error. hookq-worker exits 2 for
a bad argument or a bad configuration (file key, value, or HOOKQ_* variable); the CLI must
do the same for every subcommand (`config check FILE` included), whichever way the bad
configuration reaches it (-c FILE, $HOOKQ_CONFIG, `config check FILE`, a HOOKQ_* variable),
and keep 1 for runtime errors such as an unreachable Redis. A script that runs
`hookq config check` before starting workers must see the same status the worker would.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

UNREACHABLE = {'HOOKQ_REDIS_URL': 'redis://127.0.0.1:1/0'}

# (file text, words stderr must contain: the key and the file line)
BAD_FILES = [
    ('redis:\n  prefix: hookq\n  urll: redis://127.0.0.1:1/0\n', ['redis.urll', ':3']),
    ('delivery:\n  concurrency: many\n', ['delivery.concurrency', ':2']),
    ('retry:\n  schedule: [30s, 3x]\n', ['retry.schedule', ':2']),
]

# Subcommands that would otherwise run (they are well-formed); the config is checked first.
SUBCOMMANDS = [
    ['stats'],
    ['endpoint', 'list'],
    ['endpoint', 'show', 'ep_x'],
    ['endpoint', 'add', '--url', 'http://127.0.0.1:9/x'],
    ['send', 'a.b', '{}'],
    ['deliveries', 'ep_x'],
    ['dead', 'list'],
    ['retry', 'evt_x'],
    ['test', 'ep_x', '--wait', '100ms'],
    ['config', 'check'],
]


def run_worker(*args):
    """hookq-worker ARGS, which must exit on its own (a bad argument or config)."""
    return subprocess.run([os.path.join(h.BIN, 'hookq-worker')] + list(args),
                          env=h._env(None, None), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=20 * h.SLOW, cwd=tempfile.gettempdir())


class ExitCodes(h.TestCase):

    def write(self, text):
        f = tempfile.NamedTemporaryFile('w', prefix='hookq-bad-', suffix='.yaml', delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def assertConfigError(self, r, words, what):
        self.assertEqual(r.returncode, 2, '%s: exit %d, stderr %r' % (what, r.returncode, r.stderr))
        for w in words:
            self.assertIn(w, r.stderr, what)
        self.assertEqual(r.stdout, '', what)

    def test_config_check_bad_file_exits_2_naming_key_and_line(self):
        for text, words in BAD_FILES:
            path = self.write(text)
            r = h.hookq(None, 'config', 'check', path)
            self.assertConfigError(r, words + [os.path.basename(path)], 'config check %r' % text)
            self.assertTrue(r.stderr.startswith('hookq: '), r.stderr)
            r = h.hookq(None, '--json', 'config', 'check', path)
            self.assertConfigError(r, words, '--json config check %r' % text)

    def test_worker_bad_file_exits_2(self):
        # the reference the CLI must agree with (passes today)
        for text, words in BAD_FILES:
            path = self.write(text)
            r = run_worker('-c', path)
            self.assertConfigError(r, words, 'hookq-worker -c %r' % text)

    def test_every_subcommand_with_bad_config_exits_2(self):
        for text, words in BAD_FILES[:2]:
            path = self.write(text)
            for args in SUBCOMMANDS:
                r = h.hookq(None, '-c', path, *args, env=UNREACHABLE)
                self.assertConfigError(r, words, 'hookq -c BAD %s' % ' '.join(args))
                env = dict(UNREACHABLE, HOOKQ_CONFIG=path)
                r = h.hookq(None, *args, env=env)
                self.assertConfigError(r, words, 'HOOKQ_CONFIG=BAD hookq %s' % ' '.join(args))

    def test_bad_environment_variable_exits_2(self):
        cases = [({'HOOKQ_DELIVERY_BATCH': 'x'}, ['HOOKQ_DELIVERY_BATCH', 'delivery.batch']),
                 ({'HOOKQ_DELIVERY_BACTH': '5'}, ['HOOKQ_DELIVERY_BACTH']),
                 ({'HOOKQ_RETRY_SCHEDULE': '30s 3x'}, ['HOOKQ_RETRY_SCHEDULE'])]
        for extra, words in cases:
            for args in (['config', 'check'], ['stats'], ['send', 'a.b', '{}']):
                r = h.hookq(None, *args, env=dict(UNREACHABLE, **extra))
                self.assertConfigError(r, words, '%s hookq %s' % (extra, ' '.join(args)))

    def test_missing_config_file_exits_2(self):
        # hookq-worker -c /missing exits 2 today; the CLI must agree
        missing = '/nonexistent/hookq-missing.yaml'
        for args in (['config', 'check', missing], ['-c', missing, 'stats'],
                     ['-c', missing, 'config', 'check']):
            r = h.hookq(None, *args, env=UNREACHABLE)
            self.assertConfigError(r, [missing], 'hookq %s' % ' '.join(args))

    def test_bad_arguments_exit_2_with_usage(self):
        for args in (['--bogus'], ['nosuchcommand'], ['stats', '--bogus'], ['send'],
                     ['config', 'check', 'a.yaml', 'b.yaml'], ['endpoint', 'frobnicate']):
            r = h.hookq(None, *args, env=UNREACHABLE)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn('usage:', r.stderr, args)
            self.assertEqual(r.stdout, '', args)
        r = run_worker('--bogus')
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('usage:', r.stderr)

    def test_runtime_errors_stay_1(self):
        # a good config and an unreachable Redis: a runtime error, not a usage error
        path = self.write('redis:\n  url: redis://127.0.0.1:1/0\n')
        for args in (['stats'], ['send', 'a.b', '{}'], ['endpoint', 'list']):
            for how in (['-c', path], []):
                env = {} if how else UNREACHABLE
                r = h.hookq(None, *(how + args), env=env)
                self.assertEqual(r.returncode, 1, (how, args, r.stderr))
                self.assertIn('cannot connect to Redis', r.stderr)
        r = h.hookq(None, 'config', 'check', path)
        self.assertEqual(r.returncode, 0, r.stderr)  # a valid file: no Redis needed


if __name__ == '__main__':
    h.main()
