// Package matchboxtest runs a real matchbox for tests and speaks to it the way network-booting
// machines do.
package matchboxtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a running matchbox.
type Server struct {
	// URL is the HTTP API, like http://127.0.0.1:PORT.
	URL string
	log *lockedBuffer
}

// Log is what matchbox has logged so far.
func (s *Server) Log() string { return s.log.String() }

// Start runs matchbox's HTTP API on 127.0.0.1:port over dataDir, with extra flags (the gRPC API's
// address and TLS files, an assets directory), and waits until it answers. It is stopped when the
// test ends.
func Start(t testing.TB, port int, dataDir string, extra ...string) *Server {
	t.Helper()
	bin := testbin.MustPath(t, "matchbox")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"-address", addr, "-data-path", dataDir, "-log-level", "debug"}, extra...)
	if !hasFlag(extra, "-assets-path") {
		args = append(args, "-assets-path", "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting matchbox: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("matchbox log:\n%s", log.String())
		}
	})

	s := &Server{URL: "http://" + addr, log: log}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("matchbox %v exited before answering: %v\n%s", args, err, log.String())
		default:
		}
		resp, err := http.Get(s.URL + "/boot.ipxe")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("matchbox did not answer on %s within 30s (last error: %v)\n%s", s.URL, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Get fetches a path (with its query) from matchbox as a network-booting machine would, and returns
// the body of a 200 response.
func (s *Server) Get(t testing.TB, pathQuery string) []byte {
	t.Helper()
	body, status, err := s.Fetch(s.URL + pathQuery)
	if err != nil {
		t.Fatalf("GET %s: %v", pathQuery, err)
	}
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", pathQuery, status, body)
	}
	return body
}

// Fetch GETs a URL and returns the body and status.
func (s *Server) Fetch(url string) ([]byte, int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag {
			return true
		}
	}
	return false
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Status returns the HTTP status of a GET, for checking what matchbox refuses.
func (s *Server) Status(t testing.TB, pathQuery string) int {
	t.Helper()
	_, status, err := s.Fetch(s.URL + pathQuery)
	if err != nil {
		t.Fatalf("GET %s: %v", pathQuery, err)
	}
	return status
}
