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
	"strconv"
	"strings"
	"time"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/codec"
	"github.com/memdict/memdict/tool"
)

var dumpCmd = &command{
	name: "dump", nargs: 0,
	summary: "write the Dict's keys and values as JSON Lines",
	help: `
Writes one JSON object a line for each key of the Dict (--prefix):

  {"key":"cart:42","codec":"msgpack","value":{"items":[1,2,3]}}
  {"key":"logo","codec":"raw","base64":"iVBORw0KGgo..."}

"value" is the value decoded with its codec; values that cannot be shown
as JSON (binary strings, gob, unknown codecs), or whose JSON would make a
line longer than load reads, are in "base64", encoded as stored. A key
that is not UTF-8 is in "key_base64" as well, from which load reads it. --exact
writes every value in "base64", so that load writes back the very bytes
(JSON cannot tell an int from a float, for example). TTLs are not kept:
load gives values the plugin's expiration, or --ttl.

On memcached, keys are listed by the server's crawler (lru_crawler
metadump, memcached 1.6 or later), whose dump is read whole (to memory, or a
temporary file past 16 MiB of keys) before any value is read, so that the
listing never holds the server up. It is a snapshot taken while the server
runs: keys written or moved during the crawl may be missed, so dump a
namespace once its writers are quiet, and compare the counts ("memdict
keys | wc -l").

Values are read 100 keys at a time. A batch (or the listing) that fails is
tried again, up to --retries times, waiting --retry-wait, then twice as
long each time. If it still fails, dump stops with an error that says how
many records were written: the output holds only whole records, and
"dump -o FILE --resume" continues where it stopped, keeping the records
FILE holds (a cut last line is dropped) and adding the missing keys.

A progress line is shown on stderr (redrawn on a terminal, one line every
10 seconds otherwise), and a summary line when the dump is done. Use with
load to move a namespace between backends:

Examples:
  memdict dump --prefix shop > shop.jsonl
  memdict dump --prefix shop -o shop.jsonl --resume
  memdict dump --prefix shop --exact --url memcached://10.0.0.5:11211 |
    memdict load --prefix shop --url redis://10.0.0.6:6379/0`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("exact", false, "write every value as its stored bytes, in base64")
		fs.String("o", "", "write to `file` instead of standard output")
		fs.Bool("resume", false, "continue an interrupted dump into the -o file: keep its records, add the missing keys")
		retryFlags(fs)
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		exact := boolFlag(fs, "exact")
		resume := boolFlag(fs, "resume")
		name := fs.Lookup("o").Value.String()
		rt, err := newRetrier(fs)
		if err != nil {
			return e.fail("dump", err)
		}
		if resume && name == "" {
			return e.fail("dump", usagef("--resume continues the dump in the -o file: give -o FILE"))
		}
		out := e.stdout
		where := "standard output"
		done := map[string]bool{} // keys the output already holds
		var file *os.File
		if name != "" {
			where = name
			if !resume {
				if file, err = os.Create(name); err != nil {
					return e.fail("dump", err)
				}
				out = file
			}
		}
		kept := 0
		code := e.withDicts(ctx, "dump", func(ds *dictSet) int {
			maxLine := maxRecordLine(ds.info)
			if resume {
				// Within withDicts: the records the file may hold are
				// bounded by the plugin's limits.
				if file, err = reopenDump(name, done, ds.info); err != nil {
					return e.fail("dump", err)
				}
				out = file
				kept = len(done)
			}
			start := time.Now()
			bw := bufio.NewWriter(out)
			prog := newProgress(e.stderr, "dump", "written", 0)
			rt.prog = prog
			n := 0
			// stop ends the dump on err, with the output whole up to its
			// last record, and says how to go on.
			stop := func(err error) int {
				ferr := bw.Flush()
				prog.end()
				how := "run the same command with --resume to continue"
				if name == "" {
					how = "to continue, run dump with -o FILE --resume on a file holding that output"
				}
				if ferr != nil {
					err = fmt.Errorf("%w; writing the output: %w", err, ferr)
				}
				return e.fail("dump", fmt.Errorf("%w; %s written to %s, each complete; %s", err, records(kept+n), where, how))
			}
			var batch []string
			inBatch := map[string]bool{}
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				var m map[string]stored
				err := rt.do(ctx, fmt.Sprintf("reading %d values", len(batch)), func() error {
					var err error
					m, err = ds.getMulti(ctx, batch)
					return err
				})
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
					if len(b)+1 > maxLine && r.Value != nil {
						// A value whose JSON form is longer than load
						// reads (a pickle that repeats an object, say)
						// is written as its stored bytes.
						if r, err = newRecord(k, s, true); err != nil {
							return fmt.Errorf("key %s: %w", quoteKey(k), err)
						}
						if b, err = marshalJSON(r); err != nil {
							return err
						}
					}
					bw.Write(b)
					bw.WriteByte('\n')
					done[k] = true
					n++
				}
				// Whole records reach the output batch by batch, so that a
				// later failure leaves them all behind.
				if err := bw.Flush(); err != nil {
					return err
				}
				prog.update(kept+n, 0)
				batch = batch[:0]
				clear(inBatch)
				return nil
			}
			// The listing is started again after a failure, skipping the
			// keys already written.
			err := rt.do(ctx, "listing the keys", func() error {
				for k, err := range ds.d.Keys(ctx) {
					if err != nil {
						return err
					}
					if done[k] || inBatch[k] {
						continue
					}
					batch = append(batch, k)
					inBatch[k] = true
					if len(batch) == 100 {
						if err := flush(); err != nil {
							return permanent(err) // flush has retried
						}
					}
				}
				return nil
			})
			if err == nil {
				err = flush()
			}
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				return stop(err)
			}
			prog.end()
			msg := fmt.Sprintf("%s written to %s in %v", records(n), where, time.Since(start).Round(time.Millisecond))
			if resume && kept > 0 {
				msg += fmt.Sprintf(", after the %d it held", kept)
			}
			fmt.Fprintf(e.stderr, "memdict dump: %s%s\n", msg, rt.summary())
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

