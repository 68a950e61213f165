// Package replay records the IDs of accepted SAML assertions in Redis, so
// that every gateway replica refuses an assertion that any one of them has
// already accepted.
//
// crewjam/saml's in-memory replay cache protects a single process only: with
// several replicas behind a load balancer, an intercepted SAMLResponse can be
// posted again to another replica and accepted there. Redis is the store all
// replicas share. When it cannot be reached, Consume fails and the login is
// refused (fail closed): accepting an assertion that might be a replay is
// worse than asking the user to try again.
package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for the zero fields of RedisOptions.
const (
	DefaultKeyPrefix = "ssogw:replay:"
	DefaultOpTimeout = 2 * time.Second
	DefaultMargin    = 5 * time.Minute
)

// minTTL is the shortest time a consumed ID is kept, whatever its expiry,
// so that a replay arriving at the same moment is still refused.
const minTTL = time.Second

// minPoolSize is the fewest connections the store keeps to Redis when the
// URL does not say (pool_size): go-redis's default, 10 per GOMAXPROCS, is
// 10 in a container limited to one CPU, below the 16 logins a replica may
// have in flight at once (each holds a connection for its SET NX, longer
// when Redis is slow); the others would queue for one.
const minPoolSize = 32

// ErrUnavailable is matched (errors.Is) by every error that means Redis
// could not be asked: it is down, slow, refuses the credentials, or is a
// read-only replica. The assertion is then refused, although it may well be
// fresh; callers should report a temporary failure, not a replay.
var ErrUnavailable = errors.New("replay store unavailable")

var _ crewsaml.AssertionReplayCache = (*Redis)(nil)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// URL locates the server: redis://[user:password@]host[:port][/db] or
	// rediss://... for TLS, as parsed by go-redis's redis.ParseURL. Its
	// query may tune go-redis, but timeouts are capped at OpTimeout and
	// retries are turned off (see NewRedis). Required.
	URL string
	// KeyPrefix is prepended to every key, so that several applications
	// can share a database; empty means DefaultKeyPrefix.
	KeyPrefix string
	// OpTimeout bounds each call to Redis, including connecting; zero means
	// DefaultOpTimeout.
	OpTimeout time.Duration
	// Margin is added to each record's lifetime to cover clock differences
	// between the replicas (each computes the lifetime from its own clock);
	// zero means DefaultMargin.
	Margin time.Duration
	// Clock is the time source for lifetimes; nil means the real clock.
	Clock clockwork.Clock
}

// Redis is an AssertionReplayCache shared by every replica that talks to
// the same Redis database. It is safe for concurrent use.
type Redis struct {
	client    *redis.Client
	keyPrefix string
	opTimeout time.Duration
	margin    time.Duration
	clock     clockwork.Clock
}

// NewRedis checks o and returns a replay store for it. It does not connect:
// a gateway must start while Redis is down (its logins then fail until
// Redis is back), so an unreachable server shows up in Consume and Ping,
// not here. Errors name the URL without its user name and password.
func NewRedis(o RedisOptions) (*Redis, error) {
	if o.OpTimeout < 0 {
		return nil, fmt.Errorf("replay: op timeout %v is negative", o.OpTimeout)
	}
	if o.Margin < 0 {
		return nil, fmt.Errorf("replay: margin %v is negative", o.Margin)
	}
	r := &Redis{
		keyPrefix: o.KeyPrefix,
		opTimeout: o.OpTimeout,
		margin:    o.Margin,
		clock:     o.Clock,
	}
	if r.keyPrefix == "" {
		r.keyPrefix = DefaultKeyPrefix
	}
	if r.opTimeout == 0 {
		r.opTimeout = DefaultOpTimeout
	}
	if r.margin == 0 {
		r.margin = DefaultMargin
	}
	if r.clock == nil {
		r.clock = clockwork.NewRealClock()
	}
	opt, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	failFast(opt, r.opTimeout)
	r.client = redis.NewClient(opt)
	return r, nil
}

