package poolplan

import (
	"fmt"
	"io"
	"strings"
)

// Write prints the result for people.
func (r Result) Write(w io.Writer) error {
	b := &strings.Builder{}
	section := func(title, none string, lines []string) {
		fmt.Fprintf(b, "%s (%d):\n", title, len(lines))
		if len(lines) == 0 {
			fmt.Fprintf(b, "  %s\n", none)
		}
		for _, l := range lines {
			fmt.Fprintf(b, "  %s\n", l)
		}
		b.WriteByte('\n')
	}
	section("Objects changed", "nothing: the file changes no IPPool, L2Advertisement, BGPAdvertisement or BGPPeer", r.Changed)
	section("Services that would keep an address outside its pool", "none", r.Outside)
	section("Pending Services that would get an address", "none", r.Served)
	section("Pending Services that would stay pending", "none", r.StillPending)
	section("Addresses announced from other nodes", "none", r.Announcement)
	section("Configuration problems Herald would report", "none", r.Problems)
	_, err := io.WriteString(w, strings.TrimSuffix(b.String(), "\n"))
	return err
}
