"""The credsync control API end to end with Debian's python3-grpcio: stubs
generated from proto/ alone, the real credsync binary against the emulator,
over the Unix socket (and TCP with the pod token).

Run through tests/e2e/python/run.sh (ctest: e2e_python_control_api), which
sets CREDSYNC_BIN and CREDSYNC_EMULATOR.
"""

import os
import queue
import shutil
import stat
import threading
import unittest

import grpc

import harness

STUBS = harness.generate_stubs()
pb = STUBS.credsync_pb2
SECRET = 'acs/ram/user/py-app'


def read_in_background(call):
    """Reads a Watch stream on a thread: (a queue of its messages, and the
    RpcError that ends it; the thread)."""
    messages = queue.Queue()

    def read():
        try:
            for message in call:
                messages.put(message)
        except grpc.RpcError as err:
            messages.put(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return messages, reader


class SidecarTestCase(unittest.TestCase):
    """Stops what setUpClass started (the channel, credsync, the emulator,
    the world's directory), also after a failed setUpClass."""

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'channel', None):
            cls.channel.close()
        code = cls.sc.stop() if getattr(cls, 'sc', None) else 0
        cls.emu.stop()
        if getattr(cls, 'world', None):
            shutil.rmtree(cls.world.dir, ignore_errors=True)
        # SIGTERM must stop credsync cleanly (and, in the sanitizer tree,
        # without a report).
        if code != 0:
            raise AssertionError(f'credsync exited {code} on SIGTERM:\n{cls.sc.stderr()}')


