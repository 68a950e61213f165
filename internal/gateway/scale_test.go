package gateway

import (
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/scalegen"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// scaleTenants is how many tenants the scale benchmarks configure; set
// SCALE_TENANTS to try others.
func scaleTenants(b *testing.B) int {
	if s := os.Getenv("SCALE_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 10000
}

func scaleConfig(b *testing.B) (*config.Config, *scalegen.Result) {
	b.Helper()
	res, err := scalegen.Write(scalegen.Options{Dir: b.TempDir(), Tenants: scaleTenants(b)})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(res.ConfigPath, noEnv)
	if err != nil {
		b.Fatal(err)
	}
	return cfg, res
}

func heapInUse() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse)
}

// BenchmarkStartup measures loading a config with 10,000 tenants, each
// with its own metadata file, and building the gateway; heap-MB is the
// heap the gateway keeps afterwards.
func BenchmarkStartup(b *testing.B) {
	res, err := scalegen.Write(scalegen.Options{Dir: b.TempDir(), Tenants: scaleTenants(b)})
	if err != nil {
		b.Fatal(err)
	}
	base := heapInUse()
	var gw *Gateway
	for b.Loop() {
		cfg, err := config.Load(res.ConfigPath, noEnv)
		if err != nil {
			b.Fatal(err)
		}
		gw, err = Build(b.Context(), cfg, Deps{Registry: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((heapInUse()-base)/(1<<20), "heap-MB")
	runtime.KeepAlive(gw)
}

// BenchmarkReload measures a reload of the same 10,000-tenant config.
func BenchmarkReload(b *testing.B) {
	cfg, _ := scaleConfig(b)
	gw, err := Build(b.Context(), cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := gw.ReloadFile(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestTenants shows that a request's cost does not depend on
// the number of tenants: an authenticated GET with 1 and with 10,000.
func BenchmarkRequestTenants(b *testing.B) {
	for _, n := range []int{1, scaleTenants(b)} {
		b.Run(strconv.Itoa(n)+"-tenants", func(b *testing.B) {
			b.Setenv("SCALE_TENANTS", strconv.Itoa(n))
			cfg, res := scaleConfig(b)
			up := httptest.NewServer(okUpstream)
			b.Cleanup(up.Close)
			cfg.Upstream, _ = cfg.Upstream.Parse(up.URL)
			gw, err := Build(b.Context(), cfg, Deps{Registry: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			tenant, _ := gw.Provider().CurrentTenants().Get(scalegen.TenantID(0))
			form := res.IDP(0).PostForm(b, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
			login := publicRequest(http.MethodPost, samlsp.LoginPath+tenant.ID, strings.NewReader(form.Encode()))
			login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			gw.PublicHandler().ServeHTTP(rec, login)
			if rec.Code != http.StatusSeeOther {
				b.Fatalf("sign in: got %d", rec.Code)
			}
			req := publicRequest(http.MethodGet, "/documents", nil)
			for _, c := range rec.Result().Cookies() {
				req.AddCookie(c)
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				gw.PublicHandler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("got %d", rec.Code)
				}
			}
		})
	}
}
