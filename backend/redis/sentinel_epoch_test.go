package redis

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// masterReply is a fake sentinel's answer to one question about the
// master.
type masterReply struct {
	fields  []string      // SENTINEL MASTER's, key and value in turn; nil: an error
	flat    bool          // a RESP2 flat array rather than a RESP3 map
	noperm  bool          // SENTINEL MASTER refused by the ACL (get-master-addr-by-name answered)
	current string        // get-master-addr-by-name's port if not that of fields (a failover's promoted replica)
	delay   time.Duration // before the answer
}

// masterFields returns the fields of SENTINEL MASTER m for a master at
// ip:port named with config epoch epoch, with flags.
func masterFields(ip, port string, epoch int, flags string) []string {
	return []string{"name", "m", "ip", ip, "port", port, "runid", "0123", "flags", flags,
		"config-epoch", strconv.Itoa(epoch), "num-slaves", "1", "quorum", "2"}
}

// epochSentinel starts a fake sentinel that answers its q-th question
// about the master (SENTINEL MASTER, or get-master-addr-by-name as the
// code before asked: the ip and port of the same fields) with reply(q),
// q numbered from 1.
func epochSentinel(t *testing.T, reply func(q int) masterReply) *fakeServer {
	var n atomic.Int64
	return startFake(t, func(c *fakeConn, args []string) {
		sub := ""
		if len(args) == 3 && strings.EqualFold(args[0], "sentinel") {
			sub = strings.ToLower(args[1])
		}
		if sub != "master" && sub != "get-master-addr-by-name" {
			c.write("-ERR unknown command\r\n")
			return
		}
		r := reply(int(n.Add(1)))
		time.Sleep(r.delay)
		if r.fields == nil {
			c.write("-ERR no answer this time\r\n")
			return
		}
		if sub == "master" && r.noperm {
			c.write("-NOPERM User app has no permissions to run the 'sentinel|master' command\r\n")
			return
		}
		if sub == "get-master-addr-by-name" {
			m := map[string]string{}
			for i := 0; i+1 < len(r.fields); i += 2 {
				m[r.fields[i]] = r.fields[i+1]
			}
			port := m["port"]
			if r.current != "" {
				port = r.current
			}
			c.write("*2\r\n" + bulk(m["ip"]) + bulk(port))
			return
		}
		if r.flat || len(r.fields)%2 != 0 {
			c.write("*" + strconv.Itoa(len(r.fields)) + "\r\n")
		} else {
			c.write("%" + strconv.Itoa(len(r.fields)/2) + "\r\n")
		}
		for _, f := range r.fields {
			c.write(bulk(f))
		}
	})
}

// always returns a reply function that gives r every time.
func always(r masterReply) func(int) masterReply { return func(int) masterReply { return r } }

// sentinelBackend returns a Backend on master m through the sentinels at
// addrs, whose questions to them wait grace for the others once one
// answered.
func sentinelBackend(t *testing.T, grace time.Duration, addrs ...string) *Backend {
	t.Helper()
	b := mustOpen(t, "redis://"+strings.Join(addrs, ",")+"/0?sentinel_master=m&timeout=2s")
	b.sentinel.grace = grace
	return b
}

// askMaster asks b's sentinels for the master (within 2s) and fails t on
// an error.
func askMaster(t *testing.T, b *Backend) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addr, err := b.sentinel.masterAddr(ctx)
	if err != nil {
		t.Fatalf("masterAddr: %v", err)
	}
	return addr
}

// TestSentinelStaleFastLoses: during a failover, a sentinel that still
// names the old master (config epoch 1) and answers at once won over two
// that name the promoted replica (epoch 2) 20ms later: the first answer
// was taken, so that the near cache's tracker and the probe went to the
// demoted master (5 questions of 5). The highest config epoch now wins,
// in a RESP3 map or a RESP2 flat array alike.
func TestSentinelStaleFastLoses(t *testing.T) {
	stale := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 1, "master")}))
	fresh := masterFields("127.0.0.1", "7002", 2, "master")
	b := sentinelBackend(t, time.Second, stale.addr(),
		epochSentinel(t, always(masterReply{fields: fresh, delay: 20 * time.Millisecond})).addr(),
		epochSentinel(t, always(masterReply{fields: fresh, flat: true, delay: 20 * time.Millisecond})).addr())
	for i := range 5 {
		if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
			t.Errorf("question %d: masterAddr = %s, the stale sentinel's (epoch 1); want 127.0.0.1:7002 (epoch 2)", i+1, addr)
		}
	}
}

