package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
)

// Status of a pivot as its record says.
const (
	StatusInProgress = "in-progress"
	StatusFailed     = "failed"
	StatusComplete   = "complete"
)

// StageRecord is one stage of a run as recorded: when it started and ended, and how.
type StageRecord struct {
	Stage  Stage      `json:"stage"`
	Start  time.Time  `json:"start"`
	End    *time.Time `json:"end,omitempty"`
	Result string     `json:"result"`
	Detail string     `json:"detail,omitempty"`
}

// Record is what the cluster keeps of its bootstrap in the ConfigMap kube-system/liftoff-bootstrap,
// for users (kubectl get configmap -n kube-system liftoff-bootstrap -o yaml), for a re-run, which
// finds there whether the cluster is already bootstrapped, and for the Terraform provider.
type Record struct {
	Mode   Mode   `json:"mode"`
	Status string `json:"status"`
	// Manifests is the digest of the rendered manifests the cluster was bootstrapped with.
	Manifests string        `json:"manifests"`
	Completed *time.Time    `json:"completed,omitempty"`
	Stages    []StageRecord `json:"stages"`
	// Handover is what a client calling the API through the endpoint saw during the run.
	Handover *HandoverStats `json:"handover,omitempty"`
	// Teardown is the pending or last request to the host agents (hostagent.KeyTeardown);
	// TeardownSuccessor the node whose agent must see a successor apiserver first.
	Teardown          string `json:"teardown,omitempty"`
	TeardownSuccessor string `json:"teardownSuccessor,omitempty"`
}

// Keys of the record's ConfigMap. The host agents write their own keys beside these.
const (
	keyMode      = "mode"
	keyStatus    = "status"
	keyManifests = "manifests"
	keyCompleted = "completed"
	keyStages    = "stages"
	keyHandover  = "handover"
)

// recordManager is the field manager of the record's keys.
const recordManager = "liftoff-bootstrap"

// ReadRecord reads the cluster's bootstrap record; nil, nil when it has none.
func ReadRecord(ctx context.Context, client kubernetes.Interface) (*Record, error) {
	cm, err := client.CoreV1().ConfigMaps(hostagent.Namespace).Get(ctx, generator.PivotRecord, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (apierrors.IsForbidden(err) && unboundAdmin(ctx, client)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := &Record{Mode: Mode(cm.Data[keyMode]), Status: cm.Data[keyStatus], Manifests: cm.Data[keyManifests], Teardown: cm.Data[hostagent.KeyTeardown],
		TeardownSuccessor: cm.Data[hostagent.KeyTeardownSuccessor]}
	if t, err := time.Parse(time.RFC3339Nano, cm.Data[keyCompleted]); err == nil {
		r.Completed = &t
	}
	if s := cm.Data[keyStages]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.Stages); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: its %s are not readable: %w", hostagent.Namespace, generator.PivotRecord, keyStages, err)
		}
	}
	if s := cm.Data[keyHandover]; s != "" {
		r.Handover = &HandoverStats{}
		if err := json.Unmarshal([]byte(s), r.Handover); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: its %s is not readable: %w", hostagent.Namespace, generator.PivotRecord, keyHandover, err)
		}
	}
	return r, nil
}

// writeRecord stores the record with server-side apply, leaving the agents' keys alone.
func writeRecord(ctx context.Context, client kubernetes.Interface, r *Record) error {
	stages, err := json.MarshalIndent(r.Stages, "", "  ")
	if err != nil {
		return err
	}
	data := map[string]string{keyMode: string(r.Mode), keyStatus: r.Status, keyManifests: r.Manifests, keyStages: string(stages)}
	// Every key this manager set before is set again: server-side apply removes the ones it leaves out.
	if r.Teardown != "" {
		data[hostagent.KeyTeardown] = r.Teardown
	}
	if r.TeardownSuccessor != "" {
		data[hostagent.KeyTeardownSuccessor] = r.TeardownSuccessor
	}
	if r.Completed != nil {
		data[keyCompleted] = r.Completed.UTC().Format(time.RFC3339Nano)
	}
	if r.Handover != nil {
		h, err := json.Marshal(r.Handover)
		if err != nil {
			return err
		}
		data[keyHandover] = string(h)
	}
	ac := corev1ac.ConfigMap(generator.PivotRecord, hostagent.Namespace).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "liftoff"}).
		WithData(data)
	_, err = client.CoreV1().ConfigMaps(hostagent.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: recordManager, Force: true})
	return err
}

// stage returns the record of st, adding it when missing.
func (r *Record) stage(st Stage) *StageRecord {
	for i := range r.Stages {
		if r.Stages[i].Stage == st {
			return &r.Stages[i]
		}
	}
	r.Stages = append(r.Stages, StageRecord{Stage: st})
	return &r.Stages[len(r.Stages)-1]
}

// unboundAdmin reports whether the client is liftoff's admin credential, whose rights come from the
// admins' binding: the first thing bootstrap creates. Such a client refused a read has no binding
// yet, so the cluster was never bootstrapped.
func unboundAdmin(ctx context.Context, client kubernetes.Interface) bool {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err == nil && slices.Contains(review.Status.UserInfo.Groups, generator.UserAdminGroup)
}
