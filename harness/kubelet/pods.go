package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Annotations the kubelet puts on static pods and their mirror pods.
const (
	annotationConfigHash   = "kubernetes.io/config.hash"
	annotationConfigMirror = "kubernetes.io/config.mirror"
	annotationConfigSource = "kubernetes.io/config.source"
	annotationConfigSeen   = "kubernetes.io/config.seen"
)

// staticPodCheck is how often the static pod directory is read again (the real kubelet's
// fileCheckFrequency is 20 s; a shorter period makes local clusters react faster).
const staticPodCheck = 2 * time.Second

// podManager keeps one worker per pod the kubelet should run: its static pods and the API's pods
// bound to its node. It is the only writer of its maps.
type podManager struct {
	k      *Kubelet
	notify chan struct{}
	dirty  chan struct{}

	mu       sync.Mutex
	static   map[types.UID]*corev1.Pod
	apiStore cache.Store
	workers  map[types.UID]*podWorker
	sent     map[types.UID]string
	ips      map[netip.Addr]types.UID
	wg       sync.WaitGroup
}

func newPodManager(k *Kubelet) *podManager {
	return &podManager{
		k:       k,
		notify:  make(chan struct{}, 1),
		dirty:   make(chan struct{}, 1),
		static:  map[types.UID]*corev1.Pod{},
		workers: map[types.UID]*podWorker{},
		sent:    map[types.UID]string{},
		ips:     map[netip.Addr]types.UID{},
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run reconciles workers with the desired pods until ctx ends, then kills every container.
func (pm *podManager) run(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			pm.mu.Lock()
			for _, w := range pm.workers {
				w.powerOff()
			}
			pm.mu.Unlock()
			pm.wg.Wait()
			return
		case <-pm.notify:
		case <-tick.C:
		}
		pm.reconcile(ctx)
	}
}

// desired returns the pods the kubelet should run now.
func (pm *podManager) desired() map[types.UID]*corev1.Pod {
	want := map[types.UID]*corev1.Pod{}
	for uid, p := range pm.static {
		want[uid] = p
	}
	if pm.apiStore != nil {
		for _, obj := range pm.apiStore.List() {
			p := obj.(*corev1.Pod)
			if isMirror(p) || p.Spec.NodeName != pm.k.name {
				continue
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				if _, running := pm.workers[p.UID]; !running {
					continue
				}
			}
			want[p.UID] = p
		}
	}
	return want
}

func (pm *podManager) reconcile(ctx context.Context) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	want := pm.desired()
	for uid, w := range pm.workers {
		p, ok := want[uid]
		switch {
		case !ok:
			w.terminate(ctx, -1)
		case p.DeletionTimestamp != nil:
			grace := int64(30)
			if p.DeletionGracePeriodSeconds != nil {
				grace = *p.DeletionGracePeriodSeconds
			}
			w.terminate(ctx, time.Duration(grace)*time.Second)
		default:
			w.update(p)
		}
	}
	for uid, p := range want {
		if _, ok := pm.workers[uid]; ok || p.DeletionTimestamp != nil {
			if !ok && p.DeletionTimestamp != nil && !isStatic(p) {
				// Nothing runs for it here: let the API forget it.
				go pm.deleteAPIPod(ctx, p)
			}
			continue
		}
		w := newPodWorker(pm, p)
		pm.workers[uid] = w
		pm.wg.Add(1)
		go func() {
			defer pm.wg.Done()
			w.run(ctx)
			pm.finished(ctx, w)
		}()
	}
}

// finished forgets a worker whose pod was terminated and tells the API.
func (pm *podManager) finished(ctx context.Context, w *podWorker) {
	pm.mu.Lock()
	delete(pm.workers, w.uid)
	delete(pm.sent, w.uid)
	for ip, uid := range pm.ips {
		if uid == w.uid {
			delete(pm.ips, ip)
		}
	}
	pm.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if w.static {
		pm.deleteMirror(ctx, w.pod())
	} else {
		pm.deleteAPIPod(ctx, w.pod())
	}
	signal(pm.notify)
}

