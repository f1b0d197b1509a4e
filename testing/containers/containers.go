// Package containers starts memcached and Redis servers in containers, with
// testcontainers-go, for integration tests of memdict's backends.
//
// Each server comes in two forms: StartMemcached and StartRedis take a
// context and return an error, for use outside tests (TestMain, examples,
// benchmarks); Memcached and Redis take a testing.TB, register the
// container's removal with t.Cleanup, and skip the test when no container
// engine can be reached -- or fail it when MEMDICT_REQUIRE_SERVERS=1, as in
// CI.
//
//	func TestWithMemcached(t *testing.T) {
//		c := containers.Memcached(t)
//		be, err := backend.Open(ctx, c.URL()) // "memcached://127.0.0.1:32771"
//		...
//	}
//
// The images default to the public memcached:1.6-alpine and redis:7-alpine.
// The environment variables MEMDICT_MEMCACHED_IMAGE and MEMDICT_REDIS_IMAGE
// override them (.ci/setup sets them to images it builds locally when no
// registry can be reached), and WithImage overrides both.
//
// The container engine is whatever testcontainers-go finds: a local Docker
// daemon, or the engine DOCKER_HOST names (for example podman's Docker API
// socket).
package containers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Default images, used when neither WithImage nor the environment variable
// names another.
const (
	DefaultMemcachedImage = "memcached:1.6-alpine"
	DefaultRedisImage     = "redis:7-alpine"
)

// Environment variables that override the default images.
const (
	EnvMemcachedImage = "MEMDICT_MEMCACHED_IMAGE"
	EnvRedisImage     = "MEMDICT_REDIS_IMAGE"
)

// EnvRequire is the environment variable that, set to 1, makes Memcached
// and Redis fail the test instead of skipping it when no container engine
// can be reached. .ci/run sets it.
const EnvRequire = "MEMDICT_REQUIRE_SERVERS"

// Ports the servers listen on inside their containers.
const (
	MemcachedPort = "11211/tcp"
	RedisPort     = "6379/tcp"
)

// DefaultStartupTimeout bounds the wait for a container's server to listen.
const DefaultStartupTimeout = 60 * time.Second

// Option configures a container started by this package.
type Option func(*settings)

type settings struct {
	image       string
	args        []string
	timeout     time.Duration
	customizers []testcontainers.ContainerCustomizer
}

// WithImage runs the server from image instead of the default (or the one
// the environment variable names). The image must start the server when
// given server flags as its command ("-m", "64"; "--maxmemory", "64mb"), as
// the official images do.
func WithImage(image string) Option {
	return func(s *settings) { s.image = image }
}

// WithArgs passes extra command-line flags to the server, for example
// WithArgs("-I", "2m") for memcached or WithArgs("--requirepass", "secret")
// for Redis.
func WithArgs(args ...string) Option {
	return func(s *settings) { s.args = append(s.args, args...) }
}

// WithStartupTimeout changes how long to wait for the server to listen;
// the default is DefaultStartupTimeout.
func WithStartupTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// WithCustomizers passes testcontainers-go customizers (environment,
// labels, log consumers, ...) through to the container request. They are
// applied after this package's defaults, so they can override them.
func WithCustomizers(c ...testcontainers.ContainerCustomizer) Option {
	return func(s *settings) { s.customizers = append(s.customizers, c...) }
}

func newSettings(defaultImage, env string, opts []Option) settings {
	s := settings{image: defaultImage, timeout: DefaultStartupTimeout}
	if v := os.Getenv(env); v != "" {
		s.image = v
	}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}

// Container is a running server container.
//
// It embeds the testcontainers-go container, so that its methods (Logs,
// Exec, Inspect, ...) are at hand; Start, Stop and Terminate are wrapped so
// that Addr and URL follow the port the engine maps after a restart.
type Container struct {
	testcontainers.Container

	kind   string // "memcached" or "redis"
	scheme string // URL scheme
	port   string // port inside the container

	mu   sync.Mutex
	addr string // host:port, refreshed by Start
}

// Kind returns "memcached" or "redis".
func (c *Container) Kind() string { return c.kind }

// Addr returns the server's address on the host, "host:port".
func (c *Container) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// URL returns the URL that backend.Open takes for this server:
// "memcached://host:port" or "redis://host:port".
func (c *Container) URL() string {
	return c.scheme + "://" + c.Addr()
}

// refresh reads the host and mapped port from the engine.
func (c *Container) refresh(ctx context.Context) error {
	host, err := c.Container.Host(ctx)
	if err != nil {
		return fmt.Errorf("host of %s container: %w", c.kind, err)
	}
	p, err := c.Container.MappedPort(ctx, c.port)
	if err != nil {
		return fmt.Errorf("mapped port %s of %s container: %w", c.port, c.kind, err)
	}
	c.mu.Lock()
	c.addr = net.JoinHostPort(host, p.Port())
	c.mu.Unlock()
	return nil
}

// Stop stops the container (the server's data is lost for memcached, kept
// only in memory for Redis started without persistence); Start starts it
// again. timeout is how long the engine waits for a clean exit before
// killing the server; nil means the engine's default.
func (c *Container) Stop(ctx context.Context, timeout *time.Duration) error {
	if err := c.Container.Stop(ctx, timeout); err != nil {
		return fmt.Errorf("stop %s container: %w", c.kind, err)
	}
	return nil
}