// reopenDump opens the dump file name to add to it: it records the keys of
// its whole records in done, cuts off a last line that is not one (an
// interrupted write), and returns the file positioned at its end. A file
// that does not exist is created. A line longer than a record of the
// plugin info's values takes (maxRecordLine) is an error, found without
// reading the line whole.
func reopenDump(name string, done map[string]bool, info tool.PluginInfo) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	maxLine := maxRecordLine(info)
	br := bufio.NewReaderSize(f, 64<<10)
	var good int64 // end of the last whole record
	for line := 1; ; line++ {
		b, err := readLine(br, maxLine)
		if errors.Is(err, errLineTooLong) {
			f.Close()
			return nil, fmt.Errorf("--resume: %s:%d is longer than %d bytes, more than a record of a value of at most %s; not adding to it",
				name, line, maxLine, valueLimitText(info))
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			var r record
			if jerr := json.Unmarshal(b, &r); jerr != nil {
				if len(bytes.TrimSpace(b)) == 0 {
					good += int64(len(b))
					continue
				}
				f.Close()
				return nil, fmt.Errorf("--resume: %s:%d is not a dump record (%v); not adding to it", name, line, jerr)
			}
			k, kerr := r.key()
			if kerr != nil {
				f.Close()
				return nil, fmt.Errorf("--resume: %s:%d: %v; not adding to it", name, line, kerr)
			}
			done[k] = true
			good += int64(len(b))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

var loadCmd = &command{
	name: "load", args: "[FILE]", nargs: -1,
	summary: "store the keys and values of a dump (JSON Lines)",
	help: `
Reads what dump writes, from FILE or standard input, and stores every
value under its key in the Dict (--prefix), each with the codec it was
dumped with, so that the application reads it back as before. Values get
the plugin's expiration, or --ttl. A bad line stops the load with an error
naming the line; values written before it stay, and --skip continues.
Values that memdict did not write (codec "none") are skipped with a
warning. A line is at most what a record of the plugin's largest value
takes (6 times max_key_length and max_value_length together, and 1 KiB;
a plugin without max_value_length counts 64 MiB): a longer one is a bad
line, refused without being read whole.

A value that cannot be stored is tried again, up to --retries times,
waiting --retry-wait, then twice as long each time. If it still fails,
load stops with an error that says how many lines were done, and
"load --skip N" continues after them.

load refuses to write to the built-in in-memory backend (no
configuration), where the values would be gone when the command ends,
unless --mem is given.

A progress line is shown on stderr (a bar redrawn on a terminal, one line
every 10 seconds otherwise), and a summary line when the load is done.

Examples:
  memdict load --prefix shop shop.jsonl
  memdict load --prefix shop --skip 3700 shop.jsonl
  memdict load --prefix shop --url redis://127.0.0.1:6379/0 < shop.jsonl
  memdict load --prefix shop --ttl 24h shop.jsonl`,
	flags: func(fs *flag.FlagSet) {
		ttlFlag(fs, "time to live of the stored values: `seconds` or a duration; 0: the plugin's expiration")
		fs.Int("skip", 0, "skip the first `n` lines of the input (those an interrupted load did)")
		fs.Bool("mem", false, "write even to the in-memory backend, whose data is gone when the command ends")
		retryFlags(fs)
	},
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 1 {
			return e.fail("load", usagef("want at most one FILE, got %d arguments", len(args)))
		}
		ttl, err := ttlOf(fs)
		if err != nil {
			return e.fail("load", err)
		}
		if ttl < 0 {
			return e.fail("load", usagef("--ttl must not be negative"))
		}
		skip := fs.Lookup("skip").Value.(flag.Getter).Get().(int)
		if skip < 0 {
			return e.fail("load", usagef("--skip must not be negative"))
		}
		rt, err := newRetrier(fs)
		if err != nil {
			return e.fail("load", err)
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
			if err := e.needDurable("load", boolFlag(fs, "mem")); err != nil {
				return e.fail("load", err)
			}
			start := time.Now()
			cr := &countingReader{r: in}
			br := bufio.NewReaderSize(cr, 64<<10)
			prog := newProgress(e.stderr, "load", "stored", total)
			rt.prog = prog
			maxLine := maxRecordLine(ds.info)
			n, skipped := 0, 0
			line := 0
			for {
				done := line // lines read whole
				var b []byte
				var err error
				if line < skip {
					var k int64
					k, err = skipLine(br)
					if k > 0 {
						line++
					}
				} else {
					b, err = readLine(br, maxLine)
					if len(b) > 0 || errors.Is(err, errLineTooLong) {
						line++
					}
				}
				switch {
				case errors.Is(err, errLineTooLong):
					prog.end()
					return e.fail("load", fmt.Errorf("line %d is longer than %d bytes, more than a record of a value of at most %s; "+
						"%d lines done (%s stored by this run): fix the line and run the same command with --skip %d, or pass over it with --skip %d",
						line, maxLine, valueLimitText(ds.info), done, records(n), done, line))
				case err != nil && !errors.Is(err, io.EOF):
					// Not a bad line: the input could not be read.
					prog.end()
					return e.fail("load", fmt.Errorf("reading line %d of the input: %w; %d lines done (%s stored by this run), "+
						"run the same command with --skip %d to continue", done+1, err, done, records(n), max(done, skip)))
				}
				if line > skip && len(bytes.TrimSpace(b)) > 0 {
					r, c, p, lerr := parseLine(b)
					if lerr == nil && c != nil {
						lerr = rt.do(ctx, "storing key "+quoteKey(r.Key), func() error {
							return ds.put(ctx, r.Key, c.ID(), p, 0, opts...)
						})
						if lerr != nil {
							prog.end()
							return e.fail("load", fmt.Errorf("line %d: %w; %d lines done (%s stored by this run), "+
								"run the same command with --skip %d to continue", line, lerr, line-1, records(n), line-1))
						}
					}
					if lerr != nil {
						prog.end()
						return e.fail("load", fmt.Errorf("line %d: %w; %d lines done (%s stored by this run): "+
							"fix the line and run the same command with --skip %d, or pass over it with --skip %d",
							line, lerr, line-1, records(n), line-1, line))
					}
					if c != nil {
						n++
					} else {
						skipped++
					}
					prog.update(n, cr.n-int64(br.Buffered()))
				}
				if err != nil { // io.EOF
					break
				}
			}
			prog.end()
			if skipped > 0 {
				fmt.Fprintf(e.stderr, "memdict load: skipped %d value(s) that memdict did not write (codec \"none\")\n", skipped)
			}
			msg := fmt.Sprintf("%s stored in %v", records(n), time.Since(start).Round(time.Millisecond))
			if skip > 0 {
				msg += fmt.Sprintf(", after skipping %d lines", min(skip, line))
			}
			fmt.Fprintf(e.stderr, "memdict load: %s%s\n", msg, rt.summary())
			if e.json {
				_ = printJSON(e.stdout, map[string]int{"loaded": n, "skipped": skipped}, true)
			}
			return exitOK
		})
	},
}

