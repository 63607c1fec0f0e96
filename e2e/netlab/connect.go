package netlab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Connect opens a TCP connection to dst from inside the host, reads until the server
// closes it (at most 64 KiB, within ctx or 5 s), and returns what the server said. An
// error means the connection could not be made or broke.
func (h *Host) Connect(ctx context.Context, dst netip.AddrPort) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := h.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return "", fmt.Errorf("netlab: connect from %s to %s: %w", h.name, dst, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 64<<10))
	if err != nil {
		return string(b), fmt.Errorf("netlab: read from %s on %s: %w", dst, h.name, err)
	}
	return string(b), nil
}
