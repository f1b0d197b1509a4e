package testserver

import (
	"flag"
	"strconv"
)

// DefaultParallel makes n the -test.parallel of the test binary calling
// it (from TestMain, before m.Run), unless the command line gives one: for
// packages whose parallel tests mostly wait (on a server's clock, on
// expiry), which at the default (GOMAXPROCS) queue behind each other with
// the CPUs idle.
func DefaultParallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
