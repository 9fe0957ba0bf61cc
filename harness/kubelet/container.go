package kubelet

import (
	"context"
	"fmt"
	"path"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// Restart back-off of crashed containers. The real kubelet starts at 10 s and caps at 5 min; the
// harness keeps the doubling but starts lower so that local clusters recover quickly.
const (
	restartBackoffStart = time.Second
	restartBackoffMax   = 20 * time.Second
	// backoffReset: a container that ran this long before exiting restarts without delay.
	backoffReset = 10 * time.Minute
)

// container is one container of a pod: a real process when its image is a program the harness
// runs, otherwise a simulated one that is reported Running but never ready.
type container struct {
	w    *podWorker
	spec corev1.Container
	init bool

	mu        sync.Mutex
	resolved  bool
	program   string
	proc      *proc.Process
	restarts  int32
	continued bool
	starts    int
	state     corev1.ContainerState
	last      corev1.ContainerState
	ready     bool
	started   bool
	id        string
	// done: the container exited and its pod's restart policy does not restart it.
	done bool
}

func newContainer(w *podWorker, spec corev1.Container, init bool) *container {
	return &container{w: w, spec: spec, init: init,
		state: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

// sidecar reports whether an init container is a restartable sidecar, which runs beside the
// regular containers.
func (c *container) sidecar() bool {
	return c.init && c.spec.RestartPolicy != nil && *c.spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func (c *container) simulated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resolved && c.program == ""
}

func (c *container) willRestart() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.done
}

// resolve finds the program for the container's image. An image the harness does not run is
// simulated; a known image with a command the harness cannot run is an error reported on the
// container, retried with back-off (a build of the program may be needed first).
func (c *container) resolve(ctx context.Context) bool {
	command := ""
	if len(c.spec.Command) > 0 {
		command = c.spec.Command[0]
	}
	backoff := restartBackoffStart
	for {
		program, err := c.w.pm.k.m.Program(ctx, c.spec.Image, command)
		if err == nil {
			c.mu.Lock()
			c.resolved, c.program = true, program
			c.mu.Unlock()
			return true
		}
		c.setWaiting("CreateContainerError", err.Error())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, restartBackoffMax)
	}
}

// run runs a regular (or sidecar) container until ctx ends, restarting it per the pod's
// restart policy.
func (c *container) run(ctx context.Context) {
	if !c.resolve(ctx) {
		return
	}
	if c.simulated() {
		c.mu.Lock()
		c.id = "harness-simulated://" + string(c.w.uid) + "/" + c.spec.Name
		c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		c.started, c.ready = true, false
		c.mu.Unlock()
		c.w.changed()
		<-ctx.Done()
		return
	}
	backoff := restartBackoffStart
	for {
		ran, exit := c.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if !c.restartable(exit) {
			c.mu.Lock()
			c.done = true
			c.mu.Unlock()
			c.w.changed()
			return
		}
		if ran > backoffReset {
			backoff = restartBackoffStart
		}
		p := c.w.pod()
		c.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, c.spec.Name, p.Name, p.Namespace, p.UID))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, restartBackoffMax)
	}
}

// runToCompletion runs an init container until it exits 0 (true) or fails for good (false).
func (c *container) runToCompletion(ctx context.Context) bool {
	if !c.resolve(ctx) {
		return false
	}
	if c.simulated() {
		now := metav1.Now()
		c.mu.Lock()
		c.id = "harness-simulated://" + string(c.w.uid) + "/" + c.spec.Name
		c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
			Message: "not run by the liftoff harness: image " + c.spec.Image + " is simulated", StartedAt: now, FinishedAt: now, ContainerID: c.id}}
		c.done = true
		c.mu.Unlock()
		c.w.changed()
		return true
	}
	backoff := restartBackoffStart
	for {
		_, exit := c.runOnce(ctx)
		if ctx.Err() != nil {
			return false
		}
		if exit == 0 {
			c.mu.Lock()
			c.done = true
			c.mu.Unlock()
			return true
		}
		if c.w.pod().Spec.RestartPolicy == corev1.RestartPolicyNever {
			c.mu.Lock()
			c.done = true
			c.mu.Unlock()
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, restartBackoffMax)
	}
}

