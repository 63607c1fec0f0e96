//go:build tools

// Package tools pins MetalLB, whose controller and speaker e2e/metallb builds
// and runs in the network lab. This module is separate from the e2e module so
// that MetalLB's dependencies stay out of the e2e module's graph.
package tools

import (
	_ "go.universe.tf/metallb/controller"
	_ "go.universe.tf/metallb/speaker"
)
