package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout is how long Start waits for a server to accept
// connections.
const DefaultTimeout = 15 * time.Second

// startAttempts is how many ports Start tries when the port it picked was
// taken by someone else before the server could bind it.
const startAttempts = 3

// Options tunes StartWith. The zero value is what Start uses.
type Options struct {
	// Ready, if set, is called with the process's "127.0.0.1:port" once the
	// port accepts TCP connections, and again (until the timeout) as long as
	// it returns an error. Use it to wait for a protocol-level answer, or
	// to make sure the listener is the server and not another process that
	// took the port first.
	Ready func(addr string) error
	// Timeout bounds the wait for readiness; 0 means DefaultTimeout.
	Timeout time.Duration
	// Dir is the process's working directory; "" means the test's.
	Dir string
	// Env, if non-nil, is appended to the test's environment.
	Env []string
	// Exec, if set, is a command the server runs under: Start runs
	// Exec[0] with the rest of Exec, then the server's path and arguments
	// (ip netns exec NS starts it in a network namespace; see package
	// internal/netfault).
	Exec []string
	// Dial, if set, opens the connections of the readiness checks (for a
	// server in a network namespace: a dial from inside it); nil means
	// net.Dialer's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dial opens a connection to addr for a readiness check, within timeout.
func (o *Options) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if o.Dial == nil {
		return net.DialTimeout("tcp", addr, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return o.Dial(ctx, "tcp", addr)
}

// Process is a running server started by Start. Its methods are safe for
// concurrent use.
type Process struct {
	// Name is the binary's name as given to Start ("memcached").
	Name string
	// Path is the binary's resolved path.
	Path string
	// Args are the arguments the server runs with, "{port}" substituted.
	Args []string
	// Addr is "127.0.0.1:port".
	Addr string
	// Port is the TCP port the server listens on.
	Port int

	opts Options
	out  *outBuf

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd.Wait's result, valid once done is closed
}

// Start runs the binary name (looked up with LookPath, so a missing binary
// skips or fails the test) with args, replacing the literal "{port}" in
// any argument by a free port. It waits, up to DefaultTimeout, until
// 127.0.0.1:port accepts TCP connections; if the server exits or does not
// get ready, Start fails the test with the server's captured output. If the
// port was taken before the server bound it, Start retries on another one.
// A t.Cleanup kills the process and waits for it.
func Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	return StartWith(t, Options{}, name, args...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options, name string, args ...string) *Process {
	t.Helper()
	path := LookPath(t, name)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	var lastErr error
	var lastOut string
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testserver: start %s: no free port: %v", name, err)
		}
		p := &Process{
			Name: name,
			Path: path,
			Args: substitutePort(args, port),
			Addr: addr(port),
			Port: port,
			opts: opts,
			out:  &outBuf{},
		}
		if err := p.launch(); err != nil {
			t.Fatalf("testserver: start %s %s: %v", path, strings.Join(p.Args, " "), err)
		}
		t.Cleanup(p.kill)
		err = p.waitReady()
		if err == nil {
			return p
		}
		p.kill()
		lastErr, lastOut = err, p.Output()
		if !portInUse(lastOut) {
			break
		}
		t.Logf("testserver: %s: port %d was taken, retrying on another one", name, port)
	}
	t.Fatalf("testserver: %s %s: %v\n--- %s output ---\n%s--- end of output ---",
		path, strings.Join(args, " "), lastErr, name, lastOut)
	return nil
}

// substitutePort replaces "{port}" by port in a copy of args.
func substitutePort(args []string, port int) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, PortPlaceholder, fmt.Sprint(port))
	}
	return out
}

// portInUse reports whether a server's output says its port was taken.
func portInUse(out string) bool {
	o := strings.ToLower(out)
	return strings.Contains(o, "already in use") || strings.Contains(o, "eaddrinuse")
}

