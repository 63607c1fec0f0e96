package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/explain"
)

func newStatus(c *clients) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Pools with usage, speakers with state, BGP sessions and every problem, on one screen",
		Long: `status shows Herald's installation on one screen: each IPPool with its
addresses and usage, each node's speaker (Ready, members, layer-2 addresses, BGP
sessions up), each BGP session with its state, and every problem: conditions
of IPPools, advertisements, BGPPeers and SpeakerStatuses that report one,
sessions that are not Established, and Services whose address Herald refused.
It changes nothing.`,
		Args: cobraNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.init(); err != nil {
				return err
			}
			cl, err := gatherCluster(cmd.Context(), c)
			if err != nil {
				return err
			}
			svcs, err := listServices(cmd.Context(), c)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), explain.Status(cl, svcs))
			return err
		},
	}
}

func cobraNoArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{errUnexpectedArgs(args)}
	}
	return nil
}