// TestSentinelNoFlipFlop: one sentinel lags and names the old master
// (epoch 1) 20ms late, the other names the new one (epoch 2) at once
// every other question and fails the others: each question went to the
// first answer, the new master, then the old one (only the lagging
// sentinel answered), the tracker flipping between the two (and
// resetting the near cache) every question. The highest epoch seen is now
// kept against an older one that not a majority of the sentinels names.
func TestSentinelNoFlipFlop(t *testing.T) {
	lagging := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 1, "master"), delay: 20 * time.Millisecond}))
	flaky := epochSentinel(t, func(q int) masterReply {
		if q%2 == 0 {
			return masterReply{}
		}
		return masterReply{fields: masterFields("127.0.0.1", "7002", 2, "master")}
	})
	b := sentinelBackend(t, time.Second, lagging.addr(), flaky.addr())
	var got []string
	for range 6 {
		got = append(got, askMaster(t, b))
	}
	for i, addr := range got {
		if addr != "127.0.0.1:7002" {
			t.Errorf("questions answered %v: question %d went to the lagging sentinel's old master; want 127.0.0.1:7002 every time", got, i+1)
			break
		}
	}
}

// TestSentinelEpochTie: sentinels that name different masters with the
// same epoch (a faulty or hostile one among them) are decided by the
// majority, then by the master chosen last, never by which answered
// first: the first answer used to win (127.0.0.1:7001, named by one
// sentinel of three, at once, the two others 20ms later).
func TestSentinelEpochTie(t *testing.T) {
	var outvoted atomic.Bool // the third sentinel fails from now on
	odd := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 4, "master")}))
	even := masterFields("127.0.0.1", "7002", 4, "master")
	b := sentinelBackend(t, time.Second, odd.addr(),
		epochSentinel(t, always(masterReply{fields: even, delay: 20 * time.Millisecond})).addr(),
		epochSentinel(t, func(int) masterReply {
			if outvoted.Load() {
				return masterReply{}
			}
			return masterReply{fields: even, delay: 20 * time.Millisecond}
		}).addr())
	if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
		t.Errorf("two sentinels of three name 127.0.0.1:7002 with epoch 4, one (first) 127.0.0.1:7001: masterAddr = %s, want 127.0.0.1:7002", addr)
	}
	outvoted.Store(true)
	for range 3 {
		if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
			t.Errorf("one sentinel names each master with epoch 4, 127.0.0.1:7002 chosen last: masterAddr = %s, want 127.0.0.1:7002", addr)
		}
	}
}

// TestSentinelRedeployedFleet: a fleet of sentinels redeployed from
// scratch counts its config epochs anew: once all of them (or a majority,
// one of three hung) name a master with an epoch lower than the one seen,
// masterAddr follows them rather than keep the master of the old fleet.
// A lone answer with a lower epoch is not followed (the stale sentinel of
// TestSentinelNoFlipFlop).
func TestSentinelRedeployedFleet(t *testing.T) {
	var fleet atomic.Int64 // 0: the old fleet (epoch 7), 1: redeployed (epoch 0)
	reply := func(int) masterReply {
		if fleet.Load() == 0 {
			return masterReply{fields: masterFields("127.0.0.1", "7001", 7, "master")}
		}
		return masterReply{fields: masterFields("127.0.0.1", "7002", 0, "master")}
	}
	b := sentinelBackend(t, 200*time.Millisecond, epochSentinel(t, reply).addr(), epochSentinel(t, reply).addr(), hungListener(t))
	if addr := askMaster(t, b); addr != "127.0.0.1:7001" {
		t.Fatalf("masterAddr = %s, want 127.0.0.1:7001", addr)
	}
	fleet.Store(1)
	if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
		t.Errorf("two sentinels of three redeployed name 127.0.0.1:7002 with epoch 0: masterAddr = %s, the old fleet's (epoch 7); want 127.0.0.1:7002", addr)
	}
	fleet.Store(0) // the old fleet's epoch 7 is older than nothing now: followed at once
	if addr := askMaster(t, b); addr != "127.0.0.1:7001" {
		t.Errorf("masterAddr = %s, want 127.0.0.1:7001 (epoch 7)", addr)
	}
}