// parseURL parses a redis:// or rediss:// URL into go-redis options. Its
// errors never quote the raw URL: url.Parse's own errors do, password
// included, so they are not wrapped.
func parseURL(raw string) (*redis.Options, error) {
	if raw == "" {
		return nil, errors.New("replay: redis URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("replay: redis URL does not parse (its text is withheld, as it may hold a password)")
	}
	// Shown in errors: without the user information (a password may have
	// been put in the user name) or the query (a "password" parameter,
	// which go-redis does not take, would be quoted).
	shown := *u
	shown.User = nil
	shown.RawQuery = ""
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("replay: redis URL %q: scheme must be redis or rediss", shown.String())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("replay: redis URL %q: no host", shown.String())
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		// raw parsed above, so go-redis reports the path, or the name of
		// a query parameter or the value of one it knows (none is
		// secret), never the user information.
		return nil, fmt.Errorf("replay: redis URL %q: %w", shown.String(), err)
	}
	return opt, nil
}

// failFast sets opt so that a dead or hung server fails a call within
// about timeout, instead of go-redis's defaults (5 s per dial attempt, five
// dial attempts, three retries), and sizes the connection pool for
// concurrent logins.
func failFast(opt *redis.Options, timeout time.Duration) {
	capTimeout := func(d time.Duration) time.Duration {
		// ParseURL gives -1 for a timeout the URL disables.
		if d <= 0 || d > timeout {
			return timeout
		}
		return d
	}
	opt.DialTimeout = capTimeout(opt.DialTimeout)
	opt.ReadTimeout = capTimeout(opt.ReadTimeout)
	opt.WriteTimeout = capTimeout(opt.WriteTimeout)
	opt.PoolTimeout = capTimeout(opt.PoolTimeout)
	// The context deadline of each call then bounds the socket I/O too.
	opt.ContextTimeoutEnabled = true
	// SET NX is not idempotent: a retry after a lost reply would find the
	// key the first attempt wrote and report a fresh assertion as a
	// replay. Fail instead; the user signs in again. (-1, not 0: zero means
	// go-redis's default of three retries.)
	opt.MaxRetries = -1
	// One dial per attempt (go-redis dials five times by default, 100 ms
	// apart).
	opt.DialerRetries = 1
	// No CLIENT SETINFO and no CLIENT MAINT_NOTIFICATIONS round trips on
	// each new connection: they serve Redis Cloud tooling, not this store.
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if opt.PoolSize == 0 {
		opt.PoolSize = max(minPoolSize, 10*runtime.GOMAXPROCS(0))
	}
}

// Consume records assertionID until expiresAt plus the margin, in one
// atomic SET NX, so that exactly one replica accepts it. It returns
// crewsaml.ErrAssertionReplayed, unwrapped, if the ID is already recorded,
// and an error matching ErrUnavailable if Redis could not be asked.
func (r *Redis) Consume(assertionID string, expiresAt time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.opTimeout)
	defer cancel()
	err := r.client.SetArgs(ctx, r.key(assertionID), "1", redis.SetArgs{
		Mode: "NX",
		TTL:  r.ttl(expiresAt),
	}).Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		// SET NX did not set: the key exists.
		return crewsaml.ErrAssertionReplayed
	default:
		return fmt.Errorf("replay: record assertion: %w: %w", ErrUnavailable, err)
	}
}

// key is the Redis key for an assertion ID. IDs come from external
// (signed, but attacker-chosen if the IdP is) documents, so they are hashed
// to bound the key size and keep odd bytes out of Redis.
func (r *Redis) key(assertionID string) string {
	sum := sha256.Sum256([]byte(assertionID))
	return r.keyPrefix + hex.EncodeToString(sum[:])
}

// ttl is how long to keep an ID that the ServiceProvider accepts until
// expiresAt: the time left, plus the margin, and at least minTTL.
func (r *Redis) ttl(expiresAt time.Time) time.Duration {
	left := max(expiresAt.Sub(r.clock.Now()), 0)
	// Sub saturates for far-off times; saturate the sum as well, rather
	// than wrap to a negative lifetime.
	if left > math.MaxInt64-r.margin {
		return math.MaxInt64
	}
	return max(left+r.margin, minTTL)
}

// Ping checks that Redis answers, within ctx and the op timeout. Its error
// matches ErrUnavailable.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("replay: ping: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close closes the connections to Redis. Consume and Ping fail afterwards.
func (r *Redis) Close() error {
	return r.client.Close()
}
