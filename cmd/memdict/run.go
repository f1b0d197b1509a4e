package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/memdict/memdict/backend"
	"github.com/memdict/memdict/tool"
)

// Exit codes.
const (
	exitOK    = 0 // success
	exitMiss  = 1 // get or del of an absent key
	exitUsage = 2 // bad command line
	exitError = 3 // anything else: configuration, backend unreachable, ...
)

// env is what a command runs with: its streams and the global options.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	config string // --config
	plugin string // --plugin
	prefix string // --prefix
	// prefixSet: --prefix was given before the command (the command's
	// own flag set records it after).
	prefixSet bool
	url       string // --url
	json      bool   // --json

	secrets []string // configured URLs, whose passwords errors must not show

	// Set by loadConfig for the chosen plugin (--plugin):
	// fallback: nothing configures it (no --config, $MEMDICT_CONFIG file
	// entry, --url or $MEMDICT_URL), so it is the built-in in-memory
	// default; inMemory: its URL is mem://, whether by default or not.
	fallback, inMemory bool
	chosenURL          string // its URL, password included
	noted              bool   // the fallback note was printed
	configFile         string // the configuration file read (--config or $MEMDICT_CONFIG), if any
}

// command is one subcommand.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string
	help    string // long help with examples
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int
	// noTool: the command does not open the configuration (version).
	noTool bool
	// nargs is the number of positional arguments, -1 for any.
	nargs int
}

// usageError is a bad command line: it makes run exit with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

var commands []*command

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// globalFlags registers the options every command takes.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.config, "config", e.config, "configuration `file` (.yaml, .yml, .json); default: $MEMDICT_CONFIG, else the built-in default (mem://)")
	fs.StringVar(&e.plugin, "plugin", e.plugin, "plugin `path` (\"default\", \"sessions\"; ERP5's \"portal_memcached/<name>\" too); \"\" is the default plugin")
	fs.StringVar(&e.prefix, "prefix", e.prefix, "the Dict's key `prefix` (ERP5's key_prefix)")
	fs.StringVar(&e.url, "url", e.url, "use this backend `URL` for the chosen plugin instead of the configured one (memcached://h:11211, redis://h:6379/0, ...)")
	fs.BoolVar(&e.json, "json", e.json, "print JSON, for scripts")
}

// run is the whole command: main only adds the process's streams, its
// environment and a context cancelled by SIGINT/SIGTERM. It returns the
// exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdin, stdout, stderr, os.Getenv)
}

func runEnv(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	out := &outWriter{w: stdout}
	e := &env{stdin: stdin, stdout: out, stderr: stderr, getenv: getenv}
	top := flag.NewFlagSet("memdict", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	e.globalFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			topUsage(stdout, top)
			return exitOK
		}
		fmt.Fprintf(stderr, "memdict: %v\nRun 'memdict --help' for usage.\n", err)
		return exitUsage
	}
	top.Visit(func(f *flag.Flag) { e.prefixSet = e.prefixSet || f.Name == "prefix" })
	rest := top.Args()
	if len(rest) == 0 {
		topUsage(stderr, top)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := findCommand(rest[1]); c != nil {
				fs := e.flagSet(c)
				commandUsage(stdout, c, fs)
				return exitOK
			}
		}
		topUsage(stdout, top)
		return exitOK
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(stderr, "memdict: unknown command %q\nRun 'memdict --help' for the list of commands.\n", name)
		return exitUsage
	}
	fs := e.flagSet(c)
	pos, err := parseInterspersed(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, c, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "memdict %s: %v\nRun 'memdict %s --help' for usage.\n", c.name, err, c.name)
		return exitUsage
	}
	if c.nargs >= 0 && len(pos) != c.nargs {
		fmt.Fprintf(stderr, "memdict %s: want %d argument(s) (%s), got %d\nRun 'memdict %s --help' for usage.\n",
			c.name, c.nargs, c.args, len(pos), c.name)
		return exitUsage
	}
	code := c.run(ctx, e, fs, pos)
	if out.err != nil && (code == exitOK || code == exitMiss) {
		// The output is cut (a full disk, a closed pipe): not a success.
		fmt.Fprintf(stderr, "memdict %s: writing the output: %v\n", c.name, out.err)
		return exitError
	}
	return code
}

