// A minimal IRC client over a raw socket for the end-to-end tests: registers, answers PING,
// and reports PRIVMSG, NICK, ERROR and close as events. Lines go out as UTF-8 bytes.
import net from 'node:net';
import { EventEmitter } from 'node:events';

const open = new Set();

/** Closes every client still connected (a file's after() hook, for tests that timed out). */
export function closeAllIrc() {
  for (const socket of open) socket.destroy();
  open.clear();
}

export function connectIrc(nick, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const client = new EventEmitter();
    const socket = net.connect(port, host);
    open.add(socket);
    let buffer = Buffer.alloc(0);
    client.nick = nick;
    client.socket = socket;
    client.closed = false;
    client.linesIn = 0;
    client.send = (line) => socket.write(Buffer.from(`${line}\r\n`, 'utf8'));
    // Nick changes reach only those who share a channel: bridges sit in one.
    client.join = (channel) =>
      new Promise((done) => {
        const onJoin = (who, where) => {
          if (who !== client.nick || where !== channel) return;
          client.off('join', onJoin);
          done();
        };
        client.on('join', onJoin);
        client.send(`JOIN ${channel}`);
      });
    client.quit = () =>
      new Promise((done) => {
        if (client.closed) return done();
        socket.once('close', done);
        socket.end('QUIT :bye\r\n');
      });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      let at;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.subarray(0, at).toString('utf8');
        buffer = buffer.subarray(at + 2);
        client.linesIn++;
        if (line.startsWith('PING')) {
          client.send(`PONG${line.slice(4)}`);
          continue;
        }
        const m = line.match(/^:(\S+) (\S+) (\S+)(?: :?(.*))?$/);
        if (!m) {
          if (line.startsWith('ERROR')) client.emit('error-line', line);
          continue;
        }
        const from = m[1].split('!')[0];
        if (m[2] === '001') resolve(client);
        else if (m[2] === 'PRIVMSG') client.emit('privmsg', from, m[4] ?? '', line);
        else if (m[2] === 'JOIN') client.emit('join', from, m[3].replace(/^:/, ''));
        else if (m[2] === 'NICK') {
          const to = m[3].replace(/^:/, '');
          if (from === client.nick) client.nick = to;
          client.emit('nick', from, to);
        } else if (/^4\d\d$/.test(m[2])) client.emit('irc-error', line);
      }
    });
    socket.on('error', (error) => {
      client.emit('socket-error', error);
      reject(error);
    });
    socket.on('close', () => {
      open.delete(socket);
      client.closed = true;
      client.emit('close');
    });
    socket.on('connect', () => {
      client.send(`NICK ${nick}`);
      client.send(`USER ${nick} 0 * :${nick}`);
    });
  });
}
