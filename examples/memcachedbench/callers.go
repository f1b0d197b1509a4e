package main

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// "raw callers 2x32" is the ceiling of a client whose callers block: the
// least a pipelined client must do when each of par goroutines makes one
// call at a time and waits for its reply, as memdict's callers do. It has
// the raw 2x32's connections and its batching rule (a batch goes when it
// is as large as what is in flight), but each request is a caller's: the
// caller appends its command to the connection's buffer, writes the batch
// itself when it is due, and parks on a channel until the reader hands it
// its reply. So it pays what no client with blocking callers can avoid
// (a park and a wake per call, the scheduler's work between them) and
// nothing else: no timeouts, no reply matching, no errors mapped, no
// values copied out. The gap between it and raw 2x32 is the price of
// blocking callers on this machine; the gap between memdict and it is
// memdict's own.

// callerConn is one connection of the blocking-callers ceiling.
type callerConn struct {
	nc      net.Conn
	mu      sync.Mutex
	buf     []byte          // commands queued, not written yet
	spare   []byte          // buf's other buffer
	queued  []chan struct{} // the callers of buf's commands, in order
	flight  []chan struct{} // the callers of written commands, in order
	writing bool
	err     error
}

// call queues op's i-th command and waits for its reply.
func (c *callerConn) call(op pipeOp, i int, done chan struct{}) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.buf = op(c.buf, i)
	c.queued = append(c.queued, done)
	c.flushLocked()
	<-done
	return nil
}

// flushLocked writes the queued commands if they are due, and unlocks
// c.mu.
func (c *callerConn) flushLocked() {
	for !c.writing && len(c.queued) > 0 && len(c.queued) >= len(c.flight) {
		b := c.buf
		c.buf = c.spare[:0]
		c.flight = append(c.flight, c.queued...)
		c.queued = c.queued[:0]
		c.writing = true
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.spare = b[:0]
		c.writing = false
		if err != nil && c.err == nil {
			c.err = err
			// The reader then fails too, and wakes every caller.
			c.nc.Close()
		}
	}
	c.mu.Unlock()
}

// read hands out the replies until the connection fails.
func (c *callerConn) read() {
	br := bufio.NewReaderSize(c.nc, 256<<10)
	var ready []chan struct{}
	for {
		n := 0
		var err error
		for {
			if err = skipReply(br); err != nil {
				err = fmt.Errorf("callers: %w", err)
				break
			}
			n++
			if br.Buffered() == 0 {
				break
			}
		}
		c.mu.Lock()
		ready = append(ready[:0], c.flight[:n]...)
		c.flight = c.flight[:copy(c.flight, c.flight[n:])]
		if err != nil {
			c.err = err
			ready = append(ready, c.flight...)
			ready = append(ready, c.queued...)
			c.flight, c.queued = nil, nil
		}
		for _, ch := range ready {
			ch <- struct{}{}
		}
		if err != nil {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		// Let the callers just readied queue their next calls first: the
		// batch then carries them.
		runtime.Gosched()
		c.mu.Lock()
		c.flushLocked()
	}
}

// callersLoad runs op from par goroutines, each making one call at a
// time, over conns connections of the blocking-callers ceiling, for about
// dur.
func callersLoad(addr string, conns, par int, dur time.Duration, op pipeOp) (sample, error) {
	cs := make([]*callerConn, conns)
	for i := range cs {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			for _, c := range cs[:i] {
				c.nc.Close()
			}
			return sample{}, err
		}
		cs[i] = &callerConn{nc: nc}
	}
	var readers sync.WaitGroup
	for _, c := range cs {
		readers.Go(c.read)
	}
	var n atomic.Int64
	var stop atomic.Bool
	var callers sync.WaitGroup
	errs := make(chan error, par)
	c0 := readCounters()
	for g := range par {
		callers.Go(func() {
			c, done := cs[g%len(cs)], make(chan struct{}, 1)
			local := int64(0)
			for i := g * 7919; !stop.Load(); i++ {
				if err := c.call(op, i, done); err != nil {
					errs <- err
					break
				}
				local++
			}
			n.Add(local)
		})
	}
	time.Sleep(dur)
	stop.Store(true)
	callers.Wait()
	s := since(c0, n.Load())
	for _, c := range cs {
		c.nc.Close()
	}
	readers.Wait()
	var err error
	select {
	case err = <-errs:
	default:
	}
	return s, err
}