// TestSentinelHungGrace: with one sentinel hung and one answering at
// once, masterAddr waits for the hung one no longer than the grace
// (50ms), and no longer than its context when the grace is longer,
// returning the answer it has, not the context's error.
func TestSentinelHungGrace(t *testing.T) {
	fast := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 3, "master")}))
	b := sentinelBackend(t, sentinelGrace, hungListener(t), fast.addr())
	start := time.Now()
	addr := askMaster(t, b)
	took := time.Since(start)
	t.Logf("hung sentinel and a fast one: %s after %v", addr, took.Round(time.Millisecond))
	if addr != "127.0.0.1:7001" || took > time.Second {
		t.Errorf("masterAddr = %s after %v; want 127.0.0.1:7001 after the grace (%v), well under the 2s question", addr, took, sentinelGrace)
	}

	b.sentinel.grace = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	addr, err := b.sentinel.masterAddr(ctx)
	took = time.Since(start)
	if err != nil || addr != "127.0.0.1:7001" || took > 1500*time.Millisecond {
		t.Errorf("masterAddr with a grace longer than its 200ms context = %q, %v after %v; want 127.0.0.1:7001 when the context ends", addr, err, took)
	}
}

// TestSentinelMalformedIgnored: answers that do not describe a master
// that is up (a non-numeric or missing config epoch, no port, a port out
// of range, flags s_down or o_down, a replica's flags, an odd array) are
// ignored, however high the epoch they claim and however fast: before,
// the first answer to get-master-addr-by-name was taken whatever the
// sentinel thought of the master. With no other answer, the error names
// each sentinel and what was wrong.
func TestSentinelMalformedIgnored(t *testing.T) {
	bad := map[string][]string{
		"no config-epoch": masterFields("127.0.0.1", "7101", 0, "master")[:10], // cut before config-epoch
		`"9x"`:            {"ip", "127.0.0.1", "port", "7102", "flags", "master", "config-epoch", "9x"},
		"no port":         {"ip", "127.0.0.1", "flags", "master", "config-epoch", "9"},
		`"99999"`:         masterFields("127.0.0.1", "99999", 9, "master"),
		"s_down":          masterFields("127.0.0.1", "7105", 9, "master,s_down"),
		"o_down":          masterFields("127.0.0.1", "7106", 9, "master,s_down,o_down"),
		"not a master":    masterFields("127.0.0.1", "7107", 9, "slave"),
		"multiple of 2":   append(masterFields("127.0.0.1", "7108", 9, "master"), "x"),
	}
	var addrs []string
	for _, f := range bad {
		addrs = append(addrs, epochSentinel(t, always(masterReply{fields: f})).addr())
	}
	good := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 1, "master"), delay: 20 * time.Millisecond}))
	b := sentinelBackend(t, time.Second, append(addrs, good.addr())...)
	if addr := askMaster(t, b); addr != "127.0.0.1:7001" {
		t.Errorf("masterAddr = %s; want 127.0.0.1:7001, the one sound answer", addr)
	}

	b = sentinelBackend(t, time.Second, addrs...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addr, err := b.sentinel.masterAddr(ctx)
	t.Logf("only malformed answers: %v", err)
	if err == nil {
		t.Fatalf("masterAddr with only malformed answers = %s; want an error", addr)
	}
	for what := range bad {
		if !strings.Contains(err.Error(), what) {
			t.Errorf("error does not name %s: %v", what, err)
		}
	}
	for _, a := range addrs {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error does not name sentinel %s", a)
		}
	}
	if addr != "" {
		t.Errorf("masterAddr returned an address with its error: %s", addr)
	}
}

