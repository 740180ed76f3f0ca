//! One generator thread: a few keep-alive connections driven by one epoll loop (mio).
//!
//! Each connection carries one request at a time (no pipelining, like real TBA clients).
//! - Max mode (closed loop): a connection sends its next request as soon as the answer arrives;
//!   latency runs from the send.
//! - Open loop: request `i` is due at `t0 + offset + i / rate`, whatever the server is doing.
//!   A due request takes any free connection; if none is free it waits, and its latency still
//!   runs from when it was due (no coordinated omission: a stalled server shows as latency,
//!   not as a lower offered rate). The loop sleeps in epoll while the next request is more than
//!   2 ms away and spins in the last stretch, so requests leave within microseconds of their
//!   time instead of in millisecond bursts.
//! - While every connection waits for its answer the loop busy-polls (epoll with a zero
//!   timeout) unless told to sleep: the generator's CPU is its own, and a generator asleep in
//!   epoll makes the server pay a cross-CPU wakeup (an IPI, a VM exit on a virtual machine) in
//!   every response's `write`, a cost that on a real network falls on the client's machine and
//!   that grows as the server gets slower (measured: about a fifth of keycard's CPU at max).

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::http;
use crate::presign::Planned;
use crate::stats::Outcome;

#[derive(Clone, Copy)]
pub enum Pace {
    Max,
    Open {
        t0: Instant,
        /// Delay of this thread's first request after `t0` (threads interleave).
        offset: Duration,
        /// Seconds between this thread's consecutive requests.
        interval: f64,
    },
}

impl Pace {
    fn due(&self, i: usize, now: Instant) -> Instant {
        match *self {
            Pace::Max => now,
            Pace::Open {
                t0,
                offset,
                interval,
            } => t0 + offset + Duration::from_secs_f64(i as f64 * interval),
        }
    }
}

struct Active {
    index: usize,
    /// Where latency is measured from: the send (max mode) or the due time (open loop).
    origin: Instant,
    written: usize,
}

struct Conn {
    stream: TcpStream,
    active: Option<Active>,
    inbuf: Vec<u8>,
}

pub struct Engine {
    addr: SocketAddr,
    /// Sleep in epoll while every connection waits (instead of busy-polling).
    sleep_when_busy: bool,
    poll: Poll,
    conns: Vec<Conn>,
    events: Events,
}

/// A request that never got an answer is given up this long after the run's deadline.
const DRAIN: Duration = Duration::from_secs(10);
/// Below this distance to the next due request the loop spins instead of sleeping in epoll.
const SPIN: Duration = Duration::from_millis(2);

impl Engine {
    pub fn connect(addr: SocketAddr, connections: usize, sleep_when_busy: bool) -> Result<Self> {
        let poll = Poll::new()?;
        let mut conns = Vec::with_capacity(connections);
        for i in 0..connections {
            conns.push(open(&poll, addr, i)?);
        }
        Ok(Self {
            addr,
            sleep_when_busy,
            poll,
            conns,
            events: Events::with_capacity(1024),
        })
    }

    /// Sends `requests` at `pace`; no request is started after `deadline`.
    /// `t0` is where the outcome's timeline starts.
    pub fn run(
        &mut self,
        requests: &[Planned],
        pace: Pace,
        t0: Instant,
        deadline: Instant,
    ) -> Result<Outcome> {
        let mut out = Outcome::new();
        let mut free: Vec<usize> = (0..self.conns.len()).rev().collect();
        let mut next = 0;
        let mut inflight = 0usize;
        loop {
            let now = Instant::now();
            // Start every request that is due and has a connection.
            while next < requests.len() && now < deadline {
                let due = pace.due(next, now);
                if due > now {
                    break;
                }
                let Some(c) = free.pop() else { break };
                out.send_lag.saturating_record(nanos(now - due));
                out.first_send.get_or_insert(now);
                out.sent += 1;
                inflight += 1;
                self.conns[c].active = Some(Active {
                    index: next,
                    origin: due,
                    written: 0,
                });
                next += 1;
                if self.flush(c, requests).is_err() {
                    self.fail(c, &mut out, &mut free)?;
                    inflight -= 1;
                }
            }
            let stopped = next == requests.len() || now >= deadline;
            if stopped && inflight == 0 {
                break;
            }
            if now >= deadline + DRAIN {
                out.io_errors += inflight as u64;
                break;
            }
            let timeout = if stopped || !free.is_empty() {
                match pace {
                    _ if stopped => deadline.max(now) + DRAIN - now,
                    Pace::Max => Duration::ZERO,
                    Pace::Open { .. } => {
                        let wait = pace.due(next, now).saturating_duration_since(now);
                        if wait > SPIN {
                            wait - SPIN / 2
                        } else {
                            Duration::ZERO
                        }
                    }
                }
            } else if self.sleep_when_busy {
                // Every connection is busy: only an answer can change anything.
                deadline.max(now) + DRAIN - now
            } else {
                Duration::ZERO
            };
            self.poll.poll(&mut self.events, Some(timeout))?;
            let ready: Vec<(usize, bool, bool)> = self
                .events
                .iter()
                .map(|e| {
                    (
                        e.token().0,
                        e.is_readable() || e.is_read_closed(),
                        e.is_writable(),
                    )
                })
                .collect();
            for (c, readable, writable) in ready {
                if self.conns[c].active.is_none() {
                    // An idle connection only becomes readable when the server closes it
                    // (idle timeout): reconnect now rather than fail the next request.
                    if readable && self.closed_while_idle(c) {
                        self.reopen(c)?;
                        out.reconnects += 1;
                    }
                    continue;
                }
                if writable && self.flush(c, requests).is_err() {
                    self.fail(c, &mut out, &mut free)?;
                    inflight -= 1;
                    continue;
                }
                if readable {
                    match self.receive(c, requests, &mut out, t0) {
                        Ok(true) => {
                            inflight -= 1;
                            free.push(c);
                        }
                        Ok(false) => {}
                        Err(_) => {
                            self.fail(c, &mut out, &mut free)?;
                            inflight -= 1;
                        }
                    }
                }
            }
        }
        out.unsent = (requests.len() - next) as u64;
        Ok(out)
    }