func (pm *podManager) deleteAPIPod(ctx context.Context, p *corev1.Pod) {
	client := pm.k.apiClient()
	if client == nil {
		return
	}
	err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		pm.k.logf("deleting pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// KillContainer kills the process of a running container, as a crash would.
func (k *Kubelet) KillContainer(namespace, pod, container string) error {
	k.pods.mu.Lock()
	defer k.pods.mu.Unlock()
	for _, w := range k.pods.workers {
		p := w.pod()
		if p.Namespace == namespace && p.Name == pod {
			return w.killContainer(container)
		}
	}
	return fmt.Errorf("kubelet %s runs no pod %s/%s", k.name, namespace, pod)
}

// allocateIP gives a pod an address from the node's pod CIDR, as a CNI plugin's host-local IPAM
// would. The first address belongs to the node's bridge.
func (pm *podManager) allocateIP(uid types.UID) (string, error) {
	pm.k.mu.Lock()
	cidr := pm.k.podCIDR
	pm.k.mu.Unlock()
	if cidr == "" {
		return "", fmt.Errorf("the node has no pod CIDR yet")
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", err
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	for ip, owner := range pm.ips {
		if owner == uid {
			return ip.String(), nil
		}
	}
	for ip := prefix.Masked().Addr().Next().Next(); prefix.Contains(ip); ip = ip.Next() {
		if _, used := pm.ips[ip]; !used {
			pm.ips[ip] = uid
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("pod CIDR %s is full", cidr)
}

func isMirror(p *corev1.Pod) bool {
	_, ok := p.Annotations[annotationConfigMirror]
	return ok
}

func isStatic(p *corev1.Pod) bool {
	return p.Annotations[annotationConfigSource] == "file"
}

// watchStaticPods reads --config's staticPodPath from the machine's root every staticPodCheck and
// hands the pods it finds to the pod manager. A file that does not parse is reported and skipped.
func (k *Kubelet) watchStaticPods(ctx context.Context) {
	dir := k.config.StaticPodPath
	if dir == "" {
		return
	}
	reported := map[string]string{}
	for {
		pods := map[types.UID]*corev1.Pod{}
		entries, err := os.ReadDir(k.host(dir))
		if err != nil && !os.IsNotExist(err) {
			k.logf("reading static pods: %v", err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p, err := k.readStaticPod(filepath.Join(k.host(dir), e.Name()))
			if err != nil {
				if reported[e.Name()] != err.Error() {
					k.logf("static pod %s: %v", e.Name(), err)
					reported[e.Name()] = err.Error()
				}
				continue
			}
			delete(reported, e.Name())
			pods[p.UID] = p
		}
		k.pods.mu.Lock()
		changed := len(pods) != len(k.pods.static)
		for uid := range pods {
			if _, ok := k.pods.static[uid]; !ok {
				changed = true
			}
		}
		if changed {
			k.pods.static = pods
		}
		k.pods.mu.Unlock()
		if changed {
			signal(k.pods.notify)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(staticPodCheck):
		}
	}
}

// readStaticPod reads one manifest the way the kubelet does: the pod is named NAME-NODE, bound
// to the node, and its UID is a hash of the manifest, so that a changed file is a new pod.
func (k *Kubelet) readStaticPod(file string) (*corev1.Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		return nil, err
	}
	if p.Kind != "Pod" || p.APIVersion != "v1" {
		return nil, fmt.Errorf("not a v1 Pod (%s %s)", p.APIVersion, p.Kind)
	}
	if p.Name == "" {
		return nil, fmt.Errorf("the pod has no name")
	}
	sum := sha256.Sum256(append(append([]byte{}, data...), k.name...))
	hash := hex.EncodeToString(sum[:16])
	p.Name = p.Name + "-" + k.name
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
	p.UID = types.UID(hash)
	p.Spec.NodeName = k.name
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[annotationConfigHash] = hash
	p.Annotations[annotationConfigSource] = "file"
	if p.Spec.RestartPolicy == "" {
		p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	return p, nil
}

// watchAPIPods runs an informer on the pods bound to the node; every change wakes the pod manager.
func (k *Kubelet) watchAPIPods(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(k.apiClient(), 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.name).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(k.pods.notify); signal(k.pods.dirty) },
		UpdateFunc: func(any, any) { signal(k.pods.notify) },
		DeleteFunc: func(any) { signal(k.pods.notify); signal(k.pods.dirty) },
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	k.pods.mu.Lock()
	k.pods.apiStore = inf.GetStore()
	k.pods.mu.Unlock()
	signal(k.pods.notify)
	<-ctx.Done()
	factory.Shutdown()
}

// apiPod returns the API's copy of a pod (a mirror pod for a static pod), or nil.
func (pm *podManager) apiPod(namespace, name string) *corev1.Pod {
	if pm.apiStore == nil {
		return nil
	}
	obj, ok, _ := pm.apiStore.GetByKey(namespace + "/" + name)
	if !ok {
		return nil
	}
	return obj.(*corev1.Pod)
}

// syncStatus publishes mirror pods for static pods, removes mirror pods without a static pod and
// patches the status of every pod whose status changed.
func (pm *podManager) syncStatus(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pm.dirty:
		case <-tick.C:
		}
		pm.syncMirrors(ctx)
		pm.patchStatuses(ctx)
	}
}

func (pm *podManager) syncMirrors(ctx context.Context) {
	pm.mu.Lock()
	var create []*corev1.Pod
	var remove []*corev1.Pod
	staticByName := map[string]*corev1.Pod{}
	for _, w := range pm.workers {
		if !w.static || w.isTerminating() {
			continue
		}
		p := w.pod()
		staticByName[p.Namespace+"/"+p.Name] = p
		m := pm.apiPod(p.Namespace, p.Name)
		switch {
		case m == nil:
			create = append(create, p)
		case m.Annotations[annotationConfigMirror] != p.Annotations[annotationConfigHash] || m.DeletionTimestamp != nil:
			remove = append(remove, m)
		}
	}
	if pm.apiStore != nil {
		for _, obj := range pm.apiStore.List() {
			m := obj.(*corev1.Pod)
			if isMirror(m) && staticByName[m.Namespace+"/"+m.Name] == nil && m.DeletionTimestamp == nil {
				remove = append(remove, m)
			}
		}
	}
	pm.mu.Unlock()
	client := pm.k.apiClient()
	owner, ok := pm.k.nodeRef()
	if !ok {
		return
	}
	for _, m := range remove {
		pm.deleteMirror(ctx, m)
	}
	for _, p := range create {
		m := p.DeepCopy()
		m.UID, m.ResourceVersion, m.Status = "", "", corev1.PodStatus{}
		m.Annotations[annotationConfigMirror] = p.Annotations[annotationConfigHash]
		m.Annotations[annotationConfigSeen] = time.Now().UTC().Format(time.RFC3339Nano)
		owner.Controller = ptr.To(true)
		m.OwnerReferences = []metav1.OwnerReference{owner}
		_, err := client.CoreV1().Pods(m.Namespace).Create(ctx, m, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			pm.k.logf("creating mirror pod %s/%s: %v", m.Namespace, m.Name, err)
		}
	}
}

func (pm *podManager) deleteMirror(ctx context.Context, p *corev1.Pod) {
	client := pm.k.apiClient()
	if client == nil {
		return
	}
	m := p
	if !isMirror(p) {
		pm.mu.Lock()
		m = pm.apiPod(p.Namespace, p.Name)
		pm.mu.Unlock()
		if m == nil {
			return
		}
	}
	pm.deleteAPIPod(ctx, m)
}

// patchStatuses sends every pod status that differs from the last one sent.
func (pm *podManager) patchStatuses(ctx context.Context) {
	client := pm.k.apiClient()
	type update struct {
		uid    types.UID
		target *corev1.Pod
		status corev1.PodStatus
		key    string
	}
	var updates []update
	pm.mu.Lock()
	for uid, w := range pm.workers {
		p := w.pod()
		target := pm.apiPod(p.Namespace, p.Name)
		if target == nil || (w.static && target.Annotations[annotationConfigMirror] != p.Annotations[annotationConfigHash]) ||
			(!w.static && target.UID != p.UID) {
			continue
		}
		st := w.status(target)
		raw, _ := json.Marshal(st)
		key := string(target.UID) + string(raw)
		if pm.sent[uid] == key {
			continue
		}
		updates = append(updates, update{uid, target, st, key})
	}
	pm.mu.Unlock()
	sort.Slice(updates, func(i, j int) bool { return updates[i].target.Name < updates[j].target.Name })
	for _, u := range updates {
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": u.target.UID},
			"status":   u.status,
		})
		_, err := client.CoreV1().Pods(u.target.Namespace).Patch(ctx, u.target.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil {
			if ctx.Err() == nil && !apierrors.IsNotFound(err) {
				pm.k.logf("updating the status of pod %s/%s: %v", u.target.Namespace, u.target.Name, err)
			}
			continue
		}
		pm.mu.Lock()
		if _, ok := pm.workers[u.uid]; ok {
			pm.sent[u.uid] = u.key
		}
		pm.mu.Unlock()
	}
}