// maxUnlimitedValue bounds a value of a plugin without a max_value_length
// (0: no limit) where load and put read it, as memdict's Dicts bound what
// such a value decompresses to.
const maxUnlimitedValue = 64 << 20

// valueLimit returns the most bytes a value of the plugin info takes: its
// max_value_length, or maxUnlimitedValue if it has none.
func valueLimit(info tool.PluginInfo) int {
	if info.MaxValueLen > 0 {
		return info.MaxValueLen
	}
	return maxUnlimitedValue
}

// valueLimitText describes valueLimit for errors.
func valueLimitText(info tool.PluginInfo) string {
	if info.MaxValueLen > 0 {
		return fmt.Sprintf("%d bytes (plugin %s's max_value_length)", info.MaxValueLen, info.Name)
	}
	return fmt.Sprintf("%d bytes (memdict's bound on a plugin without max_value_length)", maxUnlimitedValue)
}

// maxRecordLine returns the length of the longest line, its newline
// included, that a dump record of a value of the plugin info takes; load
// and dump --resume refuse longer lines before reading them whole, and
// dump writes a value whose JSON form is longer in base64.
//
// A key is at most max_key_length bytes, or hashed and then kept in the
// value, whose max_value_length counts it: key and payload take at most
// both limits together (a plugin without max_key_length is given its
// value limit again). In a line, a byte of them takes at most 6 (a
// control byte in a JSON string, \u00XX; base64 takes 4/3, and a "value"
// longer than this is written in base64), and the rest of the record
// ({"key":…,"codec":…,"flags":…,"base64":…}) well under 1 KiB.
func maxRecordLine(info tool.PluginInfo) int {
	v := valueLimit(info)
	k := info.MaxKeyLen
	if k <= 0 {
		k = v
	}
	return 6*(k+v) + 1<<10
}

