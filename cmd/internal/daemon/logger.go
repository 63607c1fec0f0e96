package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"k8s.io/klog/v2"
)

// LogOptions selects the log format and level.
type LogOptions struct {
	// Format is "json" or "text".
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
}

// NewLogger builds the process's one logger and routes klog (client-go's
// logging) through it, so every line leaves the process in the same format.
func NewLogger(w io.Writer, opts LogOptions) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.Level)); err != nil {
		return nil, fmt.Errorf("daemon: invalid log level %q: want debug, info, warn or error", opts.Level)
	}
	ho := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(opts.Format) {
	case "json":
		h = slog.NewJSONHandler(w, ho)
	case "text":
		h = slog.NewTextHandler(w, ho)
	default:
		return nil, fmt.Errorf("daemon: invalid log format %q: want json or text", opts.Format)
	}
	logger := slog.New(h)
	klog.SetSlogLogger(logger.With("source", "client-go"))
	return logger, nil
}
