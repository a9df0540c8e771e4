"""What one loopback ``send()`` costs the sender, by what the receiving process was doing.

A proxy adds a hop, and every hop is a ``send()`` whose receiver must be woken. On a VM, waking a process
whose vCPU has gone idle costs the *sender* several times what a send to a busy receiver does (the
wake-up goes through the hypervisor). This measures it with no Python proxy involved: a child process
waits in ``epoll`` on a TCP socket, the parent sends it small messages, either back to back (the child
is still awake from the last one), or after a pause spent busy (so that only the child's CPU can idle).

    python bench/syscost.py [--size 500] [--count 2000]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
import time


def _receiver(port: int) -> None:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    poller = select.epoll()
    poller.register(conn.fileno(), select.EPOLLIN)
    while True:
        poller.poll()
        if not conn.recv(65536):
            os._exit(0)


def _spin(seconds: float) -> None:
    """Stay busy (not asleep) for ``seconds``, so that this process's CPU does not idle meanwhile."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the sender's cost of a loopback send, by the receiver's state")
    p.add_argument("--size", type=int, default=500, help="bytes per send (default 500: one SSE event)")
    p.add_argument("--count", type=int, default=2000, help="sends per case")
    args = p.parse_args(argv)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        _receiver(port)
    sender, _ = listener.accept()
    sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = b"x" * args.size
    print(f"{args.count} sends of {args.size} bytes; the sender's time in send(), µs")
    print("| pause before each send | receiver then | p50 | p90 |")
    print("|---|---|---|---|")
    for pause, state in (
        (0.0, "awake (busy with the last one)"),
        (0.0002, "idle 0.2 ms"),
        (0.002, "idle 2 ms"),
        (0.05, "idle 50 ms"),
    ):
        count = args.count if pause < 0.01 else max(20, args.count // 20)
        took = []
        for _ in range(count):
            if pause:
                _spin(pause)
            start = time.perf_counter()
            sender.send(message)
            took.append(time.perf_counter() - start)
        took.sort()
        print(
            f"| {pause * 1000:g} ms | {state} | {took[len(took) // 2] * 1e6:.1f} | {took[len(took) * 9 // 10] * 1e6:.1f} |"
        )
    sender.close()
    os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
