package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

// tenantLoad is where one tenant's IdP metadata comes from under a
// configuration, and what is wrong with it. A tenant's problems are its
// own: they never stop the configuration from applying to the others.
type tenantLoad struct {
	// key is the tenant's key path, "tenants[i]".
	key string
	// md is a file tenant's metadata: read now, or kept from before when
	// the file has a problem. Nil leaves the tenant not ready.
	md *metadata.IDP
	// loaded is when md was read.
	loaded time.Time
	// target is what the refresher watches for a URL tenant; nil when
	// the tenant has none (a problem with its pinned signer, and no
	// earlier watch to keep).
	target *metadata.Target
	// problems are the tenant problems found now (see config.Problem).
	problems []*config.Problem
	// kept means the tenant serves the metadata, or the metadata URL and
	// signers, of the configuration before, because of problems.
	kept bool
}

// loadTenants reads every file tenant's metadata, on every core (with
// thousands of tenants, parsing dominates start-up and reload), and decides
// every URL tenant's target. A tenant with a problem keeps what prev gave
// it, when prev is not nil and it is still trustworthy under the new
// configuration. cache may be nil.
func loadTenants(cfg *config.Config, now time.Time, cache *fileCache, prev *state) []tenantLoad {
	out := make([]tenantLoad, len(cfg.Tenants))
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, t := range cfg.Tenants {
		l := &out[i]
		l.key = fmt.Sprintf("tenants[%d]", i)
		l.problems = append(l.problems, t.Problems...)
		if t.MetadataURL != nil {
			if len(t.Problems) == 0 {
				l.target = urlTarget(t, i)
			}
			if l.problems != nil {
				l.target, l.kept = prev.keptTarget(t)
			}
			continue
		}
		if t.MetadataFile == "" {
			continue // no source: a global problem config reported
		}
		eg.Go(func() error {
			if len(t.Problems) == 0 {
				md, err := cache.load(t.MetadataFile, t.MetadataSigners, now)
				if err == nil {
					err = entraMismatch(md, t, i)
				}
				if err == nil {
					l.md, l.loaded = md, now
					return nil
				}
				var p *config.Problem
				if !errors.As(err, &p) {
					p = &config.Problem{Path: fmt.Sprintf("tenants[%d].idp_metadata_file", i), Msg: err.Error()}
				}
				p.Tenant = t.ID
				l.problems = append(l.problems, p)
			}
			l.md, l.loaded, l.kept = prev.keptMetadata(t, i, now)
			return nil
		})
	}
	_ = eg.Wait()
	return out
}

// urlTarget is what the refresher watches for URL tenant t, the i-th. A
// document of another Entra directory than entra_tenant_id is refused like
// any unusable document: every login would fail the tenantid check.
func urlTarget(t config.Tenant, i int) *metadata.Target {
	return &metadata.Target{
		Tenant:   t.ID,
		URL:      t.MetadataURL,
		Signers:  t.MetadataSigners,
		Interval: t.MetadataRefresh,
		Check: func(md *metadata.IDP) error {
			var p *config.Problem
			if errors.As(entraMismatch(md, t, i), &p) {
				// Reported at the URL's key path, naming the other key.
				return errors.New("entra_tenant_id " + p.Msg)
			}
			return nil
		},
	}
}

// keptMetadata is the metadata file tenant t (the i-th) served under the
// previous configuration, if it may keep serving it despite a problem: it
// trusted the same pinned signers (or the new ones did not load), it is of
// the directory entra_tenant_id names, and it is still usable now.
func (prev *state) keptMetadata(t config.Tenant, i int, now time.Time) (*metadata.IDP, time.Time, bool) {
	if prev == nil {
		return nil, time.Time{}, false
	}
	old, ok := prev.loads[t.ID]
	if !ok || old.md == nil || !prev.sameSigners(t) ||
		entraMismatch(old.md, t, i) != nil || old.md.UsableAt(now) != nil {
		return nil, time.Time{}, false
	}
	return old.md, old.loaded, true
}

// keptTarget is the metadata URL and signers URL tenant t was watched with
// under the previous configuration, to keep while the new ones have a
// problem.
func (prev *state) keptTarget(t config.Tenant) (*metadata.Target, bool) {
	if prev == nil {
		return nil, false
	}
	old, ok := prev.loads[t.ID]
	if !ok || old.target == nil {
		return nil, false
	}
	kept := *old.target
	return &kept, true
}

