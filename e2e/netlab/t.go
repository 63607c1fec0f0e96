package netlab

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// T is the part of testing.TB the lab uses. *testing.T and *testing.B satisfy it; a
// program that keeps a lab running outside a test (make lab) uses a Session.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(f func())
	TempDir() string
	Context() context.Context
}

// Session is a T for programs: Cleanup functions run, last registered first, when Close
// is called, and Fatalf prints the message, runs them and exits with status 1.
type Session struct {
	name string
	dir  string
	ctx  context.Context

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
}

// NewSession returns a Session named name whose TempDir is dir (created if missing).
func NewSession(ctx context.Context, name, dir string) (*Session, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("netlab: create session directory: %w", err)
	}
	return &Session{name: name, dir: dir, ctx: ctx}, nil
}

// Helper does nothing; it exists to satisfy T.
func (s *Session) Helper() {}

// Name returns the session's name.
func (s *Session) Name() string { return s.name }

// Logf prints a line to standard error.
func (s *Session) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Fatalf prints the message, marks the session failed, runs the cleanups and exits with
// status 1.
func (s *Session) Fatalf(format string, args ...any) {
	s.Logf(format, args...)
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	s.Close()
	os.Exit(1)
}

// Failed reports whether Fatalf was called.
func (s *Session) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Cleanup registers f to run on Close.
func (s *Session) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir returns the session's directory.
func (s *Session) TempDir() string { return s.dir }

// Context returns the session's context.
func (s *Session) Context() context.Context { return s.ctx }

// Close runs the registered cleanups, last registered first. Later calls do nothing.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	fns := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