func (c *container) restartable(exit int) bool {
	if c.sidecar() {
		return true
	}
	switch c.w.pod().Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exit != 0
	}
	return true
}

// runOnce starts the container's process and waits until it exits or ctx ends. It returns how
// long the process ran and its exit code (-1 when it never started).
func (c *container) runOnce(ctx context.Context) (time.Duration, int) {
	spec, err := c.w.processSpec(ctx, c)
	if err != nil {
		c.setWaiting("CreateContainerConfigError", err.Error())
		return 0, -1
	}
	c.mu.Lock()
	if c.starts > 0 || c.continued {
		c.restarts++
	}
	spec.Log = c.w.pm.k.host(path.Join(c.w.logDir(), c.spec.Name, fmt.Sprintf("%d.log", c.restarts)))
	c.mu.Unlock()
	p, err := proc.Start(spec)
	if err != nil {
		c.setWaiting("RunContainerError", err.Error())
		return 0, -1
	}
	c.mu.Lock()
	c.starts++
	c.proc = p
	c.id = fmt.Sprintf("harness://%d", p.Pid())
	if c.state.Terminated != nil {
		c.last = c.state
	}
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.Started)}}
	c.ready, c.started = false, false
	c.mu.Unlock()
	c.w.changed()

	pctx, stopProbes := context.WithCancel(ctx)
	go c.probe(pctx, p)
	select {
	case <-p.Done():
	case <-ctx.Done():
		if grace := c.w.stopGrace(); grace > 0 {
			p.Stop(grace)
		} else {
			p.Kill()
		}
	}
	stopProbes()
	exit := p.ExitCode()
	code := int32(exit)
	var sig int32
	if exit < 0 {
		// Killed by a signal: report it the way container runtimes do, 128+signal.
		sig = int32(syscall.SIGKILL)
		code = 128 + sig
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	c.mu.Lock()
	c.proc = nil
	c.ready = false
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Signal: sig, Reason: reason, Message: p.ExitReason(),
		StartedAt: metav1.NewTime(p.Started), FinishedAt: metav1.Now(), ContainerID: c.id,
	}}
	c.mu.Unlock()
	c.w.changed()
	return time.Since(p.Started), int(code)
}

func (c *container) setWaiting(reason, message string) {
	c.mu.Lock()
	if c.state.Terminated != nil {
		c.last = c.state
	}
	c.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	c.ready = false
	c.mu.Unlock()
	c.w.changed()
}

func (c *container) setReady(ready bool) {
	c.mu.Lock()
	changed := c.ready != ready
	c.ready = ready
	c.mu.Unlock()
	if changed {
		c.w.changed()
	}
}

func (c *container) setStarted(started bool) {
	c.mu.Lock()
	changed := c.started != started
	c.started = started
	c.mu.Unlock()
	if changed {
		c.w.changed()
	}
}

// kill kills the container's process, as a crash would; the pod's restart policy decides what
// happens next.
func (c *container) kill() error {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil {
		if c.simulated() {
			return fmt.Errorf("container %s is simulated: there is no process to kill", c.spec.Name)
		}
		return fmt.Errorf("container %s is not running", c.spec.Name)
	}
	p.Signal(syscall.SIGKILL)
	return nil
}

func (c *container) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := c.started
	return corev1.ContainerStatus{
		Name:                 c.spec.Name,
		State:                c.state,
		LastTerminationState: c.last,
		Ready:                c.ready,
		RestartCount:         c.restarts,
		Image:                c.spec.Image,
		ImageID:              c.spec.Image,
		ContainerID:          c.id,
		Started:              &started,
	}
}
