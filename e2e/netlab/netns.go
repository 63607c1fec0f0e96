package netlab

import (
	"fmt"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsHandle is an open file descriptor of a network namespace; 0 means not open yet.
type nsHandle int

// Do runs fn on an OS thread that has entered the host's network namespace, and returns
// fn's error. Sockets fn creates stay in the namespace after Do returns and may be used
// from any goroutine. fn must not start goroutines that expect to be in the namespace.
func (h *Host) Do(fn func() error) error {
	fd, err := h.nsFD()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: open the thread's network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(int(fd), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: enter namespace %s: %w", h.ns, err)
	}
	defer func() {
		// A thread that cannot go back stays locked, so the runtime ends it with the
		// goroutine instead of reusing it in the wrong namespace.
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// nsFD opens the namespace once and keeps it open until the lab closes.
func (h *Host) nsFD() (nsHandle, error) {
	h.nsMu.Lock()
	defer h.nsMu.Unlock()
	if h.nsFile > 0 {
		return h.nsFile, nil
	}
	fd, err := unix.Open(filepath.Join("/run/netns", h.ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netlab: open namespace %s: %w", h.ns, err)
	}
	h.nsFile = nsHandle(fd)
	return h.nsFile, nil
}

func (h *Host) closeNSFile() {
	h.nsMu.Lock()
	defer h.nsMu.Unlock()
	if h.nsFile > 0 {
		unix.Close(int(h.nsFile))
		h.nsFile = 0
	}
}
