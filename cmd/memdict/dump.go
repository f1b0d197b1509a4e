package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/codec"
)

var dumpCmd = &command{
	name: "dump", nargs: 0,
	summary: "write the Dict's keys and values as JSON Lines",
	help: `
Writes one JSON object a line for each key of the Dict (--prefix):

  {"key":"cart:42","codec":"msgpack","value":{"items":[1,2,3]}}
  {"key":"logo","codec":"raw","base64":"iVBORw0KGgo..."}

"value" is the value decoded with its codec; values that cannot be shown
as JSON (binary strings, gob, unknown codecs) are in "base64", encoded as
stored. --exact writes every value in "base64", so that load writes back
the very bytes (JSON cannot tell an int from a float, for example). TTLs
are not kept: load gives values the plugin's expiration, or --ttl.

On memcached, keys are listed by a crawl of the server's LRU lists
(lru_crawler metadump, memcached 1.6 or later), a snapshot taken while the
server runs: keys written or moved during the crawl may be missed, so dump
a namespace once its writers are quiet, and compare the counts ("memdict
keys | wc -l").

A progress count is shown on stderr when it is a terminal. Use with load
to move a namespace between backends:

Examples:
  memdict dump --prefix shop > shop.jsonl
  memdict dump --prefix shop --exact --url memcached://10.0.0.5:11211 |
    memdict load --prefix shop --url redis://10.0.0.6:6379/0`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("exact", false, "write every value as its stored bytes, in base64")
		fs.String("o", "", "write to `file` instead of standard output")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		exact := fs.Lookup("exact").Value.String() == "true"
		out := e.stdout
		var file *os.File
		if name := fs.Lookup("o").Value.String(); name != "" {
			f, err := os.Create(name)
			if err != nil {
				return e.fail("dump", err)
			}
			file, out = f, f
		}
		code := e.withDicts(ctx, "dump", func(ds *dictSet) int {
			bw := bufio.NewWriter(out)
			prog := newProgress(e.stderr, "dumped", 0)
			n := 0
			var batch []string
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				m, err := ds.getMulti(ctx, batch)
				if err != nil {
					return err
				}
				for _, k := range batch {
					s, ok := m[k]
					if !ok {
						continue // removed since it was listed
					}
					r, err := newRecord(k, s, exact)
					if err != nil {
						return fmt.Errorf("key %s: %w", quoteKey(k), err)
					}
					b, err := marshalJSON(r)
					if err != nil {
						return err
					}
					bw.Write(b)
					bw.WriteByte('\n')
					n++
				}
				prog.update(n, 0)
				batch = batch[:0]
				return nil
			}
			for k, err := range ds.d.Keys(ctx) {
				if err != nil {
					prog.done(n)
					return e.fail("dump", err)
				}
				batch = append(batch, k)
				if len(batch) == 100 {
					if err := flush(); err != nil {
						prog.done(n)
						return e.fail("dump", err)
					}
				}
			}
			err := flush()
			if err == nil {
				err = bw.Flush()
			}
			prog.done(n)
			if err != nil {
				return e.fail("dump", err)
			}
			return exitOK
		})
		if file != nil {
			// A write error may show only when the file is closed.
			if err := file.Close(); err != nil && code == exitOK {
				return e.fail("dump", err)
			}
		}
		return code
	},
}

