package etcdadmin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/liftoff-k8s/liftoff/bootstrap"
)

// Replacement says what Replace did and what the replacement machine needs.
type Replacement struct {
	Member bootstrap.EtcdMember
	// RemovedID is the lost member's ID, 0 when it was no longer listed; AddedID is the new one's.
	RemovedID, AddedID uint64
	// AlreadyAdded: an earlier replace had added the member, which has not started since.
	AlreadyAdded bool
	// InitialCluster is the running cluster's membership, as the replacement joins with it
	// (initial-cluster-state existing).
	InitialCluster string
	// Members counts the members after the replacement and Healthy those that answered; Quorum is
	// how many must answer for the cluster to work.
	Members, Healthy, Quorum int
}

// Replace swaps the lost member name for a new member with the same name and peer URL, for a
// machine that lost its etcd data for good while the other members keep quorum: it removes the
// lost member and adds the new one, which has not started. The replacement machine, with the
// member's address and an empty data directory, then joins the running members. Replace refuses
// while the member still answers, and when the other members would be too few to keep quorum
// until the replacement has started; run again before the replacement starts, it does nothing.
func (c *Cluster) Replace(ctx context.Context, name string) (*Replacement, error) {
	target, err := c.Member(name)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	var others []string
	for _, m := range c.Members {
		if m.Name != name {
			others = append(others, m.ClientURL)
		}
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("etcd member %s is the cluster's only member: with it lost, restore the cluster from a snapshot (liftoff etcd restore)", name)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: others, TLS: tlsCfg, DialTimeout: statusTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return nil, fmt.Errorf("listing etcd's members through %s: %w; replacing a member needs the others to keep quorum: after losing quorum, restore every member from a snapshot (liftoff etcd restore)", strings.Join(others, ", "), err)
	}
	var lost, added *etcdserverpb.Member
	for _, m := range list.Members {
		switch {
		case m.Name == name:
			lost = m
		case m.Name == "" && slices.Contains(m.PeerURLs, target.PeerURL):
			added = m
		}
	}
	if lost != nil && len(lost.ClientURLs) > 0 {
		sctx, cancel := context.WithTimeout(ctx, statusTimeout)
		_, err := cli.Status(sctx, lost.ClientURLs[0])
		cancel()
		if err == nil {
			return nil, fmt.Errorf("etcd member %s answers at %s: replace only a member that is lost for good; stop its etcd first", name, lost.ClientURLs[0])
		}
	}
	r := &Replacement{Member: target}
	if added != nil {
		r.AlreadyAdded, r.AddedID = true, added.ID
	} else {
		// After the swap the cluster has as many members as now, the new one not started: the
		// others that answer must be a quorum of them on their own.
		size := len(list.Members)
		if lost == nil {
			size++
		}
		healthy := healthy(ctx, cli, list.Members, name)
		if quorum := size/2 + 1; healthy < quorum {
			return nil, fmt.Errorf("only %d of the other etcd members answer, and %d of the %d members must until the replacement of %s has started: bring the others back first, or after losing quorum restore every member from a snapshot (liftoff etcd restore)", healthy, quorum, size, name)
		}
		if lost != nil {
			err := whileSettling(ctx, func(ctx context.Context) error {
				_, err := cli.MemberRemove(ctx, lost.ID)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("removing etcd member %s (%x): %w", name, lost.ID, err)
			}
			r.RemovedID = lost.ID
		}
		var resp *clientv3.MemberAddResponse
		err := whileSettling(ctx, func(ctx context.Context) (err error) {
			resp, err = cli.MemberAdd(ctx, []string{target.PeerURL})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("adding etcd member %s at %s (run liftoff etcd replace again to retry): %w", name, target.PeerURL, err)
		}
		r.AddedID = resp.Member.ID
		list = &clientv3.MemberListResponse{Members: resp.Members}
	}
	var initial []string
	for _, m := range list.Members {
		n := m.Name
		if m.ID == r.AddedID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	slices.Sort(initial)
	r.InitialCluster = strings.Join(initial, ",")
	r.Members, r.Quorum = len(list.Members), len(list.Members)/2+1
	r.Healthy = healthy(ctx, cli, list.Members, name)
	return r, nil
}

// settleTimeout bounds waiting for etcd to accept a membership change it calls unsafe for now.
const settleTimeout = 30 * time.Second

// whileSettling calls change until etcd stops refusing it as unsafe for now ("unhealthy
// cluster": the leader has not been connected to every voting member for a few seconds, as
// after a leader change), for at most settleTimeout; any other answer is final.
func whileSettling(ctx context.Context, change func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		err := change(cctx)
		ccancel()
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w for %v: the leader is not in touch with every member", err, settleTimeout)
		case <-time.After(time.Second):
		}
	}
}

// healthy counts the members other than name that answer a status request and know a leader.
func healthy(ctx context.Context, cli *clientv3.Client, members []*etcdserverpb.Member, name string) int {
	n := 0
	for _, m := range members {
		if m.Name == name || m.Name == "" || len(m.ClientURLs) == 0 {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, statusTimeout)
		st, err := cli.Status(sctx, m.ClientURLs[0])
		cancel()
		if err == nil && st.Leader != 0 {
			n++
		}
	}
	return n
}
