package main

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/names"

	"github.com/herald-dev/herald/controller/cloudprovider"
)

func TestDefaults(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	opts, err := newOptions()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"cloud-provider":                  opts.KubeCloudShared.CloudProvider.Name,
		"leader-elect-resource-name":      opts.Generic.LeaderElection.ResourceName,
		"leader-elect-resource-namespace": opts.Generic.LeaderElection.ResourceNamespace,
	}
	want := map[string]string{
		"cloud-provider":                  cloudprovider.ProviderName,
		"leader-elect-resource-name":      "herald-cloud-controller-manager",
		"leader-elect-resource-namespace": "herald-system",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !opts.Generic.LeaderElection.LeaderElect {
		t.Error("leader election is off by default")
	}

	t.Setenv("POD_NAMESPACE", "lb-system")
	if opts, _ = newOptions(); opts.Generic.LeaderElection.ResourceNamespace != "lb-system" {
		t.Errorf("lease namespace %q, want $POD_NAMESPACE lb-system", opts.Generic.LeaderElection.ResourceNamespace)
	}
}

// TestControllers checks that the service controller is the only one, and
// that --controllers refuses the others by name or alias.
func TestControllers(t *testing.T) {
	if got := app.ControllerNames(controllers()); !slices.Equal(got, []string{names.ServiceLBController}) {
		t.Errorf("controllers %v, want only %s", got, names.ServiceLBController)
	}
	if diff := cmp.Diff(map[string]string{"service": names.ServiceLBController}, controllerAliases()); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		controllers []string
		ok          bool
	}{
		{[]string{"*"}, true},
		{[]string{"service"}, true},
		{[]string{names.ServiceLBController}, true},
		{[]string{"route"}, false},
		{[]string{"cloud-node"}, false},
		{[]string{names.CloudNodeLifecycleController}, false},
		{[]string{"*", "-service"}, true},
	} {
		opts, err := newOptions()
		if err != nil {
			t.Fatal(err)
		}
		opts.Generic.Controllers = tt.controllers
		err = opts.Validate(app.ControllerNames(controllers()), nil, controllerAliases(), nil, nil)
		if got := err == nil; got != tt.ok {
			t.Errorf("--controllers=%v: valid %v, want %v (err %v)", tt.controllers, got, tt.ok, err)
		}
	}
}

// TestFlags checks that the command takes the flags deploy/ passes it.
func TestFlags(t *testing.T) {
	cmd := newCommand(make(chan struct{}))
	if err := cmd.ParseFlags([]string{
		"--cloud-provider=herald",
		"--cloud-config=/etc/herald/cloud-config/cloud-config.yaml",
		"--controllers=service",
		"--leader-elect=true",
		"--leader-elect-resource-name=herald-cloud-controller-manager",
		"--leader-elect-resource-namespace=herald-system",
		"--secure-port=10258",
		"--logging-format=json",
	}); err != nil {
		t.Fatal(err)
	}
	if cmd.Use != commandName {
		t.Errorf("command name %q, want %q", cmd.Use, commandName)
	}
}