class ControlApiTest(SidecarTestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = harness.Emulator.start()
        try:
            cls.world = cls.emu.rrsa_world('pyctl', [SECRET])
            cls.out = os.path.join(cls.world.dir, 'out')
            config = harness.write_config(cls.world.dir, {
                'kms': {'endpoints': [cls.emu.endpoint]},
                'tls': {'ca_file': cls.emu.ca_file},
                'profiles': [{'name': 'default', 'secret_name': SECRET}],
                'output': {'directory': cls.out},
                # No scheduled fetch during the test: every GetSecretValue
                # the emulator counts was caused by a Refresh.
                'refresh': {'interval': '1h', 'jitter': 0, 'rotation_jitter': '0s',
                            'on_demand_burst': 100},
                'control': {'tcp_address': '127.0.0.1:0', 'http_address': '127.0.0.1:0'},
                'log': {'level': 'debug'},
            })
            cls.sc = harness.Sidecar.start(config, cls.world.env, name='pyctl')
            cls.socket = cls.sc.listening('unix')
            cls.tcp = cls.sc.listening('tcp')
            cls.sc.wait_for_log(lambda l: l.get('msg') == 'written', 'a "written" log line')
            cls.channel = grpc.insecure_channel(f'unix:{cls.socket}')
            cls.stub = STUBS.credsync_pb2_grpc.CredsyncServiceStub(cls.channel)
            cls.health = STUBS.health_pb2_grpc.HealthStub(cls.channel)
        except BaseException:
            cls.tearDownClass()
            raise


    def current_key(self):
        """The profile's key id as credsync reports it."""
        status = self.stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        return status.profiles[0].access_key_id

    def file_content(self):
        with open(os.path.join(self.out, 'credentials.ini')) as f:
            return f.read()

    # Verifies GetStatus names the profile, written, with the secret's key
    # id, and reports readiness.
    def test_get_status(self):
        status = self.stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        self.assertEqual(len(status.profiles), 1)
        profile = status.profiles[0]
        self.assertEqual(profile.name, 'default')
        self.assertEqual(profile.secret_name, SECRET)
        self.assertTrue(profile.written)
        self.assertTrue(profile.access_key_id.startswith('LTAI'), profile)
        self.assertIn(f'access_key_id = {profile.access_key_id}\n', self.file_content())
        self.assertGreaterEqual(profile.generation, 1)
        self.assertTrue(status.ready)
        self.assertEqual(status.identity.type, 'oidc')
        self.assertTrue(status.identity.HasField('session_expire_time'))
        self.assertNotEqual(status.version, '')

    # Verifies a Refresh naming a key the profile no longer holds is answered
    # from memory: ALREADY_CURRENT with the current key, and no GetSecretValue
    # reaches the emulator.
    def test_refresh_old_key_is_answered_without_upstream_call(self):
        current = self.current_key()
        self.emu.reset_counters()
        answer = self.stub.Refresh(pb.RefreshRequest(profile='default', failed_access_key_id='LTAIold',
                                                     reason='test'), timeout=10)
        self.assertEqual(answer.outcome, pb.RefreshResponse.OUTCOME_ALREADY_CURRENT)
        self.assertEqual(answer.access_key_id, current)
        self.assertFalse(answer.coalesced)
        self.assertEqual(self.emu.requests('GetSecretValue'), 0)

    # Verifies 200 concurrent Refresh calls naming the current key, after an
    # admin rotated the secret, cause exactly one GetSecretValue; every call
    # answers OK with the new key; exactly one caused the fetch, the others
    # joined it (or, arriving after it, were answered from memory). The
    # emulator delays GetSecretValue by 1 s so that the calls overlap.
    def test_concurrent_refresh_is_one_upstream_call(self):
        old = self.current_key()
        rotated = self.emu.rotate(SECRET)
        self.emu.reset_counters()
        self.emu.admin('POST', '/admin/faults', {'action': 'GetSecretValue', 'kind': 'latency',
                                                 'latency_ms': 1000, 'count': 1})
        try:
            callers = 200
            barrier = threading.Barrier(callers)
            results = [None] * callers

            def call(i):
                barrier.wait()
                try:
                    results[i] = self.stub.Refresh(
                        pb.RefreshRequest(profile='default', failed_access_key_id=old,
                                          reason=f'caller {i}'), timeout=30)
                except grpc.RpcError as err:
                    results[i] = err

            threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        finally:
            self.emu.admin('DELETE', '/admin/faults')
        errors = [r for r in results if not isinstance(r, pb.RefreshResponse)]
        self.assertEqual(errors, [])
        self.assertEqual({r.access_key_id for r in results}, {rotated['access_key_id']})
        causing = [r for r in results
                   if r.outcome == pb.RefreshResponse.OUTCOME_REFRESHED and not r.coalesced]
        joined = [r for r in results
                  if r.outcome == pb.RefreshResponse.OUTCOME_REFRESHED and r.coalesced]
        current = [r for r in results if r.outcome == pb.RefreshResponse.OUTCOME_ALREADY_CURRENT]
        self.assertEqual(len(causing), 1, 'calls that fetched and did not join another')
        self.assertEqual(len(causing) + len(joined) + len(current), callers)
        self.assertGreater(len(joined), 0, 'no call joined the in-flight fetch')
        self.assertEqual(len({r.generation for r in results}), 1)
        self.assertEqual(self.emu.requests('GetSecretValue'), 1)
        self.assertIn(f'access_key_id = {rotated["access_key_id"]}\n', self.file_content())

    # Verifies Watch first reports the current key (initial), then the change
    # a rotation plus a Refresh makes, with the previous key and a higher
    # generation.
    def test_watch_reports_initial_state_then_change(self):
        call = self.stub.Watch(pb.WatchRequest(profile='default'), timeout=60)
        messages, reader = read_in_background(call)
        try:
            initial = messages.get(timeout=10)
            self.assertIsInstance(initial, pb.WatchResponse)
            self.assertTrue(initial.initial)
            self.assertEqual(initial.profile, 'default')
            old = self.current_key()
            self.assertEqual(initial.access_key_id, old)

            rotated = self.emu.rotate(SECRET)
            answer = self.stub.Refresh(pb.RefreshRequest(profile='default', failed_access_key_id=old),
                                       timeout=30)
            self.assertEqual(answer.access_key_id, rotated['access_key_id'])

            change = messages.get(timeout=10)
            self.assertIsInstance(change, pb.WatchResponse)
            self.assertFalse(change.initial)
            self.assertEqual(change.profile, 'default')
            self.assertEqual(change.access_key_id, rotated['access_key_id'])
            self.assertEqual(change.previous_access_key_id, old)
            self.assertGreater(change.generation, initial.generation)
            self.assertEqual(change.generation, answer.generation)
        finally:
            call.cancel()
            reader.join(10)

    # Verifies grpc.health.v1: the overall service ("") and "liveness" are
    # SERVING once the profile is written.
    def test_health(self):
        serving = STUBS.health_pb2.HealthCheckResponse.SERVING
        for service in ('', 'liveness'):
            answer = self.health.Check(STUBS.health_pb2.HealthCheckRequest(service=service), timeout=10)
            self.assertEqual(answer.status, serving, service)

    # Verifies an unknown profile is NOT_FOUND and an empty one INVALID_ARGUMENT.
    def test_bad_profiles(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Refresh(pb.RefreshRequest(profile='nosuch', failed_access_key_id='LTAIx'), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn('nosuch', caught.exception.details())
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Refresh(pb.RefreshRequest(profile='', failed_access_key_id='LTAIx'), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    # Verifies the TCP listener refuses calls without the pod token or with
    # a wrong one (UNAUTHENTICATED) and answers with the token credsync
    # generated into <output>/control-token.
    def test_tcp_requires_token(self):
        token_file = os.path.join(self.out, 'control-token')
        with open(token_file) as f:
            token = f.read().strip()
        self.assertGreaterEqual(len(token), 16)
        self.assertEqual(os.stat(token_file).st_mode & 0o007, 0, 'the token file is readable by others')
        self.assertTrue(self.tcp.startswith('127.0.0.1:'), self.tcp)
        # Never through an http_proxy/grpc_proxy from the environment.
        with grpc.insecure_channel(self.tcp, options=[('grpc.enable_http_proxy', 0)]) as channel:
            stub = STUBS.credsync_pb2_grpc.CredsyncServiceStub(channel)
            for metadata in (None, (('credsync-token', 'wrong'),), (('credsync-token', ''),)):
                with self.assertRaises(grpc.RpcError) as caught:
                    stub.GetStatus(pb.GetStatusRequest(), timeout=10, metadata=metadata)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED, metadata)
                with self.assertRaises(grpc.RpcError) as caught:
                    stub.Refresh(pb.RefreshRequest(profile='default'), timeout=10, metadata=metadata)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED, metadata)
            status = stub.GetStatus(pb.GetStatusRequest(), timeout=10,
                                    metadata=(('credsync-token', token),))
            self.assertEqual(status.profiles[0].access_key_id, self.current_key())

    # Verifies the Unix socket is in the output directory with mode 0660.
    def test_socket_file(self):
        self.assertEqual(self.socket, os.path.join(self.out, 'credsync.sock'))
        mode = os.stat(self.socket).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        self.assertEqual(oct(mode & 0o777), oct(0o660))


if __name__ == '__main__':
    unittest.main(verbosity=2)


DB_SECRET = 'rds/py-db'


class GenericProfileTest(SidecarTestCase):
    """A generic profile (a database credential kept as JSON, one file per
    key) through the same API: GetStatus shows its kind, version and files;
    Refresh speaks versions (failed_version_id); Watch carries version ids."""

    @classmethod
    def setUpClass(cls):
        cls.emu = harness.Emulator.start()
        try:
            cls.world = cls.emu.rrsa_world('pygen', [SECRET], readable=[SECRET, DB_SECRET])
            cls.emu.admin('POST', '/admin/secrets', {
                'name': DB_SECRET, 'type': 'Generic', 'version_id': 'v1',
                'data': '{"username": "app", "password": "py-db-password-1"}'})
            cls.out = os.path.join(cls.world.dir, 'out')
            config = harness.write_config(cls.world.dir, {
                'kms': {'endpoints': [cls.emu.endpoint]},
                'tls': {'ca_file': cls.emu.ca_file},
                'profiles': [{'name': 'default', 'secret_name': SECRET},
                             {'name': 'db', 'secret_name': DB_SECRET, 'kind': 'generic',
                              'format': 'json_keys'}],
                'output': {'directory': cls.out},
                'refresh': {'interval': '1h', 'jitter': 0, 'on_demand_burst': 100},
                'control': {'http_address': '127.0.0.1:0'},
            })
            cls.sc = harness.Sidecar.start(config, cls.world.env, name='pygen')
            cls.channel = grpc.insecure_channel(f'unix:{cls.sc.listening("unix")}')
            cls.stub = STUBS.credsync_pb2_grpc.CredsyncServiceStub(cls.channel)
            harness.wait_until(lambda: os.path.exists(os.path.join(cls.out, 'db.password')),
                               'db.password written')
        except BaseException:
            cls.tearDownClass()
            raise


    def read(self, name):
        with open(os.path.join(self.out, name)) as f:
            return f.read()

    def db_status(self):
        status = self.stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        return next(p for p in status.profiles if p.name == 'db')

    # Verifies GetStatus, a Refresh naming the version in the files, Watch,
    # and a Refresh naming an old version, for a generic profile.
    def test_status_refresh_and_watch_by_version(self):
        db = self.db_status()
        self.assertEqual(db.kind, pb.PROFILE_KIND_GENERIC)
        self.assertEqual(db.version_id, 'v1')
        self.assertEqual(db.access_key_id, '')
        self.assertEqual(sorted(db.files), ['db.password', 'db.username'])
        self.assertEqual(self.read('db.password'), 'py-db-password-1')

        call = self.stub.Watch(pb.WatchRequest(profile='db'), timeout=60)
        messages, reader = read_in_background(call)
        try:
            initial = messages.get(timeout=10)
            self.assertTrue(initial.initial)
            self.assertEqual(initial.version_id, 'v1')

            self.emu.admin('POST', f'/admin/secrets/{DB_SECRET.replace("/", "%2F")}/versions',
                           {'version_id': 'v2',
                            'data': '{"username": "app", "password": "py-db-password-2"}'})
            answer = self.stub.Refresh(pb.RefreshRequest(profile='db', failed_version_id='v1'),
                                       timeout=30)
            self.assertEqual(answer.outcome, pb.RefreshResponse.OUTCOME_REFRESHED)
            self.assertEqual(answer.version_id, 'v2')
            self.assertEqual(self.read('db.password'), 'py-db-password-2')

            change = messages.get(timeout=10)
            self.assertFalse(change.initial)
            self.assertEqual(change.version_id, 'v2')
            self.assertEqual(change.previous_version_id, 'v1')
            self.assertEqual(change.generation, answer.generation)

            # The files already hold another version than v1: answered at once.
            self.emu.reset_counters()
            again = self.stub.Refresh(pb.RefreshRequest(profile='db', failed_version_id='v1'),
                                      timeout=30)
            self.assertEqual(again.outcome, pb.RefreshResponse.OUTCOME_ALREADY_CURRENT)
            self.assertEqual(again.version_id, 'v2')
            self.assertEqual(self.emu.requests('GetSecretValue'), 0)

            # Naming the version in the files when KMS has no newer one.
            with self.assertRaises(grpc.RpcError) as caught:
                self.stub.Refresh(pb.RefreshRequest(profile='db', failed_version_id='v2'), timeout=30)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        finally:
            call.cancel()
            reader.join(10)
