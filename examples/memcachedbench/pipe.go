package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The ceilings are load generators rather than clients: what the server
// answers on this machine when nothing but the window limits the client.
// Each of conns connections keeps up to window requests in flight: a
// writer goroutine sends them in batches of window/2, each built in one
// buffer and sent in one write syscall, and sends a batch whenever the
// reader has consumed the replies to one (so a half window is queued at
// the server while the other half is answered); the reader parses the
// replies from a 256 KiB buffer and discards the values (Discard: no
// allocation, no copy out of the read buffer). No callers, no goroutine
// handoff per request, no timeouts, no reply matching, no error mapping.
// "raw 2x32" keeps the 64 requests of 64 blocking callers on 2
// connections in flight, memdict's own situation in the -64 phases;
// "raw 4x128" is the most this server answers; get-seq's ceiling is one
// request at a time on one connection.

// pipeOp appends the i-th command of a phase to buf.
type pipeOp func(buf []byte, i int) []byte

// pipeGet returns the op reading keys in turn.
func pipeGet(keys []string) pipeOp {
	return func(buf []byte, i int) []byte {
		buf = append(buf, "mg "...)
		buf = append(buf, keys[i%len(keys)]...)
		return append(buf, " v\r\n"...)
	}
}

// pipeSet returns the op writing v under keys in turn.
func pipeSet(keys []string, v []byte) pipeOp {
	return func(buf []byte, i int) []byte {
		buf = append(buf, "ms "...)
		buf = append(buf, keys[i%len(keys)]...)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(len(v)), 10)
		buf = append(buf, "\r\n"...)
		buf = append(buf, v...)
		return append(buf, "\r\n"...)
	}
}

// pipeMix is 10% set, 90% get, like mix().
func pipeMix(get, set pipeOp) pipeOp {
	return func(buf []byte, i int) []byte {
		if i%10 == 0 {
			return set(buf, i)
		}
		return get(buf, i)
	}
}

// pipeLoad runs op on conns connections with window requests in flight on
// each for about dur, and returns the number of replies that were HD or
// VA, and the time taken. A connection that fails ends its share early;
// the error is returned with the count.
func pipeLoad(addr string, conns, window int, dur time.Duration, op pipeOp) (sample, error) {
	var ok atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	ncs := make([]net.Conn, 0, conns)
	for range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			for _, c := range ncs {
				c.Close()
			}
			return sample{}, err
		}
		ncs = append(ncs, nc)
	}
	batch := max(window/2, 1)
	c0 := readCounters()
	for ci, nc := range ncs {
		credits := make(chan struct{}, 2)
		credits <- struct{}{}
		if window > 1 {
			credits <- struct{}{}
		}
		sent := make(chan int, 3) // batch sizes written, for the reader; 0: no more
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			var buf []byte
			i := ci * 7919
			for first := true; ; first = false {
				if _, more := <-credits; !more || stop.Load() && !first {
					break // every connection sends one batch at least
				}
				buf = buf[:0]
				for range batch {
					buf = op(buf, i)
					i++
				}
				if _, err := nc.Write(buf); err != nil {
					errs <- err
					break
				}
				sent <- batch
			}
			sent <- 0
		}()
		go func() { // reader
			defer wg.Done()
			defer nc.Close()
			defer close(credits) // ends the writer if this ends on an error
			br := bufio.NewReaderSize(nc, 256<<10)
			local := int64(0)
			defer func() { ok.Add(local) }()
			for n := range sent {
				if n == 0 {
					return
				}
				for range n {
					if err := skipReply(br); err != nil {
						errs <- fmt.Errorf("pipe: %w", err)
						return
					}
					local++
				}
				credits <- struct{}{}
			}
		}()
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	s := since(c0, ok.Load())
	var err error
	select {
	case err = <-errs:
	default:
	}
	return s, err
}

// skipReply reads one reply, HD or VA with its value, and discards it.
func skipReply(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(line, []byte("VA ")):
		sp := bytes.IndexByte(line[3:], ' ')
		if sp < 0 {
			sp = len(line) - 5
		}
		size, err := strconv.Atoi(string(line[3 : 3+sp]))
		if err != nil {
			return fmt.Errorf("reply %q", line)
		}
		_, err = br.Discard(size + 2)
		return err
	case bytes.HasPrefix(line, []byte("HD")):
		return nil
	}
	return fmt.Errorf("reply %q", line)
}
