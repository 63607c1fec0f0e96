// Command bgpnode hosts Herald's BGP speaker (package speaker/bgp) as one
// node of the network lab: it reads the desired state (a JSON bgp.Desired)
// from a file, applies it, and applies it again on SIGHUP. It writes every
// status change, with the process's memory figures, to a JSON file (replaced
// atomically), and logs GoBGP's records as JSON lines on standard error.
// SIGTERM or SIGINT closes the speaker (sessions with graceful restart are
// left without a notification) and exits.
//
//	ip netns exec NS bgpnode -state state.json -status status.json -router-id 198.51.100.11
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/herald-dev/herald/speaker/bgp"
)

// Status is what bgpnode writes to its status file.
type Status struct {
	// Written is when the file was written.
	Written time.Time `json:"written"`
	// Started is when the process started; Applied is when the last Set
	// returned and SetError its error.
	Started  time.Time `json:"started"`
	Applied  time.Time `json:"applied"`
	SetError string    `json:"setError,omitempty"`
	// Generation counts the Sets done (1 after the first).
	Generation int `json:"generation"`
	// SetDuration is how long the last Set took.
	SetDuration time.Duration `json:"setDuration"`
	// Peers are the speaker's peer statuses.
	Peers []bgp.PeerStatus `json:"peers"`
	// HeapInuse and Sys are the Go runtime's figures, in bytes.
	HeapInuse uint64 `json:"heapInuse"`
	Sys       uint64 `json:"sys"`
}

type config struct {
	statePath  string
	statusPath string
	routerID   string
	listenPort uint
	logLevel   string
}

func main() {
	var c config
	flag.StringVar(&c.statePath, "state", "", "desired state file (JSON bgp.Desired)")
	flag.StringVar(&c.statusPath, "status", "", "status file to write")
	flag.StringVar(&c.routerID, "router-id", "", "BGP router id (IPv4)")
	flag.UintVar(&c.listenPort, "listen-port", 0, "TCP port for passive peers (0: do not listen)")
	flag.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bgpnode:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	started := time.Now()
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	routerID, err := netip.ParseAddr(c.routerID)
	if err != nil {
		return fmt.Errorf("router id: %w", err)
	}
	s, err := bgp.New(bgp.Options{RouterID: routerID, ListenPort: uint16(c.listenPort), Logger: logger})
	if err != nil {
		return err
	}
	st := Status{Started: started}
	apply := func() {
		d, err := readState(c.statePath)
		began := time.Now()
		if err == nil {
			err = s.Set(ctx, d)
		}
		st.Applied, st.SetError = time.Now(), ""
		st.SetDuration = st.Applied.Sub(began)
		st.Generation++
		if err != nil {
			st.SetError = err.Error()
			logger.Error("apply the desired state", "error", err)
		}
		logger.Info("applied the desired state", "generation", st.Generation, "duration", st.SetDuration.String())
	}
	apply()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := writeStatus(c.statusPath, st, s); err != nil {
			logger.Error("write status", "error", err)
		}
		select {
		case <-ctx.Done():
			closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.Close(closeCtx)
		case <-hup:
			apply()
		case <-s.Changes():
		case <-tick.C:
		}
	}
}

func readState(path string) (bgp.Desired, error) {
	var d bgp.Desired
	b, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("parse state %s: %w", path, err)
	}
	return d, nil
}

func writeStatus(path string, st Status, s *bgp.Speaker) error {
	if path == "" {
		return nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.Written, st.Peers, st.HeapInuse, st.Sys = time.Now(), s.Status(), ms.HeapInuse, ms.Sys
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