// errLineTooLong is readLine's error for a line longer than its limit.
var errLineTooLong = errors.New("line too long")

// readLine returns the next line of br, its newline included (none at the
// end of the input, where the error is io.EOF). A line longer than max
// bytes is errLineTooLong, returned once max bytes and less than br's
// buffer size more are read: the line is neither kept nor read to its end.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// skipLine reads past the next line of br, whatever its length, without
// keeping it, and returns how many bytes it took (0 at the end of the
// input, where the error is io.EOF).
func skipLine(br *bufio.Reader) (int64, error) {
	var n int64
	for {
		frag, err := br.ReadSlice('\n')
		n += int64(len(frag))
		if err != bufio.ErrBufferFull {
			return n, err
		}
	}
}

// parseLine decodes the record on one line into its key, codec and
// payload; c is nil for a record that is skipped (codec "none").
func parseLine(line []byte) (r record, c codec.Codec, p []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, nil, nil, fmt.Errorf("not a dump record: %w", err)
	}
	// What follows the record on its line is no part of it: another
	// record run into it (a dump whose newline was lost) would otherwise
	// be dropped unseen.
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return r, nil, nil, fmt.Errorf("not a dump record: %.40q follows the record on its line", rest)
	}
	if r.Key, err = r.key(); err != nil {
		return r, nil, nil, err
	}
	r.KeyBase64 = ""
	if r.Codec == "none" {
		return r, nil, nil, nil
	}
	c, ok := codec.ByName(r.Codec)
	if !ok {
		return r, nil, nil, fmt.Errorf("key %s: unknown codec %q (known: %s)", quoteKey(r.Key), r.Codec, strings.Join(codec.Names(), ", "))
	}
	switch {
	case r.Base64 != "" && r.Value != nil:
		return r, nil, nil, fmt.Errorf("key %s: both \"value\" and \"base64\"", quoteKey(r.Key))
	case r.Value != nil:
		v, err := parseJSONValue(r.Value)
		if err != nil {
			return r, nil, nil, fmt.Errorf("key %s: %w", quoteKey(r.Key), err)
		}
		if c.ID() == codec.RawID {
			s, ok := v.(string)
			if !ok {
				return r, nil, nil, fmt.Errorf("key %s: a raw value must be a JSON string", quoteKey(r.Key))
			}
			p = []byte(s)
		} else if p, err = c.Marshal(v); err != nil {
			return r, nil, nil, fmt.Errorf("key %s: %w: %s: %w", quoteKey(r.Key), memdict.ErrEncode, c.Name(), err)
		}
	default: // base64, possibly empty (an empty string or []byte)
		if p, err = base64.StdEncoding.DecodeString(r.Base64); err != nil {
			return r, nil, nil, fmt.Errorf("key %s: bad base64: %w", quoteKey(r.Key), err)
		}
	}
	return r, c, p, nil
}

// retryFlags registers the flags of newRetrier.
func retryFlags(fs *flag.FlagSet) {
	fs.Int("retries", 5, "try a failed batch again up to `n` times before giving up")
	fs.Duration("retry-wait", 250*time.Millisecond, "wait this `long` before the first retry, twice as long before each next one (at most 10s)")
}

