package harness

import (
	"context"
	"errors"
	"net"
	"sync"
)

// errPartitioned is what a partitioned machine's connections fail with.
var errPartitioned = errors.New("network partition (liftoff harness): this machine cannot reach the API")

// uplink is a machine's connection to the API: connections leave from the machine's own address,
// and a partition closes them all and refuses new ones.
type uplink struct {
	ip string

	mu          sync.Mutex
	partitioned bool
	conns       map[net.Conn]struct{}
}

func newUplink(ip string) *uplink {
	return &uplink{ip: ip, conns: map[net.Conn]struct{}{}}
}

func (u *uplink) dial(ctx context.Context, network, address string) (net.Conn, error) {
	u.mu.Lock()
	if u.partitioned {
		u.mu.Unlock()
		return nil, errPartitioned
	}
	u.mu.Unlock()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(u.ip)}}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.partitioned {
		conn.Close()
		return nil, errPartitioned
	}
	tc := &trackedConn{Conn: conn, u: u}
	u.conns[tc] = struct{}{}
	return tc, nil
}

func (u *uplink) setPartitioned(on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.partitioned = on
	if on {
		for c := range u.conns {
			c.(*trackedConn).Conn.Close()
		}
		u.conns = map[net.Conn]struct{}{}
	}
}

type trackedConn struct {
	net.Conn
	u    *uplink
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.u.mu.Lock()
		delete(c.u.conns, c)
		c.u.mu.Unlock()
	})
	return c.Conn.Close()
}