// sameSigners reports whether tenant t pins the same metadata signers as it
// did under prev, or pins ones that did not load (then nothing says the
// old ones are no longer meant).
func (prev *state) sameSigners(t config.Tenant) bool {
	if len(t.Problems) > 0 {
		return true
	}
	for _, old := range prev.cfg.Tenants {
		if old.ID == t.ID {
			return signersKey(old.MetadataSigners) == signersKey(t.MetadataSigners)
		}
	}
	return false
}

func signersKey(certs []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// entraMismatch reports metadata of another Entra directory than the
// tenant's entra_tenant_id: every login would fail the tenantid check.
func entraMismatch(md *metadata.IDP, t config.Tenant, i int) error {
	got := md.EntraTenantID()
	if t.EntraTenantID == "" || got == "" || got == t.EntraTenantID {
		return nil
	}
	return &config.Problem{Path: fmt.Sprintf("tenants[%d].entra_tenant_id", i), Tenant: t.ID, Msg: fmt.Sprintf(
		"is %s, but the IdP metadata is directory %s's (entity ID %s): one of them belongs to another organisation", t.EntraTenantID, got, md.Entity.EntityID)}
}

// fileCache remembers parsed metadata files by content, so that a reload
// re-parses only the files that changed.
type fileCache struct {
	mu      sync.Mutex
	entries map[string]fileEntry // by path
}

type fileEntry struct {
	sum [32]byte // of the file and the pinned signers
	md  *metadata.IDP
}

func newFileCache() *fileCache { return &fileCache{entries: map[string]fileEntry{}} }

func (c *fileCache) load(path string, signers []*x509.Certificate, now time.Time) (*metadata.IDP, error) {
	data, err := metadata.ReadBytes(path)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return metadata.Parse(data, now, signers)
	}
	h := sha256.New()
	h.Write(data)
	sk := signersKey(signers)
	h.Write(sk[:])
	var sum [32]byte
	h.Sum(sum[:0])
	c.mu.Lock()
	e, ok := c.entries[path]
	c.mu.Unlock()
	if ok && e.sum == sum {
		if err := e.md.UsableAt(now); err != nil {
			return nil, err
		}
		return e.md, nil
	}
	md, err := metadata.Parse(data, now, signers)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[path] = fileEntry{sum: sum, md: md}
	c.mu.Unlock()
	return md, nil
}

// keep drops the entries of files cfg no longer names.
func (c *fileCache) keep(cfg *config.Config) {
	named := map[string]bool{}
	for _, t := range cfg.Tenants {
		named[t.MetadataFile] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for path := range c.entries {
		if !named[path] {
			delete(c.entries, path)
		}
	}
}

// CheckMetadata loads every tenant's IdP metadata, from its file or URL,
// and checks it, as `sso-gateway check` does: every tenant problem, with
// its key path. Problems config already found are not repeated.
func CheckMetadata(ctx context.Context, cfg *config.Config, client *http.Client, now time.Time) error {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	var problems []error
	for i, l := range loadTenants(cfg, now, nil, nil) {
		for _, p := range l.problems[len(cfg.Tenants[i].Problems):] {
			problems = append(problems, p)
		}
		if l.target == nil {
			continue
		}
		if _, _, err := fetchTarget(ctx, client, l.target, now); err != nil {
			var p *config.Problem
			if !errors.As(err, &p) {
				p = &config.Problem{Path: fmt.Sprintf("tenants[%d].idp_metadata_url", i), Tenant: l.target.Tenant, Msg: err.Error()}
			}
			problems = append(problems, p)
		}
	}
	return errors.Join(problems...)
}

// fetchTarget fetches and checks a URL tenant's metadata once, outside the
// refresher, as `check` and `tenants` do. It returns the document fetched,
// if any, also when it is unusable.
func fetchTarget(ctx context.Context, client *http.Client, t *metadata.Target, now time.Time) (*metadata.IDP, []byte, error) {
	data, _, err := metadata.Fetch(ctx, client, t.URL, metadata.Validators{})
	if err != nil {
		return nil, nil, err
	}
	md, err := metadata.Parse(data, now, t.Signers)
	if err == nil && t.Check != nil {
		err = t.Check(md)
	}
	if err != nil {
		return nil, data, err
	}
	return md, data, nil
}