// maxRetryWait bounds the wait between two attempts.
const maxRetryWait = 10 * time.Second

// retrier runs a step of dump or load again after a transient failure,
// with exponential backoff.
type retrier struct {
	retries int
	wait    time.Duration
	prog    *progress // notes go through it, so that they end its line
	count   int       // retries made, for the summary
}

func newRetrier(fs *flag.FlagSet) (*retrier, error) {
	r := &retrier{
		retries: fs.Lookup("retries").Value.(flag.Getter).Get().(int),
		wait:    fs.Lookup("retry-wait").Value.(flag.Getter).Get().(time.Duration),
	}
	if r.retries < 0 {
		return nil, usagef("--retries must not be negative")
	}
	if r.wait < 0 {
		return nil, usagef("--retry-wait must not be negative")
	}
	return r, nil
}

// permanentError marks an error that do must not retry.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// permanent wraps err so that retrier.do returns it at once.
func permanent(err error) error { return permanentError{err} }

// retryable reports whether trying again may help.
func retryable(ctx context.Context, err error) bool {
	var p permanentError
	switch {
	case ctx.Err() != nil, errors.As(err, &p):
		return false
	case errors.Is(err, memdict.ErrNotSupported), errors.Is(err, memdict.ErrInvalidKey),
		errors.Is(err, memdict.ErrValueTooLarge), errors.Is(err, memdict.ErrEncode),
		errors.Is(err, memdict.ErrDecode), errors.Is(err, memdict.ErrClosed):
		return false
	}
	var ue *usageError
	return !errors.As(err, &ue)
}

// do runs step until it succeeds, fails for good, or has failed
// 1+retries times; what names the step in notes and in the error.
func (r *retrier) do(ctx context.Context, what string, step func() error) error {
	wait := r.wait
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil {
			return nil
		}
		if !retryable(ctx, err) {
			var p permanentError
			if errors.As(err, &p) {
				return p.err
			}
			return err
		}
		if attempt > r.retries {
			n := "1 attempt"
			if attempt > 1 {
				n = strconv.Itoa(attempt) + " attempts"
			}
			return fmt.Errorf("%s: %w (gave up after %s)", what, err, n)
		}
		r.count++
		r.prog.note("%s failed (attempt %d of %d), trying again in %v: %v", what, attempt, r.retries+1, wait, err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// summary returns ", after N retries" for the summary line, or "".
func (r *retrier) summary() string {
	switch r.count {
	case 0:
		return ""
	case 1:
		return ", after 1 retry"
	}
	return fmt.Sprintf(", after %d retries", r.count)
}

// records returns "1 record" or "n records".
func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return strconv.Itoa(n) + " records"
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

// progress shows how far dump or load is, on stderr: on a terminal a line
// redrawn at most ten times a second, elsewhere one line every
// progressEvery. Every line it leaves ends with a newline (end).
type progress struct {
	w     io.Writer
	tty   bool
	cmd   string // "dump", "load"
	verb  string // "written", "stored"
	total int64  // bytes, 0 if unknown
	last  time.Time
	drawn bool // a terminal line is drawn and not ended
}

// progressEvery is how often progress writes a line when stderr is not a
// terminal (a variable for tests).
var progressEvery = 10 * time.Second

func newProgress(w io.Writer, cmd, verb string, total int64) *progress {
	return &progress{w: w, tty: isTerminal(w), cmd: cmd, verb: verb, total: total, last: time.Now()}
}

// isTerminal reports whether w is a terminal: a character device other
// than the null device (stdin or stderr redirected to /dev/null, as under
// cron or systemd, is no terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// update shows n records done and, if the total is known, pos bytes of it.
func (p *progress) update(n int, pos int64) {
	if p.tty {
		if time.Since(p.last) < 100*time.Millisecond {
			return
		}
		p.last = time.Now()
		p.draw(n, pos)
		return
	}
	if time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "memdict %s: %s %s so far\n", p.cmd, records(n), p.verb)
}

func (p *progress) draw(n int, pos int64) {
	p.drawn = true
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %s", p.verb, records(n))
		return
	}
	const width = 30
	frac := min(float64(pos)/float64(p.total), 1)
	done := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s %s", strings.Repeat("#", done), strings.Repeat(".", width-done), 100*frac, p.verb, records(n))
}

// note writes a line of its own, ending the progress line first.
func (p *progress) note(format string, args ...any) {
	p.end()
	fmt.Fprintf(p.w, "memdict %s: %s\n", p.cmd, printable(fmt.Sprintf(format, args...)))
}

// end ends a progress line drawn on a terminal with a newline.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
