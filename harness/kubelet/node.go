package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// How often the kubelet renews its Lease and reports its status, and the Lease's duration: the
// real kubelet's defaults.
const (
	leaseDuration        = 40 * time.Second
	leaseRenewInterval   = 10 * time.Second
	nodeStatusReportTick = time.Minute
)

// register creates the kubelet's Node, or adopts the existing one, as the real kubelet does.
func (k *Kubelet) register(ctx context.Context) error {
	client := k.apiClient()
	labels := map[string]string{
		corev1.LabelHostname:      k.name,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    runtime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
	for key, v := range k.flags.NodeLabels {
		labels[key] = v
	}
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        k.name,
			Labels:      labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: corev1.NodeSpec{Taints: k.flags.RegisterWithTaints},
	}
	var node *corev1.Node
	err := k.retry(ctx, "registering Node", func() error {
		created, err := client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			node = created
			k.logf("registered Node %s", k.name)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		existing, err := client.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node = existing
		k.logf("Node %s already registered", k.name)
		return nil
	})
	if err != nil {
		return err
	}
	k.setNode(node)
	return k.retry(ctx, "reporting Node status", func() error { return k.reportStatus(ctx) })
}

func (k *Kubelet) setNode(n *corev1.Node) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// The informer and status patches race; keep the newer copy.
	if k.node != nil && k.node.UID == n.UID && newerThan(k.node.ResourceVersion, n.ResourceVersion) {
		return
	}
	k.node = n
	if n.Spec.PodCIDR != "" && k.podCIDR != n.Spec.PodCIDR {
		k.podCIDR = n.Spec.PodCIDR
		signal(k.pods.notify)
	}
}

// nodeRef returns the registered Node's name and UID for owner references, or false before
// registration.
func (k *Kubelet) nodeRef() (metav1.OwnerReference, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.node == nil {
		return metav1.OwnerReference{}, false
	}
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: k.node.Name, UID: k.node.UID}, true
}

// watchNode keeps the kubelet's copy of its Node current (the controller-manager assigns its pod
// CIDR after registration), as the real kubelet's node informer does.
func (k *Kubelet) watchNode(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(k.apiClient(), 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
		}))
	inf := factory.Core().V1().Nodes().Informer()
	update := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			k.setNode(n)
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: update, UpdateFunc: func(_, obj any) { update(obj) }})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

// heartbeat renews the node's Lease and reports its status until ctx ends.
func (k *Kubelet) heartbeat(ctx context.Context) {
	lease := time.NewTicker(leaseRenewInterval)
	defer lease.Stop()
	status := time.NewTicker(nodeStatusReportTick)
	defer status.Stop()
	k.renewLease(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			k.renewLease(ctx)
		case <-status.C:
			if err := k.reportStatus(ctx); err != nil && ctx.Err() == nil {
				k.logf("reporting Node status: %v", err)
			}
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context) {
	client := k.apiClient()
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, k.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		owner, _ := k.nodeRef()
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.name, Namespace: corev1.NamespaceNodeLease, OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(k.name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
	case err == nil:
		l.Spec.RenewTime = &now
		l.Spec.HolderIdentity = ptr.To(k.name)
		l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration.Seconds()))
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		k.logf("renewing Lease %s/%s: %v", corev1.NamespaceNodeLease, k.name, err)
	}
}

// reportStatus patches the Node's status: addresses, capacity, version and conditions, each
// condition computed from the host the machine shares.
func (k *Kubelet) reportStatus(ctx context.Context) error {
	client := k.apiClient()
	now := metav1.Now()
	capacity := k.capacity()
	cond := func(t corev1.NodeConditionType, ok bool, okReason, badReason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: msg, LastHeartbeatTime: now}
		if !ok {
			c.Status, c.Reason = corev1.ConditionTrue, badReason
		}
		return c
	}
	memAvail := memAvailable()
	diskFree := k.diskFreeRatio()
	conditions := []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, memAvail > 100<<20, "KubeletHasSufficientMemory", "KubeletHasInsufficientMemory",
			fmt.Sprintf("host memory available: %d MiB", memAvail>>20)),
		cond(corev1.NodeDiskPressure, diskFree > 0.10, "KubeletHasNoDiskPressure", "KubeletHasDiskPressure",
			fmt.Sprintf("free space on the machine's root: %.0f%%", diskFree*100)),
		cond(corev1.NodePIDPressure, true, "KubeletHasSufficientPID", "KubeletHasInsufficientPID", "kubelet has sufficient PID available"),
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now,
			Message: "kubelet is posting ready status (liftoff harness kubelet stand-in: no container runtime or CNI is checked)"},
	}
	// The transition time of a condition that did not change is kept.
	k.mu.Lock()
	if k.node != nil {
		for i := range conditions {
			conditions[i].LastTransitionTime = now
			for _, old := range k.node.Status.Conditions {
				if old.Type == conditions[i].Type && old.Status == conditions[i].Status && !old.LastTransitionTime.IsZero() {
					conditions[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
	}
	k.mu.Unlock()
	status := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions:  conditions,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.flags.NodeIP},
			{Type: corev1.NodeHostName, Address: k.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               idOf("machine", k.name),
			SystemUUID:              idOf("system", k.name),
			BootID:                  k.m.BootID,
			KernelVersion:           kernelVersion(),
			OSImage:                 "liftoff harness machine",
			ContainerRuntimeVersion: "liftoff-harness://" + Version,
			KubeletVersion:          Version,
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
		},
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	n, err := client.CoreV1().Nodes().PatchStatus(ctx, k.name, patch)
	if err != nil {
		return err
	}
	k.setNode(n)
	return nil
}

func (k *Kubelet) capacity() corev1.ResourceList {
	pods := k.config.MaxPods
	if pods == 0 {
		pods = 110
	}
	var st syscall.Statfs_t
	var disk int64
	if syscall.Statfs(k.m.Root, &st) == nil {
		disk = int64(st.Blocks) * st.Bsize
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
	}
}

func (k *Kubelet) diskFreeRatio() float64 {
	var st syscall.Statfs_t
	if syscall.Statfs(k.m.Root, &st) != nil || st.Blocks == 0 {
		return 0
	}
	return float64(st.Bavail) / float64(st.Blocks)
}

func meminfo(field string) int64 {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func memTotal() int64     { return meminfo("MemTotal") }
func memAvailable() int64 { return meminfo("MemAvailable") }

func kernelVersion() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}

// idOf derives a stable id for a machine, since machines of the harness share the host's.
func idOf(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "/" + name))
	return hex.EncodeToString(sum[:16])
}

// newerThan reports whether resource version a is newer than b. Resource versions are opaque, but
// etcd-backed ones are increasing integers; anything else compares as not newer.
func newerThan(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x > y
}
