// Package proc starts and stops the real programs a harness machine runs (etcd, kube-apiserver,
// ...) so that none outlives the harness: each runs in its own process group, is killed with its
// group, and gets SIGKILL from the kernel if the harness process dies first. Every process carries a
// marker in its environment so that a test can prove afterwards that nothing was left behind.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MarkerEnv is the environment variable every started process carries; its value names the
// harness instance that started it.
const MarkerEnv = "LIFTOFF_HARNESS"

// Spec is a program to start.
type Spec struct {
	// Name identifies the process in logs and errors, e.g. "controller-1/etcd".
	Name string
	Path string
	Args []string
	// Env is the whole environment; nothing is inherited from the harness.
	Env []string
	Dir string
	// Log receives stdout and stderr (appended); the null device when empty.
	Log string
	// Marker is the value of MarkerEnv.
	Marker string
	// Hostname, when set, runs the process in a UTS namespace of its own with that host name, as
	// on the machine it belongs to (leader election and apiserver identities use host names).
	Hostname string
}

// Environment variables by which Start asks a re-executed harness binary to set the host name of
// its new UTS namespace and then execute the real program; see init.
const (
	execEnv     = "LIFTOFF_HARNESS_EXEC"
	hostnameEnv = "LIFTOFF_HARNESS_HOSTNAME"
)

// init runs in a re-executed harness binary before anything else: it names the host, then
// replaces itself with the program. A process cannot set the host name of its UTS namespace before
// it exists, and Go cannot run code between fork and exec, hence the detour.
func init() {
	program := os.Getenv(execEnv)
	if program == "" {
		return
	}
	hostname := os.Getenv(hostnameEnv)
	os.Unsetenv(execEnv)
	os.Unsetenv(hostnameEnv)
	if err := syscall.Sethostname([]byte(hostname)); err != nil {
		fmt.Fprintf(os.Stderr, "liftoff harness: setting the host name %q: %v\n", hostname, err)
		os.Exit(127)
	}
	err := syscall.Exec(program, os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "liftoff harness: executing %s: %v\n", program, err)
	os.Exit(127)
}

// Process is a started program.
type Process struct {
	Name    string
	Started time.Time

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	// state is set before done is closed.
	state *os.ProcessState
	err   error
}

// Start starts the program in a new process group. The caller must eventually Kill or Stop it and
// may wait on Done.
func Start(s Spec) (*Process, error) {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = append(append([]string{}, s.Env...), MarkerEnv+"="+s.Marker)
	var cloneflags uintptr
	if s.Hostname != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd.Path = self
		cmd.Args = append([]string{s.Path}, s.Args...)
		cmd.Env = append(cmd.Env, execEnv+"="+s.Path, hostnameEnv+"="+s.Hostname)
		cloneflags = syscall.CLONE_NEWUTS
	}
	var logf *os.File
	if s.Log != "" {
		if err := os.MkdirAll(filepath.Dir(s.Log), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(s.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Cloneflags: cloneflags,
		// The kernel kills the child when the thread that forked it dies; see spawner.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := spawn(cmd); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("starting %s (%s): %w", s.Name, s.Path, err)
	}
	p := &Process{Name: s.Name, Started: time.Now(), cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.state, p.err = cmd.ProcessState, err
		if logf != nil {
			logf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id, which is also its process group's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the process's exit code after Done: -1 when a signal ended it.
func (p *Process) ExitCode() int {
	<-p.done
	return p.state.ExitCode()
}

// ExitReason says how the process ended, after Done.
func (p *Process) ExitReason() string {
	<-p.done
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	if p.err != nil && !errors.As(p.err, new(*exec.ExitError)) {
		return p.err.Error()
	}
	return "exit code " + strconv.Itoa(p.state.ExitCode())
}

// Signal sends sig to the process's whole group.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Pid(), sig)
}

// Kill kills the process group at once, as a power loss would, and waits until it is reaped.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process group to terminate and kills it after grace.
func (p *Process) Stop(grace time.Duration) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	p.Kill()
}

// spawner starts every process from one OS thread that never exits, because Pdeathsig fires when
// the forking *thread* dies, and Go may retire other threads while the harness still runs.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// Marked returns the ids of live processes whose environment carries MarkerEnv=marker.
func Marked(marker string) []int {
	want := []byte(MarkerEnv + "=" + marker + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if containsEntry(env, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func containsEntry(env, entry []byte) bool {
	for len(env) > 0 {
		if len(env) >= len(entry) && string(env[:len(entry)]) == string(entry) {
			return true
		}
		i := strings.IndexByte(string(env), 0)
		if i < 0 {
			return false
		}
		env = env[i+1:]
	}
	return false
}

// Describe names a process for a leak report: "1234 etcd".
func Describe(pid int) string {
	return fmt.Sprintf("%d %s", pid, Program(pid))
}

// Program is the base name of a process's program (its first argument), "" when it is gone.
func Program(pid int) string {
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return filepath.Base(argv0)
}

// RSS returns a process's resident set size in bytes (0 when it is gone).
func RSS(pid int) int64 {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
