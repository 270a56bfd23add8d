// A TCP proxy on loopback in front of an emulator port: the sidecar's KMS
// endpoint points at it, so a test can make one endpoint fail without
// touching the emulator behind it (which other endpoints share).
//   switchTo(port)  forward to another listener (e.g. one with another
//                   certificate); open connections are dropped, so the
//                   client must handshake again;
//   refuse(true)    reset every new connection at once, as a dead endpoint
//                   behind a load balancer does; open connections are dropped;
//   connections()   how many connections clients have opened so far.

import net from 'node:net';

export async function startTcpProxy(targetPort) {
  let target = targetPort;
  let refusing = false;
  let opened = 0;
  const pairs = new Set();
  const dropAll = () => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const server = net.createServer((client) => {
    ++opened;
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `127.0.0.1:${server.address().port}`,
    url: `https://127.0.0.1:${server.address().port}`,
    switchTo(port) {
      target = port;
      dropAll();
    },
    refuse(on) {
      refusing = on;
      if (on) dropAll();
    },
    connections: () => opened,
    close: () => new Promise((resolve) => {
      dropAll();
      server.close(resolve);
    }),
  };
}
