// Package config turns a snapshot of Herald's custom resources (plus the
// Namespaces and Secrets they refer to) into an immutable, validated model that
// the ipam, controller and speaker packages consume.
//
// It owns validation that spans objects and reports problems per object. It
// must not talk to the API server, log, or keep state between builds.
package config