    /// Writes what is left of the connection's request.
    fn flush(&mut self, c: usize, requests: &[Planned]) -> std::io::Result<()> {
        let conn = &mut self.conns[c];
        let Some(active) = conn.active.as_mut() else {
            return Ok(());
        };
        let bytes = &requests[active.index].bytes;
        while active.written < bytes.len() {
            match conn.stream.write(&bytes[active.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => active.written += n,
                // The kernel buffer is full: a writable event will call again.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived; true when the answer is complete (recorded, connection free again).
    fn receive(
        &mut self,
        c: usize,
        requests: &[Planned],
        out: &mut Outcome,
        t0: Instant,
    ) -> Result<bool> {
        let conn = &mut self.conns[c];
        let mut chunk = [0u8; 16 * 1024];
        let mut eof = false;
        // Edge-triggered: read until the answer is complete or the socket is empty. Stopping at
        // a complete answer saves the read that would only say "empty": the server sends
        // nothing more before the next request (a close shows up on the idle connection).
        let head = loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => eof = true,
                Ok(n) => conn.inbuf.extend_from_slice(&chunk[..n]),
                // Empty for now: the rest of the answer comes with a later event.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            if let Some(head) = http::parse(&conn.inbuf)? {
                break head;
            }
            anyhow::ensure!(!eof, "connection closed mid-response");
        };
        let done = Instant::now();
        let active = conn.active.take().context("an answer with no request")?;
        let kind = requests[active.index].kind;
        out.record(kind, head.status, done - active.origin, done, t0);
        conn.inbuf.drain(..head.total_len);
        if head.close || eof {
            // A server without keep-alive (or one that gave up on us): the next request pays
            // for a new connection, as a real client's would.
            self.reopen(c)?;
            out.reconnects += 1;
        }
        Ok(true)
    }

    /// A connection failed mid-request: count the request as an error, reconnect, free it.
    fn fail(&mut self, c: usize, out: &mut Outcome, free: &mut Vec<usize>) -> Result<()> {
        out.io_errors += 1;
        out.reconnects += 1;
        self.reopen(c)?;
        free.push(c);
        Ok(())
    }

    fn closed_while_idle(&mut self, c: usize) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.conns[c].stream.peek(&mut probe), Ok(0))
    }

    fn reopen(&mut self, c: usize) -> Result<()> {
        let mut old = std::mem::replace(&mut self.conns[c], open(&self.poll, self.addr, c)?);
        let _ = self.poll.registry().deregister(&mut old.stream);
        Ok(())
    }
}

/// A blocking connect (microseconds on loopback), then non-blocking use through epoll.
fn open(poll: &Poll, addr: SocketAddr, token: usize) -> Result<Conn> {
    let std_stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    std_stream.set_nodelay(true)?;
    std_stream.set_nonblocking(true)?;
    let mut stream = TcpStream::from_std(std_stream);
    poll.registry().register(
        &mut stream,
        Token(token),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(Conn {
        stream,
        active: None,
        inbuf: Vec::with_capacity(16 * 1024),
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
