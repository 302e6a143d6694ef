// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// Idle connections beyond the limit, some that sent a request and some that sent nothing,
// neither shut a new scrape out nor hold more than the limit of connections open.
func TestIdleConnectionsCannotShutOutAScrape(t *testing.T) {
	const max = 8
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New("dev")
	s.Start(startRecord())
	srv := serve(inner, max, newEndpoint(s, nil), nil)
	defer srv.Shutdown(t.Context())
	addr := srv.Addr().String()

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := range 4 * max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		if i%2 == 0 {
			// One request, its answer unread, then silence.
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 3 {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %d with %d idle connections open: %v", i, len(idle), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("scrape %d: %s", i, resp.Status)
		}
	}
	if n := srv.ln.(*limitListener).open(); n > max {
		t.Errorf("%d connections held open, limit %d", n, max)
	}
}

// When every held connection is being answered, a new one waits for a slot instead of being
// refused, and the response that frees the slot closes its connection to make room.
func TestExcessConnectionWaitsForASlot(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if r.URL.Path == "/block" {
			<-release
		}
		fmt.Fprintln(w, "ok")
	})
	srv := serve(inner, 1, h, nil)
	defer srv.Shutdown(t.Context())
	busy, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered

	got := make(chan error, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get("http://" + srv.Addr().String() + "/next")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the second connection was answered while the only slot was busy: %v", err)
	case <-entered:
		t.Fatal("the second request was handled while the only slot was busy")
	case <-time.After(200 * time.Millisecond): // waited: what a broken limit would not
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Connection") != "close" && !resp.Close {
		t.Errorf("the response of a held connection while another waits keeps it open: %v", resp.Header)
	}
	if err := <-got; err != nil {
		t.Errorf("the waiting connection: %v", err)
	}
	if n := srv.ln.(*limitListener).open(); n > 1 {
		t.Errorf("%d connections held, limit 1", n)
	}
}

// Many scrapes within one interval render once; the next record makes the next scrape render
// again.
func TestScrapesOfOneIntervalRenderOnce(t *testing.T) {
	s := New("dev")
	s.Start(startRecord())
	s.Interval(interval(1, record.StatusMatch))
	e := newEndpoint(s, nil)
	get := func(accept string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		e.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("scrape: %d", rec.Code)
		}
		return rec.Body.String()
	}
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Go(func() { bodies[i] = get("") })
	}
	wg.Wait()
	if n := e.renders.Load(); n != 1 {
		t.Errorf("50 scrapes of one interval rendered %d times, want 1", n)
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("scrape %d differs from scrape 0", i)
		}
	}
	get("application/openmetrics-text;version=1.0.0")
	get("application/openmetrics-text;version=1.0.0")
	if n := e.renders.Load(); n != 2 {
		t.Errorf("after two OpenMetrics scrapes: %d renders, want 2 (one per format)", n)
	}
	s.Interval(interval(2, record.StatusMatch))
	mfs, _ := scrape(t, e)
	if n := e.renders.Load(); n != 3 {
		t.Errorf("after a new interval: %d renders, want 3", n)
	}
	if k := value(mfs, "droptrace_intervals_total"); k != 2 {
		t.Errorf("scrape after the second interval shows %v intervals", k)
	}
}
