package hostagent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelet puts on every pod sandbox (k8s.io/kubelet/pkg/types).
const (
	criPodName      = "io.kubernetes.pod.name"
	criPodNamespace = "io.kubernetes.pod.namespace"
)

// CRI asks the host's container runtime, over its CRI socket, which pods run: the kubelet's view of
// the host, which needs no API.
type CRI struct {
	conn   *grpc.ClientConn
	client runtimeapi.RuntimeServiceClient
}

// DialCRI connects to the container runtime at endpoint (unix:///run/containerd/containerd.sock).
func DialCRI(endpoint string) (*CRI, error) {
	if !strings.HasPrefix(endpoint, "unix://") {
		return nil, fmt.Errorf("container runtime endpoint %q: only unix:// sockets are supported", endpoint)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("container runtime at %s: %w", endpoint, err)
	}
	return &CRI{conn: conn, client: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// RunningPods are the pods with a ready sandbox and at least one running container.
func (c *CRI) RunningPods(ctx context.Context) ([]LocalPod, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sandboxes, err := c.client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		return nil, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	containers, err := c.client.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	running := map[string]bool{}
	for _, ctr := range containers.Containers {
		running[ctr.PodSandboxId] = true
	}
	var out []LocalPod
	for _, s := range sandboxes.Items {
		if !running[s.Id] {
			continue
		}
		out = append(out, LocalPod{Namespace: s.Labels[criPodNamespace], Name: s.Labels[criPodName], Labels: s.Labels})
	}
	return out, nil
}