// TestSentinelACLNoMaster: sentinels whose ACL user may run
// get-master-addr-by-name (what go-redis's failover client needs) but not
// SENTINEL MASTER still name the master, without an epoch: the master
// most of them name, not the first answer (127.0.0.1:7001, one of three,
// at once). An answer with an epoch wins over those without.
func TestSentinelACLNoMaster(t *testing.T) {
	odd := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7001", 0, "master"), noperm: true}))
	even := masterReply{fields: masterFields("127.0.0.1", "7002", 0, "master"), noperm: true, delay: 20 * time.Millisecond}
	b := sentinelBackend(t, time.Second, odd.addr(), epochSentinel(t, always(even)).addr(), epochSentinel(t, always(even)).addr())
	for range 3 {
		if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
			t.Errorf("SENTINEL MASTER refused; two sentinels of three name 127.0.0.1:7002: masterAddr = %s, want 127.0.0.1:7002", addr)
		}
	}

	epoch := masterReply{fields: masterFields("127.0.0.1", "7003", 1, "master"), delay: 20 * time.Millisecond}
	b = sentinelBackend(t, time.Second, odd.addr(), epochSentinel(t, always(even)).addr(), epochSentinel(t, always(epoch)).addr())
	if addr := askMaster(t, b); addr != "127.0.0.1:7003" {
		t.Errorf("one sentinel gives an epoch, two do not: masterAddr = %s, want 127.0.0.1:7003", addr)
	}
}

// TestSentinelFailoverReconf: from the promotion of a replica until every
// other replica follows it (state reconf_slaves, up to failover-timeout),
// the sentinel leading a failover answers SENTINEL MASTER with the
// demoted master's address and already the new config epoch, and
// get-master-addr-by-name with the promoted replica (Redis 7.0, SENTINEL
// FAILOVER: port 27101, config-epoch 1, flags
// "master,failover_in_progress,force_failover" while
// get-master-addr-by-name named 27102). masterAddr took the demoted
// master (its epoch the highest), where get-master-addr-by-name, asked
// before, named the new one: a lone leader gave the demoted master every
// question of the failover, a leader answering first within the grace
// won ties against the sentinels already following the new master, and
// a failover of a master down was no answer at all (its flags o_down).
// The address of a failover in progress is now the sentinel's current
// one, as get-master-addr-by-name says.
func TestSentinelFailoverReconf(t *testing.T) {
	reconf := append(masterFields("127.0.0.1", "7001", 2, "master,failover_in_progress,force_failover"), "failover-state", "reconf_slaves")
	leader := epochSentinel(t, always(masterReply{fields: reconf, current: "7002"}))
	b := sentinelBackend(t, time.Second, leader.addr())
	for i := range 3 {
		if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
			t.Errorf("question %d: the leader of a failover names 127.0.0.1:7002 by get-master-addr-by-name: masterAddr = %s (the demoted master); want 127.0.0.1:7002", i+1, addr)
		}
	}

	// The leader first to answer, a sentinel that follows the new master
	// (epoch 2) later, the third hung: a tie of one to one, nothing chosen
	// before, went to the lower address, the demoted master's.
	follower := epochSentinel(t, always(masterReply{fields: masterFields("127.0.0.1", "7002", 2, "master"), delay: 20 * time.Millisecond}))
	b = sentinelBackend(t, 200*time.Millisecond, leader.addr(), follower.addr(), hungListener(t))
	for i := range 3 {
		if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
			t.Errorf("question %d with a follower: masterAddr = %s; want 127.0.0.1:7002", i+1, addr)
		}
	}

	// A failover of a master that is down: flags o_down.
	down := append(masterFields("127.0.0.1", "7001", 2, "master,s_down,o_down,failover_in_progress"), "failover-state", "reconf_slaves")
	b = sentinelBackend(t, time.Second, epochSentinel(t, always(masterReply{fields: down, current: "7002"})).addr())
	if addr := askMaster(t, b); addr != "127.0.0.1:7002" {
		t.Errorf("failover of a master down: masterAddr = %s; want 127.0.0.1:7002", addr)
	}

	// Before the promotion get-master-addr-by-name still names the master
	// that is down: no answer, as without a failover.
	early := append(masterFields("127.0.0.1", "7001", 1, "master,s_down,o_down,failover_in_progress"), "failover-state", "wait_promotion")
	b = sentinelBackend(t, time.Second, epochSentinel(t, always(masterReply{fields: early})).addr())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if addr, err := b.sentinel.masterAddr(ctx); err == nil || !strings.Contains(err.Error(), "o_down") {
		t.Errorf("failover before the promotion, master down: masterAddr = %q, %v; want an error naming its flags", addr, err)
	}
}
