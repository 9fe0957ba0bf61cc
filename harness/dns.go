package harness

import (
	"errors"
	"net"
	"net/netip"
)

// nameserver answers every DNS query from the machines with NXDOMAIN, as a resolver that knows no
// names outside the cluster would: the machines' resolv.conf names it, so CoreDNS's upstream
// answers and no query ever leaves this host.
type nameserver struct {
	conn *net.UDPConn
}

func startNameserver(addr netip.Addr) (*nameserver, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 53)))
	if err != nil {
		return nil, err
	}
	ns := &nameserver{conn: conn}
	go ns.serve()
	return ns, nil
}

func (ns *nameserver) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := ns.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < 12 || buf[2]&0x80 != 0 {
			continue // not a query
		}
		// The header's flags: a response (QR), the query's opcode and RD kept, recursion
		// available, NXDOMAIN; the question stays, no answers.
		reply := append([]byte{}, buf[:n]...)
		reply[2] = 0x80 | buf[2]&0x79
		reply[3] = 0x80 | 3
		for i := 6; i < 12; i++ {
			reply[i] = 0 // answer, authority and additional counts
		}
		reply = reply[:12+questionLength(buf[12:n])]
		ns.conn.WriteToUDPAddrPort(reply, from)
	}
}

// questionLength is the length of the first question of a message body (name, type, class).
func questionLength(b []byte) int {
	i := 0
	for i < len(b) && b[i] != 0 {
		if b[i]&0xc0 != 0 {
			i += 2
			return min(i+4, len(b))
		}
		i += int(b[i]) + 1
	}
	return min(i+1+4, len(b))
}

func (ns *nameserver) close() {
	if ns != nil {
		ns.conn.Close()
	}
}
