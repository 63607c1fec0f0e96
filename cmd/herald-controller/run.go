package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/controller"
)

// run wires the logger, the client configuration, the metrics endpoint and
// the controller together, and runs until ctx ends or leadership is lost.
func run(ctx context.Context, o options) error {
	log, err := daemon.NewLogger(os.Stderr, o.log)
	if err != nil {
		return err
	}
	restCfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = o.apiQPS, o.apiBurst
	reg := daemon.NewRegistry()
	c, err := controller.New(controller.Config{
		RESTConfig:               restCfg,
		LoadBalancerClass:        o.class,
		Namespace:                o.namespace,
		MemberlistSecretName:     o.memberlist,
		MemberlistSecretRecreate: o.memberlistRecreate,
		Workers:                  o.workers,
		Resync:                   o.resync,
		LeaderElection:           o.leaderElect,
		Logger:                   log,
		Registerer:               reg,
	})
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	errc, err := daemon.Endpoint{Addr: o.metricsAddr, Gatherer: reg, Ready: c.Ready, Profiling: o.profiling}.Serve(serveCtx)
	if err != nil {
		return err
	}
	go func() {
		if err := <-errc; err != nil {
			log.Error("metrics endpoint failed", "err", err)
		}
	}()
	log.Info("starting herald-controller", "loadBalancerClass", o.class, "leaderElect", o.leaderElect.Enabled,
		"lease", o.leaderElect.LeaseNamespace+"/"+o.leaderElect.LeaseName, "metricsBindAddress", o.metricsAddr)
	err = c.Run(ctx)
	if errors.Is(err, controller.ErrLostLeadership) {
		log.Error("lost leadership; exiting so that a fresh start re-imports the allocations")
	}
	return err
}

// restConfig reads a kubeconfig file, or the in-cluster configuration when
// path is empty.
func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration (or pass --kubeconfig): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
