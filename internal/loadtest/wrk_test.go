package loadtest

import (
	"strings"
	"testing"
	"time"
)

func TestLuaQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"/documents/report.html?view=1", `"/documents/report.html?view=1"`},
		{`a "quoted" \ path`, `"a \"quoted\" \\ path"`},
		{"line\r\nbreak\x00", `"line\013\010break\000"`},
		{"é", `"\195\169"`},
		{"]]", `"]]"`},
	} {
		if got := luaQuote(tc.in); got != tc.want {
			t.Errorf("luaQuote(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWrkScript(t *testing.T) {
	t.Parallel()
	script, err := wrkScript("docs.loadtest.example", "/a b?x=\"1\"", "/tmp/x y/cookies.txt")
	if err != nil {
		t.Fatalf("wrkScript: got error %q, want success", err)
	}
	for _, want := range []string{
		`local head = "GET " .. "/a b?x=\"1\"" .. " HTTP/1.1\r\nHost: " .. "docs.loadtest.example" ..`,
		`"\r\nUser-Agent: " .. "` + userAgent + `" .. "\r\nAccept: " .. "` + accept + `" .. "\r\n"`,
		`local cookieFile = "/tmp/x y/cookies.txt"`,
		`r = r .. "Cookie: " .. line .. "\r\n"`,
		"function request()",
		`io.write(string.format("LOADTEST requests=%.0f`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	// Every line the done function prints must be one parseWrk reads.
	format := script[strings.Index(script, `"LOADTEST `)+1:]
	format = format[:strings.Index(format, `\n"`)]
	var fields []string
	for f := range strings.FieldsSeq(strings.TrimPrefix(format, "LOADTEST ")) {
		k, _, _ := strings.Cut(f, "=")
		fields = append(fields, k+"=1")
	}
	if _, err := parseWrk("LOADTEST " + strings.Join(fields, " ")); err != nil {
		t.Errorf("parseWrk of the script's own line: got error %q, want success", err)
	}
}

// wrkOutput is what wrk prints with the script: its own report, then the
// script's line.
const wrkOutput = `Running 2s test @ http://127.0.0.1:40123/documents/report.html?view=1
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    1.02ms  20.11ms   80.00%
    Req/Sec     7.01k   512.33     8.00k    70.00%
  27950 requests in 2.00s, 33.43MB read
Requests/sec:  13975.00
Transfer/sec:     16.72MB
LOADTEST requests=27950 duration_us=2000123 bytes=35053200 connect=0 read=1 write=2 status=3 timeout=4 p50_us=2101 p99_us=7818
`

func TestParseWrk(t *testing.T) {
	t.Parallel()
	got, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatalf("parseWrk: got error %q, want success", err)
	}
	want := loadResult{
		Requests: 27950, Duration: 2000123 * time.Microsecond, Bytes: 35053200,
		Errors: 7, StatusErrors: 3, P50: 2101 * time.Microsecond, P99: 7818 * time.Microsecond,
	}
	if got != want {
		t.Errorf("parseWrk: got %+v, want %+v", got, want)
	}
	if r := got.rate(); r < 13974 || r > 13975 {
		t.Errorf("rate: got %f, want 13974.3", r)
	}
}

func TestParseWrkErrors(t *testing.T) {
	t.Parallel()
	line := "LOADTEST requests=1 duration_us=1 bytes=1 connect=0 read=0 write=0 status=0 timeout=0 p50_us=1 p99_us=1"
	for _, tc := range []struct{ name, out string }{
		{"no line", "Running 2s test @ http://127.0.0.1:1/\nunable to connect to 127.0.0.1:1 Connection refused\n"},
		{"missing field", strings.Replace(line, " p99_us=1", "", 1)},
		{"not key=value", line + " junk"},
		{"not a number", strings.Replace(line, "requests=1", "requests=1.5", 1)},
		{"a Lua error instead", "PANIC: unprotected error in call to Lua API (no requests in /tmp/x)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := parseWrk(tc.out); err == nil {
				t.Errorf("parseWrk(%q): got %+v, want an error", tc.out, got)
			}
		})
	}
}

func TestWrkVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ out, want string }{
		{"wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk <options> <url>\n", "wrk debian/4.1.0-3+b2"},
		{"wrk 4.2.0 [epoll] Copyright (C) 2012 Will Glozer\n", "wrk 4.2.0"},
		{"", "wrk"},
	} {
		if got := wrkVersion(tc.out); got != tc.want {
			t.Errorf("wrkVersion(%q): got %q, want %q", tc.out, got, tc.want)
		}
	}
}
