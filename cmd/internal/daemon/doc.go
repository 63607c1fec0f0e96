// Package daemon holds what every Herald binary shares around its Run
// function: the one structured logger (with client-go's klog routed into it)
// and the HTTP endpoint serving /metrics, /healthz and /readyz.
//
// It owns no business logic; the controller and speaker packages must not
// import it (they take a *slog.Logger and a prometheus.Registerer instead).
package daemon
