"""What the exporter's HTTP server grants a client, and why each limit is what it is.

Slow or abusive clients:
- a request must arrive whole within HEAD_TIMEOUT_SECONDS of its first byte (not of its
  last: one byte every few seconds would hold a connection forever), and its head is at
  most MAX_HEAD_BYTES;
- answers wait in the transport's buffer only up to WRITE_HIGH_WATER_BYTES: above it the
  connection stops reading (and so parsing pipelined requests) until the client reads, so
  30,000 pipelined GETs never read cannot fill memory (they took RSS from 29 to 292 MB and
  stalled other scrapes 8.5 s); one that reads nothing for WRITE_TIMEOUT_SECONDS is closed;
- pipelined requests are answered PIPELINE_BATCH at a time per loop turn, so a client
  pipelining thousands of scrapes cannot hold the loop from the other connections;
- at `max_connections` open connections a new one closes the connection idle longest (40
  idle sockets used to give every new scraper 503 for the 5 minutes until they timed out);
  only when none is idle is it answered 503 and closed, so connections cannot eat the
  descriptors the collectors keep open on /proc; at twice the cap it is closed unanswered;
- bcrypt (basic_auth.py): each connection has at most one check queued, so the queue is
  bounded by the connection cap, and a connection whose check failed queues behind those
  that have not failed yet: a flood of wrong passwords delays a right one by a check or
  two instead of refusing it (36 such clients used to give a fresh right password 503 20
  times of 20, when the queue was capped at 32 checks).

docs/limits.md lists these beside the responder's and the policy loader's.
"""

from __future__ import annotations

MAX_HEAD_BYTES = 16 * 1024
IDLE_TIMEOUT_SECONDS = 300.0  # close keep-alive connections unused this long
HEAD_TIMEOUT_SECONDS = 30.0  # a request must arrive whole this long after its first byte
DEFAULT_MAX_CONNECTIONS = 40  # Prometheus needs one per server scraping us
WRITE_HIGH_WATER_BYTES = 256 * 1024  # answers buffered for a client before its connection stops reading
PIPELINE_BATCH = 1  # pipelined requests answered per connection per loop turn: others scrape in between
WRITE_TIMEOUT_SECONDS = 30.0  # a client that reads none of its answers this long is closed
