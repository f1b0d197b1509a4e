package testserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisSentinelNodes is a Redis master, its replicas and the sentinels
// that watch it, started by RedisSentinel.
type RedisSentinelNodes struct {
	// Name is the master's name in the sentinels' configuration.
	Name string
	// Master and Replicas are the servers as started: after a failover,
	// Master is a replica (or dead) and one of Replicas the master; ask
	// MasterAddr.
	Master   *Process
	Replicas []*Process
	// Sentinels are the sentinels' processes, in the order of
	// SentinelAddrs.
	Sentinels     []*Process
	SentinelAddrs []string
	// MasterPassword and SentinelPassword are the passwords the servers
	// and the sentinels require (--requirepass in extra, requirepass in
	// sentinelConf), "" for none.
	MasterPassword, SentinelPassword string
}

// RedisSentinel starts, on loopback, a Redis master (Redis, with extra
// arguments), replicas of it (the same, with --replicaof) and sentinels
// that monitor it under name with quorum 2 (sentinels >= 2), each from a
// configuration file of its own in a temporary directory of t:
//
//	sentinel monitor NAME 127.0.0.1 MASTERPORT 2
//	sentinel down-after-milliseconds NAME 1000
//	sentinel failover-timeout NAME 3000
//
// plus the lines of sentinelConf ("sentinel auth-pass NAME secret",
// "requirepass x", ...), and waits until every sentinel reports the master
// ok with all the replicas and the other sentinels, and every replica's
// link to the master is up. A missing redis-sentinel skips the test, or
// fails it when Required().
func RedisSentinel(t testing.TB, name string, replicas, sentinels int, extra, sentinelConf []string) *RedisSentinelNodes {
	t.Helper()
	if sentinels < 2 {
		t.Fatalf("testserver: RedisSentinel: %d sentinels: want at least 2 (quorum 2)", sentinels)
	}
	LookPath(t, "redis-sentinel")
	s := &RedisSentinelNodes{Name: name}
	for i, a := range extra {
		if a == "--requirepass" && i+1 < len(extra) {
			s.MasterPassword = extra[i+1]
		}
	}
	for _, l := range sentinelConf {
		if pw, ok := strings.CutPrefix(l, "requirepass "); ok {
			s.SentinelPassword = strings.TrimSpace(pw)
		}
	}
	// Each server in a directory of its own: replication writes RDB
	// files there.
	s.Master = Redis(t, append([]string{"--dir", t.TempDir()}, extra...)...)
	for range replicas {
		args := append([]string{"--dir", t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port)}, extra...)
		s.Replicas = append(s.Replicas, Redis(t, args...))
	}
	for i := range sentinels {
		dir := t.TempDir()
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		lines := []string{
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", name, s.Master.Port),
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000", name),
			fmt.Sprintf("sentinel failover-timeout %s 3000", name),
			"dir " + dir,
		}
		lines = append(lines, sentinelConf...)
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatalf("testserver: sentinel config: %v", err)
		}
		p := StartWith(t, Options{Ready: redisReady(&Options{})}, "redis-sentinel", conf, "--port", PortPlaceholder, "--bind", "127.0.0.1")
		s.Sentinels = append(s.Sentinels, p)
		s.SentinelAddrs = append(s.SentinelAddrs, p.Addr)
	}
	if err := s.WaitOK(30*time.Second, s.Master.Addr); err != nil {
		t.Fatalf("testserver: redis sentinel: %v", err)
	}
	return s
}

// WaitOK waits, up to timeout, until every sentinel reports the master at
// master ok, with all the replicas and the other sentinels, and every
// replica of master reports its link up. It returns the last problem seen
// on timeout.
func (s *RedisSentinelNodes) WaitOK(timeout time.Duration, master string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := s.checkOK(master)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *RedisSentinelNodes) checkOK(master string) error {
	want := fmt.Sprintf("name=%s,status=ok,address=%s,slaves=%d,sentinels=%d", s.Name, master, len(s.Replicas), len(s.Sentinels))
	for _, a := range s.SentinelAddrs {
		info, err := bulk(a, authed(s.SentinelPassword, "INFO sentinel\r\n"))
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", a, err)
		}
		if !strings.Contains(info, want) {
			return fmt.Errorf("sentinel %s: %q, want %q", a, strings.TrimSpace(info[strings.LastIndex(info, "master0:")+1:]), want)
		}
	}
	for _, p := range append([]*Process{s.Master}, s.Replicas...) {
		if p.Addr == master {
			continue
		}
		info, err := bulk(p.Addr, authed(s.MasterPassword, "INFO replication\r\n"))
		if err != nil {
			return fmt.Errorf("replica %s: %w", p.Addr, err)
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s: link to the master not up", p.Addr)
		}
	}
	return nil
}

// MasterAddr asks the first sentinel that answers for the master's
// address ("127.0.0.1:port").
func (s *RedisSentinelNodes) MasterAddr() (string, error) {
	var last error
	for _, a := range s.SentinelAddrs {
		addr, err := sentinelMaster(a, s.Name, s.SentinelPassword)
		if err == nil {
			return addr, nil
		}
		last = err
	}
	return "", last
}

// sentinelMaster sends SENTINEL get-master-addr-by-name to the sentinel
// at addr.
func sentinelMaster(addr, name, password string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(conn, authed(password, "SENTINEL get-master-addr-by-name "+name+"\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	if password != "" {
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return "", fmt.Errorf("sentinel %s: AUTH: %q, %v", addr, line, err)
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(line) != "*2" {
		return "", fmt.Errorf("sentinel %s: unexpected reply %q", addr, strings.TrimSpace(line))
	}
	var parts [2]string
	for i := range parts {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return "", err
		}
		v, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		parts[i] = strings.TrimSpace(v)
	}
	return net.JoinHostPort(parts[0], parts[1]), nil
}

// authed returns the inline command req preceded by an AUTH with
// password, if any; bulk skips the +OK of the AUTH.
func authed(password, req string) string {
	if password == "" {
		return req
	}
	return "AUTH " + password + "\r\n" + req
}