// outWriter is a command's standard output: it keeps the first write
// error, after which it writes nothing more, so that a command whose
// output could not be written fails even where it does not check each
// write (runEnv).
type outWriter struct {
	w   io.Writer
	err error
}

// outputFailed reports whether a write to the command's standard output
// failed: a listing then stops.
func (e *env) outputFailed() bool {
	o, ok := e.stdout.(*outWriter)
	return ok && o.err != nil
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	o.err = err
	return n, err
}

// flagSet returns c's flags: its own and the global ones.
func (e *env) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("memdict "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	if !c.noTool {
		e.globalFlags(fs)
	}
	return fs
}

// parseInterspersed parses flags that may come after positional arguments
// ("memdict get KEY --json"); "--" ends the flags, so that a positional
// argument may start with "-" ("memdict put -- k -5").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// openTool returns the Tool the global options describe. When the chosen
// plugin falls back to the built-in in-memory default, it says so on
// stderr, so that a missing configuration never passes for an empty cache.
func (e *env) openTool() (*tool.Tool, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	if e.fallback && !e.noted {
		e.noted = true
		fmt.Fprintf(e.stderr, "memdict: no backend configured for plugin %s (%s): "+
			"using the built-in in-memory backend %s, empty and gone when the command ends\n",
			tool.PluginName(e.plugin), e.unconfigured(), tool.DefaultURL)
	}
	return tool.New(cfg)
}

// needDurable returns a usage error when the chosen plugin is in memory
// and --mem was not given: what cmd writes would be gone when the command
// ends. It must be called after loadConfig (openTool).
func (e *env) needDurable(cmd string, mem bool) error {
	if !e.inMemory || mem {
		return nil
	}
	why := "its URL is mem://"
	if e.fallback {
		why = "nothing configures it: " + e.unconfigured()
	}
	return usagef("plugin %s uses the in-memory backend (%s): %s would store nothing that outlives this command; "+
		"give a server with --url or $%s, or add --mem to do it anyway", tool.PluginName(e.plugin), why, cmd, tool.EnvURL)
}

// unconfigured says why the chosen plugin falls back to the built-in
// default: no configuration at all, or a file that does not name it.
func (e *env) unconfigured() string {
	if e.configFile != "" {
		return fmt.Sprintf("%s names no plugin %s, and no --url", printable(e.configFile), tool.PluginName(e.plugin))
	}
	return fmt.Sprintf("no --config, --url, $%s or $%s", tool.EnvConfig, tool.EnvURL)
}

// loadConfig returns the configuration the global options describe.
func (e *env) loadConfig() (tool.Config, error) {
	var cfg tool.Config
	var err error
	name := tool.PluginName(e.plugin)
	configured := false // a file or a URL names the chosen plugin
	switch {
	case e.config != "":
		e.configFile = e.config
		cfg, err = tool.LoadConfig(e.config)
		_, configured = cfg.Plugins[name]
	default:
		e.configFile = e.getenv(tool.EnvConfig)
		cfg, configured, err = configFromEnv(e.getenv, name)
	}
	if err != nil {
		return cfg, err
	}
	if e.url != "" {
		configured = true
	}
	if e.url != "" {
		name := tool.PluginName(e.plugin)
		if cfg.Plugins == nil {
			cfg.Plugins = map[string]tool.PluginConfig{}
		}
		pc, ok := cfg.Plugins[name]
		if !ok {
			pc = tool.DefaultPluginConfig(e.url)
		}
		pc.URL = e.url
		cfg.Plugins[name] = pc
	}
	for _, pc := range cfg.Plugins {
		e.secrets = append(e.secrets, pc.URL)
	}
	chosen := ""
	if pc, ok := cfg.Plugins[name]; ok {
		chosen = pc.URL
	} else if name == tool.DefaultPlugin {
		chosen = tool.DefaultURL // the Tool adds it
	}
	e.chosenURL = chosen
	e.fallback = name == tool.DefaultPlugin && !configured
	e.inMemory = isMemURL(chosen)
	return cfg, nil
}

// isMemURL reports whether raw names the in-memory backend.
func isMemURL(raw string) bool {
	scheme, _, ok := strings.Cut(raw, "://")
	return ok && strings.EqualFold(scheme, "mem")
}

