package metadata

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Refresh timing.
const (
	// DefaultRefreshInterval is how often a URL is fetched again when the
	// document says nothing shorter.
	DefaultRefreshInterval = time.Hour
	// minRefresh keeps a document with a tiny cacheDuration or an
	// imminent validUntil from being fetched in a tight loop.
	minRefresh = time.Minute
	// firstRetry is the first wait after a failed fetch; it doubles up to
	// the refresh interval.
	firstRetry = 30 * time.Second
	// DefaultConcurrency bounds simultaneous fetches, so thousands of
	// tenants starting or refreshing together do not flood the IdP or the
	// gateway's own network.
	DefaultConcurrency = 8
)

// The results of one fetch: the values of the refresh counter's result
// label and of Status.LastResult.
const (
	// ResultSuccess: a usable document was fetched and applied.
	ResultSuccess = "success"
	// ResultNotModified: the server said the document had not changed.
	ResultNotModified = "not_modified"
	// ResultFetchError: no document came (network, TLS, HTTP status,
	// timeout); often transient.
	ResultFetchError = "fetch_error"
	// ResultInvalid: a document came and was refused (Parse or
	// Target.Check); fetching it again will not help until someone fixes
	// it.
	ResultInvalid = "invalid"
)

// Target is a tenant whose metadata comes from a URL.
type Target struct {
	Tenant string
	URL    *url.URL
	// Signers, if not empty, must have signed every document.
	Signers []*x509.Certificate
	// Interval is the refresh interval; zero means DefaultRefreshInterval.
	Interval time.Duration
	// Apply receives each new usable document, and the current one when a
	// Sync hands an existing watch to a new tenant table.
	Apply func(*IDP)
	// Check, if not nil, is a further condition on each document that
	// Parse accepts (the gateway refuses one whose directory contradicts
	// entra_tenant_id). A document it refuses is treated like one Parse
	// refuses: not applied, counted as ResultInvalid, its error in
	// LastError, and the last good document kept. It is called with the
	// tenant's watch locked, so it must be quick and must not call the
	// Refresher.
	//
	// A func cannot be compared, so a Sync that keeps a watch (same tenant,
	// URL and signers) always takes the new Check: it applies from the next
	// fetch, and the current document is checked against it at once. If
	// the current document fails it, it is not handed to Apply; the watch
	// starts over without a document and fetches at once.
	Check func(*IDP) error
}

// Status is what the refresher knows about one tenant's metadata.
type Status struct {
	URL         string // redacted for showing (see Redact)
	LastAttempt time.Time
	LastSuccess time.Time // last fetch that yielded usable or unchanged metadata
	LastError   string    // of the last attempt, "" if it succeeded
	// LastResult is the last attempt's result: ResultSuccess,
	// ResultNotModified, ResultFetchError or ResultInvalid; "" before the
	// first. It tells a network failure (worth waiting for) from a
	// document that must be fixed. After a Sync whose Check refused the
	// current document it is ResultInvalid until the next fetch.
	LastResult string
	Current    *IDP // nil until a fetch succeeded, and after a Sync whose Check refused it
}

// RefresherOptions configure a Refresher.
type RefresherOptions struct {
	Client      *http.Client    // nil: a client with the environment's proxy settings
	Clock       clockwork.Clock // nil: the real clock
	Logger      *slog.Logger    // nil: discard
	Metrics     *Metrics        // required
	Concurrency int             // zero: DefaultConcurrency
}

// Refresher keeps the metadata of URL tenants fresh: one goroutine per
// tenant fetches, schedules the next fetch (sooner when the document's
// cacheDuration or validUntil ask for it), and backs off after failures,
// keeping the last good document. Fetches run at most Concurrency at a time
// and refresh times are jittered, so tenants spread out by themselves.
type Refresher struct {
	ctx     context.Context
	client  *http.Client
	clock   clockwork.Clock
	log     *slog.Logger
	metrics *Metrics
	sem     chan struct{}

	mu      sync.Mutex
	watches map[string]*watch // by tenant
}

