#!/usr/bin/env python3
"""The bench's stand-in for the Hub's CDN: serves one file over HTTP/1.1 on 127.0.0.1, with Range.

On the real Hub the server is another machine; on the loopback bench it shares this machine's cores
with the decoder it feeds. So it sends with sendfile(2): the kernel moves page-cache pages to the
socket with no copy through user space, and the server takes as little of those cores as this
machine allows (about half the CPU of a Node server doing the same). Started by scripts/bench.mjs;
prints the port it listens on, then serves until killed.

usage: bench-cdn.py <file>
"""
import os
import re
import socket
import sys
import threading

RANGE = re.compile(rb'^range:\s*bytes=(\d+)-(\d*)\s*$', re.I | re.M)


def serve(conn, path):
    with conn:
        head = b''
        while b'\r\n\r\n' not in head:
            piece = conn.recv(65536)
            if not piece or len(head) > 65536:
                return
            head += piece
        size = os.path.getsize(path)
        m = RANGE.search(head.split(b'\r\n\r\n', 1)[0])
        start, end = 0, size - 1
        if m:
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), size - 1)
            if start > end and not (start == size == 0):
                conn.sendall(b'HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' % size)
                return
        length = max(0, end - start + 1)
        lines = [b'HTTP/1.1 206 Partial Content' if m else b'HTTP/1.1 200 OK', b'Content-Length: %d' % length]
        if m:
            lines.append(b'Content-Range: bytes %d-%d/%d' % (start, end, size))
        lines += [b'Accept-Ranges: bytes', b'Connection: close', b'', b'']
        try:
            conn.sendall(b'\r\n'.join(lines))
            with open(path, 'rb') as f:
                conn.sendfile(f, start, length)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a cancelled run): nothing to report


def main():
    path = sys.argv[1]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', 0))
    server.listen(16)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, path), daemon=True).start()


if __name__ == '__main__':
    main()
