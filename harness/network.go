package harness

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// network is the cluster's network on this host: a bridge holding the gateway's address and the
// API load balancer's, and one network namespace per machine, wired to the bridge by a veth pair.
// Nothing routes beyond the bridge: the host forwards none of its packets.
type network struct {
	id      string
	bridge  string
	prefix  netip.Prefix
	gateway netip.Addr
	// hostAddrs are the addresses the host holds on the bridge (gateway, load balancer).
	hostAddrs []netip.Addr
	table     string

	mu         sync.Mutex
	namespaces []string
	links      []string
	created    bool
}

// newNetwork creates the bridge for the /24 around addrs (all host-side addresses; the first is
// the gateway).
func newNetwork(ctx context.Context, id string, prefix netip.Prefix, hostAddrs []netip.Addr) (*network, error) {
	n := &network{id: id, bridge: "lf" + id, prefix: prefix, gateway: hostAddrs[0], hostAddrs: hostAddrs,
		table: "liftoff_" + id}
	if err := run(ctx, "ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	n.created = true
	for _, a := range hostAddrs {
		if err := run(ctx, "ip", "addr", "add", netip.PrefixFrom(a, prefix.Bits()).String(), "dev", n.bridge); err != nil {
			return n, err
		}
	}
	if err := run(ctx, "ip", "link", "set", n.bridge, "up"); err != nil {
		return n, err
	}
	// The machines' packets may cross the bridge but never leave it through the host.
	rules := fmt.Sprintf(`table inet %[1]s {
	chain forward {
		type filter hook forward priority -10; policy accept;
		iifname %[2]q oifname != %[2]q drop
		oifname %[2]q iifname != %[2]q drop
	}
}
`, n.table, n.bridge)
	if err := runInput(ctx, rules, "nft", "-f", "-"); err != nil {
		return n, err
	}
	return n, nil
}

// namespace is the path of a machine's network namespace.
func (n *network) namespace(machine int) string {
	return fmt.Sprintf("/run/netns/lf%s-%d", n.id, machine)
}

// addMachine creates machine i's network namespace with ip on its eth0 and a default route via the
// gateway.
func (n *network) addMachine(ctx context.Context, i int, ip netip.Addr) (string, error) {
	name := fmt.Sprintf("lf%s-%d", n.id, i)
	hostSide := fmt.Sprintf("lf%sm%d", n.id, i)
	n.mu.Lock()
	n.namespaces = append(n.namespaces, name)
	n.links = append(n.links, hostSide)
	n.mu.Unlock()
	steps := [][]string{
		{"ip", "netns", "add", name},
		{"ip", "link", "add", hostSide, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"ip", "link", "set", hostSide, "master", n.bridge, "up"},
		{"ip", "-n", name, "addr", "add", netip.PrefixFrom(ip, n.prefix.Bits()).String(), "dev", "eth0"},
		{"ip", "-n", name, "link", "set", "lo", "up"},
		{"ip", "-n", name, "link", "set", "eth0", "up"},
		{"ip", "-n", name, "route", "add", "default", "via", n.gateway.String()},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return "", err
		}
	}
	return "/run/netns/" + name, nil
}

// partition drops (on) or passes again (off) every packet of the machine's eth0, inside its own
// namespace: its processes keep running and nothing reaches them.
func (n *network) partition(ctx context.Context, netns string, on bool) error {
	if !on {
		return run(ctx, "nsenter", "--net="+netns, "nft", "delete", "table", "inet", "liftoff_partition")
	}
	rules := `table inet liftoff_partition {
	chain in { type filter hook prerouting priority -400; policy accept; iifname "eth0" drop; }
	chain out { type filter hook output priority -400; policy accept; oifname "eth0" drop; }
}
`
	return runInput(ctx, rules, "nsenter", "--net="+netns, "nft", "-f", "-")
}

// remove deletes the namespaces, links, bridge and rules; it reports what it could not remove.
func (n *network) remove() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx := context.Background()
	var problems []string
	for _, l := range n.links {
		if linkExists(l) {
			if err := run(ctx, "ip", "link", "del", l); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	for _, ns := range n.namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			if err := run(ctx, "ip", "netns", "del", ns); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if n.created {
		if linkExists(n.bridge) {
			if err := run(ctx, "ip", "link", "del", n.bridge); err != nil {
				problems = append(problems, err.Error())
			}
		}
		if err := run(ctx, "nft", "list", "table", "inet", n.table); err == nil {
			if err := run(ctx, "nft", "delete", "table", "inet", n.table); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	n.namespaces, n.links, n.created = nil, nil, false
	if len(problems) > 0 {
		return fmt.Errorf("removing the cluster's network: %s", strings.Join(problems, "; "))
	}
	return nil
}

// leftovers names what of the network still exists.
func (n *network) leftovers() []string {
	var out []string
	if linkExists(n.bridge) {
		out = append(out, "link "+n.bridge)
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "lf"+n.id+"-") {
			out = append(out, "network namespace "+e.Name())
		}
	}
	if run(context.Background(), "nft", "list", "table", "inet", n.table) == nil {
		out = append(out, "nft table inet "+n.table)
	}
	return out
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// run runs a host command, returning its output in the error.
func run(ctx context.Context, name string, args ...string) error {
	return runInput(ctx, "", name, args...)
}

func runInput(ctx context.Context, input, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// FreeSubnet picks a 10.x.y.0/24 that no address or route of this host (other than the default
// route) covers, for a cluster of its own.
func FreeSubnet() (netip.Prefix, error) {
	var taken []netip.Prefix
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, i := range ifaces {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				taken = append(taken, p.Masked())
			}
		}
	}
	if data, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, l := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			dst, err1 := strconv.ParseUint(f[1], 16, 32)
			mask, err2 := strconv.ParseUint(f[7], 16, 32)
			if err1 != nil || err2 != nil || mask == 0 {
				continue
			}
			// /proc/net/route prints addresses in host (little-endian) byte order.
			ip := netip.AddrFrom4([4]byte{byte(dst), byte(dst >> 8), byte(dst >> 16), byte(dst >> 24)})
			ones := bits.OnesCount32(uint32(mask))
			taken = append(taken, netip.PrefixFrom(ip, ones).Masked())
		}
	}
	for range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + mrand.IntN(150)), byte(mrand.IntN(256)), 0}), 24)
		free := true
		for _, t := range taken {
			free = free && !t.Overlaps(p)
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("found no free 10.x.y.0/24 for a cluster")
}