// Start starts a stopped container again and waits for its server to
// listen. The engine may map a different host port: Addr and URL change
// accordingly.
func (c *Container) Start(ctx context.Context) error {
	if err := c.Container.Start(ctx); err != nil {
		return fmt.Errorf("start %s container: %w", c.kind, err)
	}
	return c.refresh(ctx)
}

// Terminate stops and removes the container. It is safe to call on a nil
// *Container (which a failed start may return) and more than once.
func (c *Container) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	if c == nil || c.Container == nil {
		return nil
	}
	opts = append([]testcontainers.TerminateOption{testcontainers.StopContext(ctx)}, opts...)
	if err := testcontainers.TerminateContainer(c.Container, opts...); err != nil {
		return fmt.Errorf("terminate %s container: %w", c.kind, err)
	}
	return nil
}

// wrap builds a Container around a started (or partly started) one. It
// returns nil if tc is nil.
func wrap(ctx context.Context, tc testcontainers.Container, kind, scheme, port string) (*Container, error) {
	if tc == nil {
		return nil, nil
	}
	c := &Container{Container: tc, kind: kind, scheme: scheme, port: port}
	return c, c.refresh(ctx)
}

// StartMemcached starts a memcached container and waits until its port
// listens. The image is the one WithImage names, else $MEMDICT_MEMCACHED_IMAGE,
// else DefaultMemcachedImage.
//
// On failure it returns the error and, if a container was created, that
// container too: as with testcontainers-go modules, callers should arrange
// for Terminate (which accepts nil) before checking the error.
func StartMemcached(ctx context.Context, opts ...Option) (*Container, error) {
	s := newSettings(DefaultMemcachedImage, EnvMemcachedImage, opts)
	custom := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(MemcachedPort),
		testcontainers.WithWaitStrategy(wait.ForListeningPort(MemcachedPort).WithStartupTimeout(s.timeout)),
		testcontainers.WithLabels(map[string]string{"org.memdict.test": "memcached"}),
	}
	if len(s.args) > 0 {
		// Flags alone as the command: the official image's entrypoint
		// (and .ci/setup's) runs memcached with them.
		custom = append(custom, testcontainers.WithCmdArgs(s.args...))
	}
	custom = append(custom, s.customizers...)
	tc, err := testcontainers.Run(ctx, s.image, custom...)
	var ctr testcontainers.Container
	if tc != nil {
		ctr = tc
	}
	if err != nil {
		c, _ := wrap(ctx, ctr, "memcached", "memcached", MemcachedPort)
		return c, fmt.Errorf("containers: start memcached (image %s): %w", s.image, err)
	}
	c, err := wrap(ctx, ctr, "memcached", "memcached", MemcachedPort)
	if err != nil {
		return c, fmt.Errorf("containers: start memcached (image %s): %w", s.image, err)
	}
	return c, nil
}

// StartRedis starts a Redis container through the testcontainers-go Redis
// module (which waits for the port and for "Ready to accept connections").
// The image is the one WithImage names, else $MEMDICT_REDIS_IMAGE, else
// DefaultRedisImage.
//
// On failure it returns the error and, if a container was created, that
// container too: callers should arrange for Terminate (which accepts nil)
// before checking the error.
func StartRedis(ctx context.Context, opts ...Option) (*Container, error) {
	s := newSettings(DefaultRedisImage, EnvRedisImage, opts)
	custom := []testcontainers.ContainerCustomizer{
		testcontainers.WithLabels(map[string]string{"org.memdict.test": "redis"}),
		// The module's wait, with the port's 10s raised to s.timeout for
		// slow, loaded CI machines.
		testcontainers.WithWaitStrategyAndDeadline(s.timeout,
			wait.ForListeningPort(RedisPort).WithStartupTimeout(s.timeout),
			wait.ForLog("* Ready to accept connections").WithStartupTimeout(s.timeout)),
	}
	if len(s.args) > 0 {
		custom = append(custom, testcontainers.WithCmdArgs(s.args...))
	}
	custom = append(custom, s.customizers...)
	rc, err := tcredis.Run(ctx, s.image, custom...)
	var ctr testcontainers.Container
	if rc != nil {
		ctr = rc
	}
	if err != nil {
		c, _ := wrap(ctx, ctr, "redis", "redis", RedisPort)
		return c, fmt.Errorf("containers: start redis (image %s): %w", s.image, err)
	}
	c, err := wrap(ctx, ctr, "redis", "redis", RedisPort)
	if err != nil {
		return c, fmt.Errorf("containers: start redis (image %s): %w", s.image, err)
	}
	return c, nil
}

// ErrNoEngine is wrapped by the error EngineAvailable returns when no
// container engine can be reached: no Docker API endpoint answers, neither
// a local Docker daemon nor the one DOCKER_HOST names.
var ErrNoEngine = errors.New("containers: no Docker API endpoint reachable")

var (
	engineMu   sync.Mutex
	engineDone bool
	engineErr  error
)

// EngineAvailable reports, with a nil error, whether testcontainers-go can
// reach a container engine (Docker, or what DOCKER_HOST names). The answer
// is computed once per process, except that a check cut short by ctx is
// not remembered.
func EngineAvailable(ctx context.Context) error {
	engineMu.Lock()
	defer engineMu.Unlock()
	if engineDone {
		return engineErr
	}
	err := checkEngine(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrNoEngine, ctx.Err())
	}
	engineDone, engineErr = true, err
	return err
}

func checkEngine(ctx context.Context) (err error) {
	defer func() {
		// testcontainers-go panics in some set-ups without an engine.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrNoEngine, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	defer p.Close()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	return nil
}