var loadCmd = &command{
	name: "load", args: "[FILE]", nargs: -1,
	summary: "store the keys and values of a dump (JSON Lines)",
	help: `
Reads what dump writes, from FILE or standard input, and stores every
value under its key in the Dict (--prefix), each with the codec it was
dumped with, so that the application reads it back as before. Values get
the plugin's expiration, or --ttl. A bad line stops the load with an error
naming the line; values written before it stay. Values that memdict did
not write (codec "none") are skipped with a warning.

A progress bar is shown on stderr when it is a terminal.

Examples:
  memdict load --prefix shop shop.jsonl
  memdict load --prefix shop --url redis://127.0.0.1:6379/0 < shop.jsonl
  memdict load --prefix shop --ttl 24h shop.jsonl`,
	flags: func(fs *flag.FlagSet) {
		fs.Duration("ttl", 0, "time to live of the stored values; 0: the plugin's expiration")
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 1 {
			return e.fail("load", usagef("want at most one FILE, got %d arguments", len(args)))
		}
		ttl := fs.Lookup("ttl").Value.(flag.Getter).Get().(time.Duration)
		if ttl < 0 {
			return e.fail("load", usagef("--ttl must not be negative"))
		}
		var opts []memdict.ItemOption
		if ttl > 0 {
			opts = append(opts, memdict.TTL(ttl))
		}
		in := e.stdin
		if len(args) == 1 && args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return e.fail("load", err)
			}
			defer f.Close()
			in = f
		}
		var total int64
		if f, ok := in.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				total = st.Size()
			}
		}
		return e.withDicts(ctx, "load", func(ds *dictSet) int {
			cr := &countingReader{r: in}
			br := bufio.NewReaderSize(cr, 64<<10)
			prog := newProgress(e.stderr, "loaded", total)
			n, skipped := 0, 0
			for line := 1; ; line++ {
				b, err := br.ReadBytes('\n')
				if len(bytes.TrimSpace(b)) > 0 {
					stored, lerr := loadLine(ctx, ds, b, opts)
					if lerr != nil {
						prog.done(n)
						return e.fail("load", fmt.Errorf("line %d: %w", line, lerr))
					}
					if stored {
						n++
					} else {
						skipped++
					}
					prog.update(n, cr.n-int64(br.Buffered()))
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					prog.done(n)
					return e.fail("load", err)
				}
			}
			prog.done(n)
			if skipped > 0 {
				fmt.Fprintf(e.stderr, "memdict load: skipped %d value(s) that memdict did not write (codec \"none\")\n", skipped)
			}
			if e.json {
				_ = printJSON(e.stdout, map[string]int{"loaded": n, "skipped": skipped}, true)
			}
			return exitOK
		})
	},
}

// loadLine stores the record on one line; stored is false for a record
// that is skipped.
func loadLine(ctx context.Context, ds *dictSet, line []byte, opts []memdict.ItemOption) (stored bool, err error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return false, fmt.Errorf("not a dump record: %w", err)
	}
	if r.Codec == "none" {
		return false, nil
	}
	c, ok := codec.ByName(r.Codec)
	if !ok {
		return false, fmt.Errorf("key %s: unknown codec %q (known: %s)", quoteKey(r.Key), r.Codec, strings.Join(codec.Names(), ", "))
	}
	var p []byte
	switch {
	case r.Base64 != "" && r.Value != nil:
		return false, fmt.Errorf("key %s: both \"value\" and \"base64\"", quoteKey(r.Key))
	case r.Value != nil:
		v, err := parseJSONValue(r.Value)
		if err != nil {
			return false, fmt.Errorf("key %s: %w", quoteKey(r.Key), err)
		}
		if c.ID() == codec.RawID {
			s, ok := v.(string)
			if !ok {
				return false, fmt.Errorf("key %s: a raw value must be a JSON string", quoteKey(r.Key))
			}
			p = []byte(s)
		} else if p, err = c.Marshal(v); err != nil {
			return false, fmt.Errorf("key %s: %w: %s: %w", quoteKey(r.Key), memdict.ErrEncode, c.Name(), err)
		}
	default: // base64, possibly empty (an empty string or []byte)
		if p, err = base64.StdEncoding.DecodeString(r.Base64); err != nil {
			return false, fmt.Errorf("key %s: bad base64: %w", quoteKey(r.Key), err)
		}
	}
	if err := ds.put(ctx, r.Key, c.ID(), p, opts...); err != nil {
		return false, err
	}
	return true, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress draws a progress line on a terminal, at most ten times a
// second; on anything else it draws nothing.
type progress struct {
	w     io.Writer // nil when not a terminal
	verb  string
	total int64 // bytes, 0 if unknown
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, verb string, total int64) *progress {
	p := &progress{verb: verb, total: total}
	if isTerminal(w) {
		p.w = w
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update shows n items done and, if the total is known, pos bytes of it.
func (p *progress) update(n int, pos int64) {
	if p.w == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(n, pos)
}

func (p *progress) draw(n int, pos int64) {
	p.drawn = true
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %d keys", p.verb, n)
		return
	}
	const width = 30
	frac := min(float64(pos)/float64(p.total), 1)
	done := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s %d keys", strings.Repeat("#", done), strings.Repeat(".", width-done), 100*frac, p.verb, n)
}

// done ends the progress line with the final count.
func (p *progress) done(n int) {
	if p.w == nil {
		return
	}
	p.draw(n, p.total)
	fmt.Fprintln(p.w)
}
