package bootstrap

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// maxApplyLag is how far behind the most advanced permanent member another may be and still count
// as caught up: a few heartbeats' worth of writes.
const maxApplyLag = 1000

// transitionEtcd is step 3 of a pivot from a bootstrap machine: the controllers' etcd members
// formed one cluster with the bootstrap machine's temporary member, so raft has carried every
// write over to them. The temporary member is removed only once the permanent members are healthy,
// caught up and a quorum without it; then the bootstrap machine can be destroyed.
func (r *run) transitionEtcd(ctx context.Context) error {
	temp := r.plan.bootstrapMachine
	pkiDir := filepath.Join(r.dir, generator.OutPKIDir)
	tlsCfg, err := EtcdClientTLS(pkiDir)
	if err != nil {
		return fmt.Errorf("reaching etcd with the apiserver's etcd client certificate from %s: %w", pkiDir, err)
	}
	endpoints := map[string]string{}
	var list []string
	for _, node := range r.plan.controllers {
		m, err := etcdMember(pkiDir, node, spec.RoleController)
		if err != nil {
			return fmt.Errorf("etcd member %s: %w", node, err)
		}
		endpoints[node] = m.ClientURL
		list = append(list, endpoints[node])
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: list, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	removed := false
	what := "etcd without the bootstrap machine's member " + temp
	err = r.waitUntil(ctx, StageEtcd, what, func() (bool, []string) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		members, err := cli.MemberList(cctx)
		if err != nil {
			return false, []string{"listing etcd's members through the controllers: " + err.Error()}
		}
		var tempID uint64
		for _, m := range members.Members {
			if m.Name == temp {
				tempID = m.ID
			}
		}
		if tempID == 0 {
			if !removed {
				r.emit(Event{Stage: StageEtcd, Object: "etcd member " + temp, Result: ResultSkipped, Detail: "not a member (removed already)"})
			}
			return true, nil
		}
		// The permanent members: each answers, knows a leader, has no alarm, and has applied
		// about as much as the most advanced of them.
		var missing []string
		var healthy []string
		applied := map[string]uint64{}
		var most uint64
		for _, node := range r.plan.controllers {
			st, err := cli.Status(cctx, endpoints[node])
			switch {
			case err != nil:
				missing = append(missing, fmt.Sprintf("etcd member %s (%s) does not answer: %v", node, endpoints[node], err))
				continue
			case st.Leader == 0:
				missing = append(missing, fmt.Sprintf("etcd member %s knows no leader", node))
				continue
			case len(st.Errors) > 0:
				missing = append(missing, fmt.Sprintf("etcd member %s reports %v", node, st.Errors))
				continue
			}
			applied[node] = st.RaftAppliedIndex
			most = max(most, st.RaftAppliedIndex)
		}
		for node, a := range applied {
			if most-a > maxApplyLag {
				missing = append(missing, fmt.Sprintf("etcd member %s is %d entries behind", node, most-a))
				continue
			}
			healthy = append(healthy, node)
		}
		permanent := len(r.plan.controllers)
		if len(healthy) < permanent/2+1 {
			missing = append(missing, fmt.Sprintf("only %d of the %d permanent etcd members are healthy and caught up: without %s they would have no quorum", len(healthy), permanent, temp))
			return false, missing
		}
		if _, err := cli.MemberRemove(cctx, tempID); err != nil {
			return false, []string{fmt.Sprintf("removing etcd member %s: %v", temp, err)}
		}
		removed = true
		r.emit(Event{Stage: StageEtcd, Object: "etcd member " + temp, Result: ResultRemoved,
			Detail: fmt.Sprintf("the permanent members %v are healthy and caught up", healthy)})
		return false, []string{"etcd member " + temp + " is still listed"}
	})
	return err
}
