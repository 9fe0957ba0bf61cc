package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// apiBackoff paces /readyz requests while the API is not up: quick at first, since a control plane
// often comes up within seconds, never slower than every two seconds.
var apiBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 1 << 30, Cap: 2 * time.Second}

// waitForAPI returns once the API answers /readyz with 200 and the kube-system namespace, which the
// apiserver creates itself once its storage works, has been seen through a watch. When ctx ends
// first, the error says what the API last answered.
func (r *run) waitForAPI(ctx context.Context) error {
	host := r.config.Host
	var last string
	backoff := apiBackoff
	reported := ""
	for {
		body, err := r.client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "").DoRaw(ctx)
		if err == nil {
			break
		}
		if ctx.Err() == nil || last == "" {
			last = describeNotReady(err, body)
		}
		if last != reported {
			r.emit(Event{Stage: StageWaitAPI, Object: host, Result: ResultWaiting, Detail: last})
			reported = last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API at %s was not ready: %s; check that the controllers' kube-apiserver and etcd are running and that %s reaches them", host, last, host)
		case <-time.After(backoff.Step()):
		}
	}
	r.emit(Event{Stage: StageWaitAPI, Object: host, Result: ResultReady, Detail: "/readyz answered ok"})
	if err := r.ensureAdmins(ctx); err != nil {
		return err
	}

	// The namespace is watched, not polled: its ADDED event is the signal.
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "kube-system").String()
			return r.client.CoreV1().Namespaces().List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "kube-system").String()
			return r.client.CoreV1().Namespaces().Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Namespace{}, nil, func(e watch.Event) (bool, error) {
		ns, ok := e.Object.(*corev1.Namespace)
		return ok && e.Type != watch.Deleted && ns.Status.Phase == corev1.NamespaceActive, nil
	})
	if err != nil {
		return fmt.Errorf("the API at %s answered /readyz but its kube-system namespace did not appear: %w", host, err)
	}
	r.emit(Event{Stage: StageWaitAPI, Object: "Namespace kube-system", Result: ResultReady})
	return nil
}

// describeNotReady turns a failed /readyz into what the user needs: the failing checks when the API
// answered, the network error when it did not.
func describeNotReady(err error, body []byte) string {
	var failed []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "[-]") {
			failed = append(failed, strings.TrimPrefix(l, "[-]"))
		}
	}
	if len(failed) > 0 {
		return "/readyz reports failing checks: " + strings.Join(failed, "; ")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "no answer before the deadline"
	}
	return err.Error()
}
