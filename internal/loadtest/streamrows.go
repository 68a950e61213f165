package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// streamBuffer is the client's read and write buffer for streams: large,
// so that the client is not what limits a transfer.
const streamBuffer = 256 << 10

// streamSubject is one proxy to stream through.
type streamSubject struct {
	kind   string // "gateway", "nginx", "bare"
	name   string
	addr   string
	cookie string
	server *process
}

// streamRows downloads and uploads StreamBytes through a fresh gateway
// (with a session), nginx and the bare proxy, one transfer at a time, and
// reports the throughput and each proxy's peak RSS during the transfer.
func (r *runner) streamRows(ctx context.Context, rep *Report) error {
	var subjects []streamSubject
	if r.o.runsAny(rowDownloadGateway, rowUploadGateway) {
		gw, err := startGateway(ctx, r.sup, r.gatewayBin, "gateway-streams", r.files, r.upstreamAddr, "")
		if err != nil {
			return err
		}
		defer gw.kill()
		sessions, err := r.gatewaySessions(ctx, gw, 1, referenceGroups)
		if err != nil {
			return err
		}
		subjects = append(subjects, streamSubject{"gateway", "gateway", gw.addr, sessions[0], gw.process})
	}
	if r.o.runsAny(rowDownloadNginx, rowUploadNginx) && r.tools.nginx != "" {
		if err := r.startNginx(ctx); err != nil {
			return err
		}
		subjects = append(subjects, streamSubject{"nginx", "nginx", r.nginxAddr, "", r.nginx})
	}
	if r.o.runsAny(rowDownloadBare, rowUploadBare) {
		if err := r.startBare(ctx); err != nil {
			return err
		}
		subjects = append(subjects, streamSubject{"bare", "bare httputil.ReverseProxy", r.bareAddr, "", r.bare})
	}
	var rows []StreamRow
	for _, upload := range []bool{false, true} {
		for _, s := range subjects {
			verb := "download"
			if upload {
				verb = "upload"
			}
			id := verb + "-" + s.kind
			if !r.o.runs(id) {
				continue
			}
			row, err := r.streamRow(ctx, id, verb+" via "+s.name, s, upload)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
	}
	fillStreamRatios(rows)
	rep.Streams = append(rep.Streams, rows...)
	return nil
}

// streamRow runs one transfer.
func (r *runner) streamRow(ctx context.Context, id, name string, s streamSubject, upload bool) (StreamRow, error) {
	pid := s.server.pid()
	if err := r.proc.resetPeakRSS(pid); err != nil {
		return StreamRow{}, err
	}
	n := r.o.StreamBytes
	start := time.Now()
	if err := transfer(ctx, s.addr, s.cookie, n, upload); err != nil {
		return StreamRow{}, s.server.failed(fmt.Errorf("%s: %w", name, err))
	}
	wall := time.Since(start)
	peak, err := r.proc.treePeakRSS(pid)
	if err != nil {
		return StreamRow{}, err
	}
	row := StreamRow{ID: id, Name: name, Bytes: n, MBPerSec: float64(n) / 1e6 / wall.Seconds(), PeakRSSMiB: float64(peak) / (1 << 20)}
	r.logf("streams: %-38s %6.0f MB/s, peak RSS %.1f MiB", name, row.MBPerSec, row.PeakRSSMiB)
	return row, nil
}

// transfer downloads n bytes from the upstream through the proxy at addr,
// or uploads n bytes to it, on a new connection, and checks that every
// byte arrived.
func transfer(ctx context.Context, addr, cookie string, n int64, upload bool) error {
	client := &http.Client{Transport: &http.Transport{
		DisableCompression: true,
		ReadBufferSize:     streamBuffer,
		WriteBufferSize:    streamBuffer,
	}}
	defer client.CloseIdleConnections()
	method, target := http.MethodGet, "http://"+addr+streamPath+"?bytes="+strconv.FormatInt(n, 10)
	var body io.Reader
	if upload {
		method, target, body = http.MethodPut, "http://"+addr+streamPath, io.LimitReader(zeros{}, n)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.Host = gatewayHost
	if upload {
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(upstreamMark) == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s %s: got %s %q, want the upstream's 200", method, streamPath, resp.Status, b)
	}
	if upload {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 100))
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(n, 10) {
			return fmt.Errorf("upload: the upstream got %s bytes, want %d", got, n)
		}
		return nil
	}
	got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, streamBuffer))
	if err != nil {
		return fmt.Errorf("download: after %d bytes: %w", got, err)
	}
	if got != n {
		return fmt.Errorf("download: got %d bytes, want %d", got, n)
	}
	return nil
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// fillStreamRatios sets each row's ratio to nginx's row in the same
// direction.
func fillStreamRatios(rows []StreamRow) {
	nginx := map[string]float64{}
	for _, s := range rows {
		if verb, ok := strings.CutSuffix(s.ID, "-nginx"); ok {
			nginx[verb] = s.MBPerSec
		}
	}
	for i := range rows {
		verb, _, _ := strings.Cut(rows[i].ID, "-")
		rows[i].VsNginx = ratio(rows[i].MBPerSec, nginx[verb])
	}
}
