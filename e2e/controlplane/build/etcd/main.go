// Command etcd is etcd's server built from go.etcd.io/etcd/server/v3 at the version pinned in
// this module's go.mod, so Herald's tests run a known etcd without downloading a release.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