// configFromEnv is tool.ConfigFromEnv with getenv instead of os.Getenv,
// so that in-process tests do not change the process's environment.
// configured reports whether the file or $MEMDICT_URL names plugin name.
func configFromEnv(getenv func(string) string, name string) (cfg tool.Config, configured bool, err error) {
	cfg, err = tool.ConfigFromGetenv(getenv)
	if err != nil {
		return cfg, false, err
	}
	switch {
	case getenv(tool.EnvURL) != "" && name == tool.DefaultPlugin:
		configured = true
	case getenv(tool.EnvConfig) != "":
		// The Tool's configuration always has the default plugin: ask
		// the file itself whether it names the plugin.
		c, err := tool.LoadConfig(getenv(tool.EnvConfig))
		if err != nil {
			return cfg, false, err
		}
		_, configured = c.Plugins[name]
	}
	return cfg, configured, nil
}

// fail prints err (with any password redacted) and returns its exit code.
func (e *env) fail(cmd string, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "memdict %s: %v\nRun 'memdict %s --help' for usage.\n", cmd, err, cmd)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "memdict %s: %s\n", cmd, e.scrub(err.Error()))
	return exitError
}

// scrub removes the passwords of the --url URL and the configured URLs
// from s, in case an error repeats them.
func (e *env) scrub(s string) string {
	return scrubSecrets(s, append([]string{e.url}, e.secrets...)...)
}

// scrubSecrets replaces, in s, each URL of urls by its redacted form and
// its password by xxxxx (backend.Scrub), and escapes what does not print
// (printable): s is a message to show, which may quote a server.
func scrubSecrets(s string, urls ...string) string { return printable(backend.Scrub(s, urls...)) }

// printable returns s with every character that does not print escaped as
// in a Go string literal ("\x1b", "\a", "\u009b"; "\xff" for a byte
// that is not UTF-8), newlines and tabs kept. Errors and statistics quote
// the server, or keys other programs wrote: their control bytes must not
// reach the terminal, where they would move the cursor, retitle the window
// or hide text.
func printable(s string) string {
	keep := func(r rune) bool { return r == '\n' || r == '\t' || (r != utf8.RuneError && unicode.IsPrint(r)) }
	if strings.IndexFunc(s, func(r rune) bool { return !keep(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keep(r) || r == utf8.RuneError:
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func topUsage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprint(w, `memdict looks inside and moves the caches of memdict applications
(memcached, Redis or in-memory), and serves their admin page.

Usage:
  memdict [global flags] <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Global flags (also accepted after the command):
`)
	printFlags(w, top)
	fmt.Fprint(w, globalHelp)
}

const globalHelp = `
Configuration is read as the application reads it: --config, else the file
in $MEMDICT_CONFIG, with $MEMDICT_URL replacing the default plugin's URL and
$MEMDICT_SITE_ID the site id. With none of them, the default plugin is an
empty in-memory store that lives only as long as the command: the command
says so on stderr, and put, load and clear refuse to write there unless
given --mem.

Values are shown as JSON, decoded with the codec they were written with
(msgpack, json, raw strings; others in base64); --raw prints the stored
bytes.

Exit status:
  0  success
  1  miss: the key is absent (get, del)
  2  bad usage (unknown command or flag, wrong arguments)
  3  error: bad configuration, server unreachable, value too large, ...

Examples:
  export MEMDICT_URL=memcached://127.0.0.1:11211
  memdict put --prefix shop greeting 'hello, world'
  memdict put --prefix shop --typed cart:42 '{"items":[1,2,3]}'
  memdict get --prefix shop cart:42
  memdict keys --prefix shop
  memdict stats
  memdict dump --prefix shop > shop.jsonl
  memdict load --prefix shop --url redis://127.0.0.1:6379/0 < shop.jsonl
  memdict serve --config app.yaml            # admin page on http://127.0.0.1:8080/

Run 'memdict <command> --help' for a command's flags and examples.
`

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: memdict %s [flags]", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprint(w, "\nFlags:\n")
	printFlags(w, fs)
	fmt.Fprint(w, "\nExit status: 0 success, 1 miss, 2 bad usage, 3 error.\n")
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	var fl []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { fl = append(fl, f) })
	sort.Slice(fl, func(i, j int) bool { return fl[i].Name < fl[j].Name })
	for _, f := range fl {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}
