// Command scalegen writes a gateway configuration with many tenants, each
// with its own IdP metadata file, for load and start-up measurements:
//
//	go run ./cmd/scalegen -tenants 10000 -dir /tmp/scale
//	go run ./cmd/sso-gateway check -config /tmp/scale/config.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sso-gateway/sso-gateway/internal/scalegen"
)

func main() {
	dir := flag.String("dir", "", "folder to write into (created)")
	tenants := flag.Int("tenants", 10000, "number of tenants")
	upstream := flag.String("upstream", "http://127.0.0.1:8080", "upstream URL")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "scalegen: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
	res, err := scalegen.Write(scalegen.Options{Dir: *dir, Tenants: *tenants, Upstream: *upstream})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
	fmt.Println(res.ConfigPath)
}
