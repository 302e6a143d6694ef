// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// limitListener holds at most max connections open. A connection beyond that closes the
// oldest one that is not being answered (idle between requests, or still sending its
// headers); when every one is being answered, the new one is closed at once. Waiting in
// Accept instead (as netutil.LimitListener does) would let anyone who holds max idle
// connections shut Prometheus out until the idle timeout; evicting the oldest lets a new
// scrape in, and costs a flood one accept and one close per connection.
type limitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns []*limitConn // oldest first
}

type limitConn struct {
	net.Conn
	l       *limitListener
	once    sync.Once
	serving bool // a request's handler runs; l.mu guards it
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, max: max}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l}
		l.mu.Lock()
		var victim *limitConn
		if len(l.conns) >= l.max {
			for i, o := range l.conns {
				if !o.serving {
					victim = o
					l.conns = append(l.conns[:i], l.conns[i+1:]...)
					break
				}
			}
			if victim == nil {
				l.mu.Unlock()
				c.Close()
				continue
			}
		}
		l.conns = append(l.conns, lc)
		l.mu.Unlock()
		if victim != nil {
			victim.Conn.Close() // the server's read fails and it closes its side
		}
		return lc, nil
	}
}

// open is how many connections are held.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

func (l *limitListener) release(c *limitConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.conns {
		if o == c {
			l.conns = append(l.conns[:i], l.conns[i+1:]...)
			return
		}
	}
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

type connKey struct{}

// connContext puts the connection into its requests' context, for track.
func (l *limitListener) connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// track marks a connection as being answered while h runs, so that it is not evicted.
func (l *limitListener) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, _ := r.Context().Value(connKey{}).(*limitConn)
		if lc != nil {
			l.mu.Lock()
			lc.serving = true
			l.mu.Unlock()
			defer func() {
				l.mu.Lock()
				lc.serving = false
				l.mu.Unlock()
			}()
		}
		h.ServeHTTP(w, r)
	})
}
