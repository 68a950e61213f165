package main

import (
	"bytes"
	"strings"
	"testing"
)

// everyCommand is what the usage of all commands must show: each synopsis
// and each flag.
var everyCommand = []string{
	"sso-gateway serve -config FILE",
	"sso-gateway check -config FILE",
	"sso-gateway tenants -config FILE",
	"sso-gateway demo [flags]",
	"sso-gateway version\n",
	"-config string",
	"-listen string", "-admin-listen string", "-idp-listen string", "-upstream-listen string",
	"-password string", "-dir string", "\n  -v\t",
}

// TestHelp: help asked for in any of the usual ways is printed on stdout
// and is not an error; a mistake prints the usage on stderr and is one.
func TestHelp(t *testing.T) {
	t.Parallel()
	demoUsage := []string{"sso-gateway demo [flags]", "-idp-listen string", "-upstream-listen string", "-password string", "\n  -v\t"}
	checkUsage := []string{"sso-gateway check -config FILE", "-config string"}
	tests := []struct {
		name       string
		args       []string
		wantErr    string   // "" for success
		wantStdout []string // substrings; none means empty
		wantStderr []string // substrings; none means empty
		notStdout  string   // must not appear on stdout
	}{
		{name: "-h", args: []string{"-h"}, wantStdout: everyCommand},
		{name: "-help", args: []string{"-help"}, wantStdout: everyCommand},
		{name: "--help", args: []string{"--help"}, wantStdout: everyCommand},
		{name: "help", args: []string{"help"}, wantStdout: everyCommand},
		{name: "help check", args: []string{"help", "check"}, wantStdout: checkUsage, notStdout: "demo"},
		{name: "help demo", args: []string{"help", "demo"}, wantStdout: demoUsage, notStdout: "check"},
		{name: "help of an unknown command", args: []string{"help", "frobnicate"}, wantErr: `unknown command "frobnicate"`, wantStderr: everyCommand},
		{name: "check -h", args: []string{"check", "-h"}, wantStdout: checkUsage, notStdout: "demo"},
		{name: "check --help", args: []string{"check", "--help"}, wantStdout: checkUsage, notStdout: "demo"},
		{name: "check -config x -h", args: []string{"check", "-config", "x.yaml", "-h"}, wantStdout: checkUsage},
		{name: "serve -h", args: []string{"serve", "-h"}, wantStdout: []string{"sso-gateway serve -config FILE", "SIGHUP", "-config string"}, notStdout: "check"},
		{name: "serve, unnamed, -config x -h", args: []string{"-config", "x.yaml", "-h"}, wantStdout: []string{"sso-gateway serve -config FILE"}, notStdout: "check"},
		{name: "tenants --help", args: []string{"tenants", "--help"}, wantStdout: []string{"sso-gateway tenants -config FILE", "-config string"}},
		{name: "demo -h", args: []string{"demo", "-h"}, wantStdout: demoUsage, notStdout: "check"},
		{name: "demo --help", args: []string{"demo", "--help"}, wantStdout: demoUsage, notStdout: "check"},
		{name: "version -h", args: []string{"version", "-h"}, wantStdout: []string{"sso-gateway version\n", "VCS revision"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`, wantStderr: everyCommand},
		{name: "unknown flag of a command", args: []string{"demo", "-verbose"}, wantErr: "flag provided but not defined: -verbose", wantStderr: append([]string{"flag provided but not defined: -verbose"}, demoUsage...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run %q: got error %q, want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run %q: got error %v, want %q", tt.args, err, tt.wantErr)
			}
			check := func(stream, got string, want []string) {
				t.Helper()
				if len(want) == 0 && got != "" {
					t.Errorf("%s: got %q, want %q", stream, got, "")
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: got %q, want it to contain %q", stream, got, w)
					}
				}
			}
			check("stdout", stdout.String(), tt.wantStdout)
			check("stderr", stderr.String(), tt.wantStderr)
			if tt.notStdout != "" && strings.Contains(stdout.String(), tt.notStdout) {
				t.Errorf("stdout: got %q, want no %q", stdout.String(), tt.notStdout)
			}
		})
	}
}
