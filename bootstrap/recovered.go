package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// RecoveryDir, relative to the output directory, is where `liftoff recover` writes the bootstrap
// control plane it rebuilt, and RecoveryMarker there says so.
const (
	RecoveryDir    = "recovery"
	RecoveryMarker = "recovery.json"
)

// Recovery is what `liftoff recover` tells the pivot: which controller runs the rebuilt bootstrap
// pods, and since when the self-hosted control plane must be Ready anew.
type Recovery struct {
	Controller string    `json:"controller"`
	Pods       []string  `json:"pods"`
	Since      time.Time `json:"since"`
	Source     string    `json:"source"`
}

// WriteRecovery writes the recovery marker into the output directory dir.
func WriteRecovery(dir string, rec Recovery) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, RecoveryDir), 0o700); err != nil {
		return err
	}
	return outdir.WriteFileAtomic(filepath.Join(dir, RecoveryDir, RecoveryMarker), append(b, '\n'), 0o600)
}

// ReadRecovery reads the recovery marker in the output directory dir, or nil if there is none.
func ReadRecovery(dir string) (*Recovery, error) {
	p := filepath.Join(dir, RecoveryDir, RecoveryMarker)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec Recovery
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if rec.Controller == "" || len(rec.Pods) == 0 || rec.Since.IsZero() {
		return nil, fmt.Errorf("%s names no controller, pods or time: write it again with liftoff recover", p)
	}
	return &rec, nil
}

// recover turns the plan into a recovery's: the bootstrap pods are the rebuilt ones on the
// recovery's controller, and a bootstrap machine, long gone, takes no part.
func (p *plan) recover(rec *Recovery) {
	p.bootstrapNode, p.bootstrapPods, p.bootstrapMachine = rec.Controller, rec.Pods, ""
}

// kubeletSettle is how long a kubelet must have been renewing its node's lease before the pod
// statuses it reports count as its own: on start, a kubelet reports every pod within seconds.
const kubeletSettle = 30 * time.Second

// stale says why a Ready pod's status cannot be trusted in a recovery, or "". After the control
// plane was lost, etcd still says Running and Ready for pods that died with it: a pod counts only
// if its containers started after the recovery began, or its node's kubelet has renewed its lease
// for kubeletSettle since then, so that the status is the kubelet's word of now.
func (r *run) stale(p *corev1.Pod) string {
	if r.recovery == nil {
		return ""
	}
	since := r.recovery.Since
	started := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || cs.State.Running.StartedAt.Time.Before(since) {
			started = false
		}
	}
	if started {
		return ""
	}
	renewed, err := r.nodeLeaseRenewed(p.Spec.NodeName)
	if err == nil && renewed.After(since.Add(kubeletSettle)) {
		return ""
	}
	return fmt.Sprintf("pod kube-system/%s says Ready, but its containers started before the recovery at %s and the kubelet on %s has not reported for %s since (lease renewed %s)",
		p.Name, since.Format(time.RFC3339), p.Spec.NodeName, kubeletSettle, renewed.Format(time.RFC3339))
}

// nodeLeaseRenewed is when node's kubelet last renewed its lease, read at most every two seconds.
func (r *run) nodeLeaseRenewed(node string) (time.Time, error) {
	if r.leaseReads == nil {
		r.leaseReads = map[string]leaseRead{}
	}
	if lr, ok := r.leaseReads[node]; ok && time.Since(lr.read) < 2*time.Second {
		return lr.renewed, lr.err
	}
	ctx, cancel := context.WithTimeout(r.life, 5*time.Second)
	defer cancel()
	lr := leaseRead{read: time.Now()}
	l, err := r.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		lr.err = err
	} else if l.Spec.RenewTime != nil {
		lr.renewed = l.Spec.RenewTime.Time
	}
	r.leaseReads[node] = lr
	return lr.renewed, lr.err
}

type leaseRead struct {
	read, renewed time.Time
	err           error
}