// launch starts the process on p.Port; it does not wait for readiness.
func (p *Process) launch() error {
	cmd := exec.Command(p.Path, p.Args...)
	if len(p.opts.Exec) > 0 {
		cmd = exec.Command(p.opts.Exec[0], slices.Concat(p.opts.Exec[1:], []string{p.Path}, p.Args)...)
	}
	cmd.Dir = p.opts.Dir
	if p.opts.Env != nil {
		cmd.Env = append(os.Environ(), p.opts.Env...)
	}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// If the server leaves a child holding its output pipe, do not let
	// Wait block forever.
	cmd.WaitDelay = 2 * time.Second
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.waitErr = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.waitErr = err
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// current returns the running command and its done channel.
func (p *Process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// waitReady waits until the server accepts connections (and passes
// opts.Ready), it exits, or the timeout expires.
func (p *Process) waitReady() error {
	_, done := p.current()
	deadline := time.Now().Add(p.opts.Timeout)
	delay := 10 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-done:
			return fmt.Errorf("exited before accepting connections on %s: %v", p.Addr, p.exitErr())
		default:
		}
		c, err := p.opts.dial(p.Addr, 500*time.Millisecond)
		if err == nil {
			_ = c.Close()
			if p.opts.Ready != nil {
				err = p.ready(done)
			}
		}
		if err == nil {
			// The listener could belong to a process that took the port
			// first while ours is failing to bind: check ours still runs.
			select {
			case <-done:
				return fmt.Errorf("exited before accepting connections on %s: %v", p.Addr, p.exitErr())
			case <-time.After(20 * time.Millisecond):
				return nil
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready on %s after %v: %v", p.Addr, p.opts.Timeout, lastErr)
		}
		select {
		case <-done:
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// ready runs opts.Ready, giving up early if the process exits meanwhile.
func (p *Process) ready(done <-chan struct{}) error {
	res := make(chan error, 1)
	go func() { res <- p.opts.Ready(p.Addr) }()
	select {
	case err := <-res:
		return err
	case <-done:
		return errors.New("process exited")
	}
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr == nil {
		return errors.New("exit status 0")
	}
	return p.waitErr
}

// kill sends SIGKILL to the process (and its process group) and waits for
// it. It does nothing if the process is not running.
func (p *Process) kill() {
	cmd, done := p.current()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	killProc(cmd)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// Cannot happen short of a kernel problem: SIGKILL plus WaitDelay.
		fmt.Fprintf(os.Stderr, "testserver: %s (pid %d) still not reaped 10s after SIGKILL\n", p.Name, cmd.Process.Pid)
	}
}

// Stop kills the server with SIGKILL and waits for it to exit. Restart
// starts it again. Stopping a stopped server does nothing.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.kill()
}

// Signal sends sig to the server process, for example syscall.SIGSTOP to
// freeze it (a hung server) and syscall.SIGCONT to resume it.
func (p *Process) Signal(sig os.Signal) error {
	cmd, done := p.current()
	if cmd == nil {
		return errors.New("testserver: process not started")
	}
	select {
	case <-done:
		return fmt.Errorf("testserver: %s has exited", p.Name)
	default:
	}
	return cmd.Process.Signal(sig)
}

// Restart starts the server again, on the same port with the same
// arguments, and waits until it is ready. If it is still running, it is
// killed first. It fails the test if the server cannot be started again.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	p.kill()
	p.out.mark(fmt.Sprintf("\n--- testserver: restart %s on port %d ---\n", p.Name, p.Port))
	deadline := time.Now().Add(p.opts.Timeout)
	for {
		if err := p.launch(); err != nil {
			t.Fatalf("testserver: restart %s: %v", p.Name, err)
		}
		err := p.waitReady()
		if err == nil {
			return
		}
		p.kill()
		// The old socket or a stray client may still hold the port for a
		// moment: retry until the deadline.
		if !portInUse(p.out.sinceMark()) || time.Now().After(deadline) {
			t.Fatalf("testserver: restart %s: %v\n--- %s output ---\n%s--- end of output ---",
				p.Name, err, p.Name, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Running reports whether the server process is alive (a SIGSTOPped one
// counts as alive).
func (p *Process) Running() bool {
	cmd, done := p.current()
	if cmd == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid returns the current process's id, or 0 if it was never started.
func (p *Process) Pid() int {
	cmd, _ := p.current()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}

// Output returns the server's combined stdout and stderr captured so far,
// across restarts. Very long output keeps only its end.
func (p *Process) Output() string {
	return p.out.String()
}

// outBuf is a concurrency-safe, bounded output buffer.
type outBuf struct {
	mu      sync.Mutex
	b       []byte
	markPos int
}

const maxOutput = 1 << 20

func (o *outBuf) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b = append(o.b, b...)
	if len(o.b) > maxOutput {
		cut := len(o.b) - maxOutput/2
		o.b = append([]byte("[... output truncated ...]\n"), o.b[cut:]...)
		o.markPos = 0
	}
	return len(b), nil
}

func (o *outBuf) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b)
}

// mark writes s and remembers the position after it.
func (o *outBuf) mark(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b = append(o.b, s...)
	o.markPos = len(o.b)
}

// sinceMark returns the output written after the last mark.
func (o *outBuf) sinceMark() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b[min(o.markPos, len(o.b)):])
}

// Memcached starts memcached on a free loopback port with
//
//	memcached -l 127.0.0.1 -p PORT -U 0 -m 64 -I 2m
//
// plus extra arguments (and "-u root" when running as root, which
// memcached otherwise refuses). It waits until the server answers the
// "version" command.
func Memcached(t testing.TB, extra ...string) *Process {
	t.Helper()
	return MemcachedWith(t, Options{}, extra...)
}

// MemcachedWith is Memcached with options (Exec and Dial, for a server in
// a network namespace); a nil opts.Ready waits for the "version" answer.
func MemcachedWith(t testing.TB, opts Options, extra ...string) *Process {
	t.Helper()
	args := []string{"-l", "127.0.0.1", "-p", PortPlaceholder, "-U", "0", "-m", "64", "-I", "2m"}
	if os.Geteuid() == 0 && !slices.Contains(extra, "-u") && !hasPrefixArg(extra, "--user") {
		args = append(args, "-u", "root")
	}
	args = append(args, extra...)
	if opts.Ready == nil {
		opts.Ready = memcachedReady(&opts)
	}
	return StartWith(t, opts, "memcached", args...)
}

// Redis starts redis-server on a free loopback port with
//
//	redis-server --port PORT --bind 127.0.0.1 --save "" --appendonly no
//
// plus extra arguments (for example "--requirepass", "secret"). It waits
// until the server answers PING (an authentication error counts as an
// answer).
func Redis(t testing.TB, extra ...string) *Process {
	t.Helper()
	return RedisWith(t, Options{}, extra...)
}

// RedisWith is Redis with options (Exec and Dial, for a server in a
// network namespace); a nil opts.Ready waits for the PING answer.
func RedisWith(t testing.TB, opts Options, extra ...string) *Process {
	t.Helper()
	args := []string{"--port", PortPlaceholder, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	args = append(args, extra...)
	if opts.Ready == nil {
		opts.Ready = redisReady(&opts)
	}
	return StartWith(t, opts, "redis-server", args...)
}

func hasPrefixArg(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// ask sends req to addr, dialed as o says, and returns the first line of
// the reply.
func ask(o *Options, addr, req string) (string, error) {
	c, err := o.dial(addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// memcachedReady returns the readiness check of a memcached started with
// o: it answers "version".
func memcachedReady(o *Options) func(addr string) error {
	return func(addr string) error {
		line, err := ask(o, addr, "version\r\n")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "VERSION ") {
			return fmt.Errorf("unexpected answer to version: %q", line)
		}
		return nil
	}
}

// redisReady returns the readiness check of a redis-server started with
// o: it answers PING (an authentication error counts as an answer).
func redisReady(o *Options) func(addr string) error {
	return func(addr string) error {
		line, err := ask(o, addr, "PING\r\n")
		if err != nil {
			return err
		}
		switch {
		case line == "+PONG", strings.HasPrefix(line, "-NOAUTH"), strings.HasPrefix(line, "-WRONGPASS"):
			return nil
		}
		return fmt.Errorf("unexpected answer to PING: %q", line)
	}
}