// NewRefresher returns a Refresher whose watches run until ctx ends.
func NewRefresher(ctx context.Context, o RefresherOptions) (*Refresher, error) {
	if o.Metrics == nil {
		return nil, errors.New("metadata: Refresher needs Metrics")
	}
	r := &Refresher{ctx: ctx, client: o.Client, clock: o.Clock, log: o.Logger, metrics: o.Metrics, watches: map[string]*watch{}}
	if r.client == nil {
		r.client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	if r.clock == nil {
		r.clock = clockwork.NewRealClock()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	n := o.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	r.sem = make(chan struct{}, n)
	return r, nil
}

// watch is one tenant's refresh loop.
type watch struct {
	key        string // what makes two targets the same watch
	signersKey string // the pinned signers part of key
	url        *url.URL
	signers    []*x509.Certificate
	tenant     string
	ctx        context.Context // ends when the watch is stopped
	cancel     context.CancelFunc
	firstDone  chan struct{}

	// fetching serialises the watch's fetches (scheduled and RefreshNow),
	// so that results are applied in the order they were asked for and an
	// older document never replaces a newer one.
	fetching sync.Mutex

	mu         sync.Mutex
	interval   time.Duration
	apply      func(*IDP)
	check      func(*IDP) error
	status     Status
	validators Validators
	failures   int
}

// targetKey identifies what a watch fetches and trusts; a change of it
// starts over. The interval is not part of it: changing only the interval
// keeps the watch and its document.
func targetKey(t Target) string {
	return fmt.Sprintf("%s\n%s\n%s", t.Tenant, t.URL, signersKey(t.Signers))
}

// signersKey identifies a set of pinned metadata signers.
func signersKey(signers []*x509.Certificate) string {
	h := sha256.New()
	for _, c := range signers {
		h.Write(c.Raw)
	}
	return string(h.Sum(nil))
}

func interval(t Target) time.Duration {
	if t.Interval <= 0 {
		return DefaultRefreshInterval
	}
	return t.Interval
}

// Sync makes the running watches match targets: new targets start (their
// first fetch begins at once), removed ones stop, and unchanged ones keep
// their schedule and hand their current document to the new Apply, so a
// configuration reload causes no fetches and no gap.
//
// A tenant whose URL changed, with the same pinned signers, starts a new
// watch seeded with the old one's document: the tenant keeps signing users
// in with it until the new URL delivers, instead of being without metadata
// for as long as the new URL does not answer. A change of signers starts
// empty, since the old document need not satisfy them, and so does a
// document the new Check refuses (see Target.Check).
func (r *Refresher) Sync(targets []Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[string]bool{}
	for _, t := range targets {
		keep[t.Tenant] = true
		key := targetKey(t)
		if w, ok := r.watches[t.Tenant]; ok {
			if w.key == key {
				w.mu.Lock()
				current := w.status.Current
				refused := check(t.Check, current)
				if refused == nil {
					w.apply = t.Apply
					w.check = t.Check
					w.interval = interval(t) // from the next schedule on
				}
				lastSuccess := w.status.LastSuccess
				w.mu.Unlock()
				if refused == nil {
					if current != nil {
						t.Apply(current)
					}
					continue
				}
				// The new Check refuses the document the watch holds:
				// start over without it, and fetch at once, since the
				// URL may serve one that passes by now.
				w.cancel()
				r.start(t, key, Status{LastSuccess: lastSuccess, LastError: refused.Error(), LastResult: ResultInvalid})
				continue
			}
			w.cancel()
			var seed Status
			w.mu.Lock()
			if w.signersKey == signersKey(t.Signers) {
				seed = Status{Current: w.status.Current, LastSuccess: w.status.LastSuccess}
			}
			w.mu.Unlock()
			if refused := check(t.Check, seed.Current); refused != nil {
				seed.Current, seed.LastError, seed.LastResult = nil, refused.Error(), ResultInvalid
			}
			r.start(t, key, seed)
			continue
		}
		r.start(t, key, Status{})
	}
	for tenant, w := range r.watches {
		if !keep[tenant] {
			w.cancel()
			delete(r.watches, tenant)
			r.metrics.Forget(tenant)
		}
	}
}

// start begins a watch of t with the status seed, taken over from the
// tenant's previous watch. seed.Current, if not nil, is a document the
// tenant already trusted (and that passes t.Check), applied at once and
// kept until the URL delivers one.
func (r *Refresher) start(t Target, key string, seed Status) {
	ctx, cancel := context.WithCancel(r.ctx)
	seed.URL = Redact(t.URL)
	w := &watch{
		key: key, signersKey: signersKey(t.Signers), interval: interval(t), url: t.URL, signers: t.Signers, tenant: t.Tenant,
		ctx: ctx, cancel: cancel, firstDone: make(chan struct{}), apply: t.Apply, check: t.Check,
		status: seed,
	}
	r.watches[t.Tenant] = w
	if seed.Current != nil {
		t.Apply(seed.Current)
	}
	go r.run(ctx, w)
}

// check runs a Target's Check, if any, on md, if any. Its error matches
// ErrUnusable, like Parse's.
func check(c func(*IDP) error, md *IDP) error {
	if c == nil || md == nil {
		return nil
	}
	if err := c(md); err != nil {
		return fmt.Errorf("%w: %w", ErrUnusable, err)
	}
	return nil
}

// run fetches at once, then whenever the last fetch said to.
func (r *Refresher) run(ctx context.Context, w *watch) {
	next := r.refresh(ctx, w)
	close(w.firstDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(next):
		}
		next = r.refresh(ctx, w)
	}
}

// WaitFirst waits until every watch has made its first attempt, or ctx ends.
func (r *Refresher) WaitFirst(ctx context.Context) {
	r.mu.Lock()
	var waits []chan struct{}
	for _, w := range r.watches {
		waits = append(waits, w.firstDone)
	}
	r.mu.Unlock()
	for _, c := range waits {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
}

// RefreshNow fetches tenant's metadata immediately and waits for the
// result, outside the schedule (for operators and tests).
func (r *Refresher) RefreshNow(ctx context.Context, tenant string) error {
	r.mu.Lock()
	w, ok := r.watches[tenant]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("metadata: tenant %q has no metadata URL", tenant)
	}
	r.refresh(ctx, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status.LastError != "" {
		return errors.New(w.status.LastError)
	}
	return nil
}

// Status returns what is known about tenant's metadata, and false when the
// tenant's metadata does not come from a URL.
func (r *Refresher) Status(tenant string) (Status, bool) {
	r.mu.Lock()
	w, ok := r.watches[tenant]
	r.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status, true
}

// refresh makes one attempt and returns how long to wait for the next.
func (r *Refresher) refresh(ctx context.Context, w *watch) time.Duration {
	w.fetching.Lock()
	defer w.fetching.Unlock()
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return w.currentInterval()
	}
	defer func() { <-r.sem }()

	w.mu.Lock()
	prev := w.validators
	if w.status.Current == nil {
		// Without a good document, a 304 would leave nothing to use.
		prev = Validators{}
	}
	w.mu.Unlock()

	now := r.clock.Now()
	data, validators, err := Fetch(ctx, r.client, w.url, prev)
	var md *IDP
	result := ResultSuccess
	switch {
	case errors.Is(err, ErrNotModified):
		result, err = ResultNotModified, nil
	case errors.Is(err, ErrUnusable):
		result = ResultInvalid // fetched, but too large to be metadata
	case err != nil:
		result = ResultFetchError
	default:
		md, err = Parse(data, now, w.signers)
		if err != nil {
			result = ResultInvalid
		}
	}
	if ctx.Err() != nil || w.ctx.Err() != nil {
		// Stopped (or the tenant was removed while RefreshNow waited):
		// the result means nothing, and must not bring back its series.
		return w.currentInterval()
	}

	w.mu.Lock()
	// Checked under the lock, so that a Sync that changes the Check
	// either sees this document (and checks it) or is seen here.
	if refused := check(w.check, md); refused != nil {
		md, result, err = nil, ResultInvalid, refused
	}
	r.metrics.refreshes.WithLabelValues(w.tenant, result).Inc()
	w.status.LastAttempt = now
	w.status.LastResult = result
	if err != nil {
		w.failures++
		w.status.LastError = err.Error()
		wait := backoff(w.failures, w.interval)
		current := w.status.Current
		w.mu.Unlock()
		level, msg := slog.LevelWarn, "IdP metadata refresh failed; keeping the last good metadata"
		if current == nil {
			level, msg = slog.LevelError, "IdP metadata refresh failed; the tenant has no usable metadata and is not ready"
		}
		r.log.LogAttrs(ctx, level, msg,
			slog.String("tenant", w.tenant), slog.String("url", Redact(w.url)), slog.String("result", result),
			slog.String("error", err.Error()), slog.Bool("has_metadata", current != nil), slog.Duration("retry_in", wait))
		return wait
	}
	w.failures = 0
	w.status.LastError = ""
	w.status.LastSuccess = now
	if md != nil {
		w.status.Current = md
		w.validators = validators
	}
	current, apply, every := w.status.Current, w.apply, w.interval
	w.mu.Unlock()

	if md != nil {
		apply(md)
		r.log.LogAttrs(ctx, slog.LevelInfo, "IdP metadata loaded", slog.String("tenant", w.tenant),
			slog.Int("signing_certificates", len(md.SigningCerts)))
	}
	return jitter(nextRefresh(current, now, every))
}

func (w *watch) currentInterval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.interval
}

// nextRefresh is the document's own deadline if it is sooner than interval.
func nextRefresh(md *IDP, now time.Time, interval time.Duration) time.Duration {
	next := interval
	if md != nil {
		if md.CacheDuration > 0 && md.CacheDuration < next {
			next = md.CacheDuration
		}
		if !md.ValidUntil.IsZero() {
			// Refresh well before validUntil: halfway there.
			if d := md.ValidUntil.Sub(now) / 2; d < next {
				next = d
			}
		}
	}
	return max(next, minRefresh)
}

// backoff is the wait after n consecutive failures: 30s, 1m, 2m, ... up to
// interval.
func backoff(n int, interval time.Duration) time.Duration {
	d := firstRetry
	for i := 1; i < n && d < interval; i++ {
		d *= 2
	}
	return jitter(min(d, max(interval, firstRetry)))
}

// jitter spreads d by ±10%, so that tenants loaded together do not keep
// fetching together.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 5
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}
