// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// readGrace is how long a connection may take to send its request once accepted before it may
// be closed for a waiting one. A scraper sends its request at once; a client that connects and
// stalls only holds a slot this long while others wait (ReadHeaderTimeout bounds it otherwise).
const readGrace = time.Second

// limitListener holds at most max connections open. Beyond that, new connections wait in the
// kernel's accept queue, in order and costing droptrace nothing (no descriptor, no work),
// while the held ones are freed: idle keep-alive connections and connections that have not sent
// their request within readGrace are closed, and responses say "Connection: close" so that each
// held connection serves one request and makes room. A scraper thus waits its turn behind
// the clients ahead of it, each one cached response long, whatever the others do; holding
// connections idle or half-open shuts nobody out.
type limitListener struct {
	net.Listener
	max   int
	freed chan struct{} // a held connection was released
	done  chan struct{}
	stop  sync.Once

	mu      sync.Mutex
	conns   []*limitConn // oldest first
	waiting bool         // Accept waits for a slot
}

type limitConn struct {
	net.Conn
	l        *limitListener
	once     sync.Once
	accepted time.Time
	// l.mu guards these.
	serving bool // a request's handler runs
	idle    bool // between two requests of a keep-alive connection
	read    bool // a request was read (it is not stalled before its first)
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, max: max, freed: make(chan struct{}, 1), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.waiting = false
			l.mu.Unlock()
			c, err := l.Listener.Accept()
			if err != nil {
				return nil, err
			}
			lc := &limitConn{Conn: c, l: l, accepted: time.Now()}
			l.mu.Lock()
			l.conns = append(l.conns, lc)
			l.mu.Unlock()
			return lc, nil
		}
		l.waiting = true
		victims := l.evictable(time.Now())
		l.mu.Unlock()
		for _, v := range victims {
			v.Close() // the server's read fails and it forgets the connection
		}
		if len(victims) > 0 {
			continue
		}
		t := time.NewTimer(readGrace / 4)
		select {
		case <-l.freed:
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
		t.Stop()
	}
}

// evictable are the held connections that may be closed for a waiting one: idle between
// requests, or accepted readGrace ago and still without a request; never one being answered.
// l.mu is held.
func (l *limitListener) evictable(now time.Time) []*limitConn {
	var v []*limitConn
	for _, c := range l.conns {
		if c.idle || !c.serving && !c.read && now.Sub(c.accepted) >= readGrace {
			v = append(v, c)
		}
	}
	return v
}

func (l *limitListener) Close() error {
	l.stop.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// busy says whether connections are waiting, or may be, for one of the held ones.
func (l *limitListener) busy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting || len(l.conns) >= l.max
}

// open is how many connections are held.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

func (l *limitListener) release(c *limitConn) {
	l.mu.Lock()
	for i, o := range l.conns {
		if o == c {
			l.conns = append(l.conns[:i], l.conns[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// connState follows the server's view of each connection (http.Server.ConnState).
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	if lc, ok := c.(*limitConn); ok {
		l.mu.Lock()
		lc.idle = st == http.StateIdle
		l.mu.Unlock()
	}
}

type connKey struct{}

// connContext puts the connection into its requests' context, for track.
func (l *limitListener) connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// track marks a connection as being answered while h runs, so that it is not evicted, and
// closes it after the response when others wait.
func (l *limitListener) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, _ := r.Context().Value(connKey{}).(*limitConn)
		if lc != nil {
			l.mu.Lock()
			lc.serving, lc.read = true, true
			l.mu.Unlock()
			defer func() {
				l.mu.Lock()
				lc.serving = false
				l.mu.Unlock()
			}()
		}
		if l.busy() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
